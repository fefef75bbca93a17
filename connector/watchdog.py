"""One thread that ends exchanges which outlived their deadline, for every exchange in flight.

A read timeout applies to each read, so a peer answering a byte at a time could hold a sender as
long as it likes; the whole exchange therefore has a deadline, and when it passes the socket is
shut down (which wakes the blocked read with an error). A timer thread per request did that at
the price of starting an operating-system thread for every DSP message - about as much CPU as
verifying the request's token. Here one daemon thread keeps the deadlines in a heap and sleeps
until the earliest; arming and disarming are a heap push and a flag under a lock.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time

#: Cancelled deadlines stay in the heap until they come up; past this many entries, with fewer
#: than a quarter of them live, the heap is rebuilt so a busy connector's heap stays small.
COMPACT_ABOVE = 1024


class Deadline:
    """One armed deadline: ``fired`` tells afterwards whether the socket was shut down for it."""

    __slots__ = ("_sock", "cancelled", "due", "fired")

    def __init__(self, due: float, sock: socket.socket) -> None:
        self.due = due
        self.fired = False
        self.cancelled = False
        self._sock: socket.socket | None = sock



class Watchdog:
    """Shuts down the sockets of exchanges whose deadline passed (one thread, started lazily)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._heap: list[tuple[float, int, Deadline]] = []
        self._live = 0
        self._order = itertools.count()
        self._changed = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, seconds: float) -> Deadline:
        """Shut ``sock`` down in ``seconds`` unless :meth:`disarm` is called first."""
        deadline = Deadline(time.monotonic() + seconds, sock)
        with self._changed:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (deadline.due, next(self._order), deadline))
            self._live += 1
            if earliest is None or deadline.due < earliest:
                self._changed.notify()
        return deadline

    def disarm(self, deadline: Deadline) -> None:
        with self._changed:
            if deadline.cancelled or deadline._sock is None:
                return
            deadline.cancelled = True
            deadline._sock = None
            self._live -= 1
            if len(self._heap) > COMPACT_ABOVE and self._live * 4 < len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)

    def _run(self) -> None:
        while True:
            due: list[socket.socket] = []
            with self._changed:
                while not self._heap:
                    self._changed.wait()
                now = time.monotonic()
                while self._heap and (self._heap[0][2].cancelled or self._heap[0][0] <= now):
                    _, _, deadline = heapq.heappop(self._heap)
                    if deadline._sock is not None:  # claimed here: a later disarm changes nothing
                        self._live -= 1
                        deadline.fired = True
                        due.append(deadline._sock)
                        deadline._sock = None
                if not due and self._heap:
                    self._changed.wait(self._heap[0][0] - now)
            for sock in due:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
