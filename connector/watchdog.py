"""One thread that acts on work running past its time budget: data-plane reads, DSP exchanges.

A read's sandbox arms a deadline when it opens and cancels it when it ends; a DSP request of the
outbox arms one for the whole exchange (a peer answering a byte at a time would otherwise hold a
sender as long as it likes) and the action shuts its socket down. Starting a ``threading.Timer``
for each cost about 1.5 ms (a thread start) every time - as much CPU as verifying the request's
token; one thread keeping a heap of deadlines costs a heap push and a notify.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

_log = logging.getLogger(__name__)


class Alarm:
    """One armed deadline; ``cancel`` makes sure its action never runs afterwards."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action: Callable[[], None] | None = action
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self._action = None

    @property
    def cancelled(self) -> bool:
        return self._action is None

    def _fire(self) -> None:
        with self._lock:
            action, self._action = self._action, None
        if action is not None:
            action()


class Watchdog:
    """Runs each armed action once its deadline passes, unless it was cancelled first."""

    # Cancelled alarms stay in the heap until their deadline; past this many entries they are
    # swept out (reads end long before their budget, so most entries are cancelled ones).
    SWEEP_AT = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic, name: str = "read-watchdog") -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def arm(self, seconds: float, action: Callable[[], None]) -> Alarm:
        alarm = Alarm(action)
        with self._wake:
            if len(self._heap) >= self.SWEEP_AT:
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (self._clock() + seconds, next(self._order), alarm))
            if self._heap[0][2] is alarm:
                self._wake.notify()
        return alarm

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._closed:
                    return
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, _, alarm = self._heap[0]
                wait = deadline - self._clock()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
            try:
                alarm._fire()
            except Exception:
                _log.exception("a time-out action failed")

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
