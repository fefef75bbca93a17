"""Delivery of the messages we owe peers: leased at commit, retried with backoff, survives restarts.

A step that owes the peer a message writes it to the store's outbox in the same transaction as
the new state (see :mod:`connector.control.process`). New messages of this process are leased
in that transaction and handed to a sender right after the commit; a background worker finds
the rest - retries whose backoff ran out, later messages of a process whose earlier one was just
delivered, and work a stopped process left behind. What a delivery teaches us about the process
(the provider's pid in its ack, a refusal) goes to an :class:`OutboxListener`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from connector.control.errors import TRANSIENT_IDENTITY_CODES
from connector.control.process import reason_text
from connector.control.push import PUSH_AUDIENCE, Outcome, PushResult
from connector.dsp_client import DspClient, DspClientError
from connector.store import OutboundMessage, OutboxItem, Store

_log = logging.getLogger(__name__)

#: Parallel senders (each waits on one peer's answer, so more senders than cores keep both
#: sides busy), retry backoff (first, cap) and attempts before giving up.
OUTBOX_SENDERS = 32
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0
MAX_DELIVERY_ATTEMPTS = 200
#: Idle poll of the outbox (new work from this process wakes the worker at once).
OUTBOX_POLL_SECONDS = 1.0
#: Answers that mean "try again later"; any other non-2xx is a refusal that ends the process.
RETRY_STATUSES = frozenset({408, 409, 425, 429})


#: Refusal codes that mean "not now" rather than "no": the peer could not resolve our DID (our
#: host, or the balancer in front of it, was unavailable to it) and said so with a 401.
UNAVAILABLE_CODES = frozenset(
    {f"token-{code}" for code in TRANSIENT_IDENTITY_CODES} | {"temporarily-unavailable"}
)


def _unavailable(body: Mapping[str, Any] | None) -> bool:
    return isinstance(body, Mapping) and body.get("code") in UNAVAILABLE_CODES


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (doubling, capped)."""
    return float(min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2.0 ** min(attempts, 10)))


class OutboxListener(Protocol):
    """What a delivery tells the process it belongs to."""

    def learn_peer_pid(self, process_id: str, ack: Mapping[str, Any]) -> None: ...

    def end_after_refusal(self, process_id: str, reason: str) -> None: ...


class Pusher(Protocol):
    """What delivers push items (:class:`connector.control.push.PushDelivery`)."""

    max_attempts: int

    def push(self, item: OutboxItem) -> PushResult: ...

    def delivered(self, item: OutboxItem) -> None: ...

    def failed(self, item: OutboxItem, reason: str) -> None: ...

    def dropped(self, item: OutboxItem) -> None: ...


class Outbox:
    """The sender pool and the worker that drain the store's outbox."""

    def __init__(self, store: Store, client: DspClient) -> None:
        self.store = store
        self.client = client
        self.listener: OutboxListener | None = None
        self.pusher: Pusher | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._senders: ThreadPoolExecutor | None = None
        self._worker_id = f"worker-{uuid.uuid4()}"
        self._flight_lock = threading.Lock()
        self._in_flight = 0
        #: Deliveries of this process that failed and were scheduled again (a metric).
        self.retries = 0

    def listen(self, listener: OutboxListener) -> None:
        self.listener = listener

    # -- leasing at commit -----------------------------------------------------------------

    def lease_args(self, outbox: Sequence[OutboundMessage], leased: list[OutboxItem]) -> dict[str, Any]:
        """Let the store lease a new message to us in its own transaction while a sender is free."""
        if not outbox or self._senders is None:
            return {}
        with self._flight_lock:
            if self._in_flight >= OUTBOX_SENDERS:
                return {}
        return {"claim_for": self._worker_id, "claimed": leased}

    def after_enqueue(self, outbox: Sequence[OutboundMessage], leased: list[OutboxItem]) -> None:
        """Deliver what the commit leased to us now; anything else is the worker's (woken here)."""
        for item in leased:
            self._dispatch(item)
        if len(outbox) > len(leased):
            self._wake.set()

    # -- the worker ------------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is not None:
            return
        self._stop.clear()
        with self._flight_lock:
            self._in_flight = 0
        self._senders = ThreadPoolExecutor(OUTBOX_SENDERS, thread_name_prefix="dsp-outbox")
        self._worker = threading.Thread(target=self._run_worker, name="dsp-outbox-worker", daemon=True)
        self._worker.start()

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive (readiness: nothing is retried without it)."""
        return self._worker is not None and self._worker.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None
        if self._senders is not None:
            self._senders.shutdown(wait=True, cancel_futures=True)
            self._senders = None

    def _run_worker(self) -> None:
        """The recovery and retry path: claim due messages nobody is delivering yet.

        Sleeps until woken or the next retry falls due (at most :data:`OUTBOX_POLL_SECONDS`).
        """
        while not self._stop.is_set():
            self._wake.clear()
            claimed = 0
            with self._flight_lock:
                free = OUTBOX_SENDERS - self._in_flight
            try:
                if free > 0 and self._senders is not None:
                    for item in self.store.claim_outbox(self._worker_id, limit=free):
                        self._dispatch(item)
                        claimed += 1
            except Exception:
                _log.exception("outbox pass failed")
            if claimed:
                continue
            wait = OUTBOX_POLL_SECONDS  # with every sender busy, the first to finish wakes us
            if free > 0:
                # sleep until the next retry is due; a message due but not claimable waits behind
                # an earlier one of its process, whose sender wakes us when it is done
                try:
                    due = self.store.next_outbox_due()
                except Exception:
                    due = None
                if due is not None and due > time.time():
                    wait = min(OUTBOX_POLL_SECONDS, due - time.time())
            self._wake.wait(wait)

    def _dispatch(self, item: OutboxItem) -> None:
        senders = self._senders
        if senders is None:  # stopping: the lease runs out and the message is delivered after restart
            return
        with self._flight_lock:
            self._in_flight += 1
        try:
            senders.submit(self._deliver_and_release, item)
        except RuntimeError:  # the pool shut down meanwhile
            with self._flight_lock:
                self._in_flight -= 1

    def _deliver_and_release(self, item: OutboxItem) -> None:
        try:
            self.deliver(item)
        except Exception:
            _log.exception("outbox delivery failed", extra={"url": item.url})
        finally:
            with self._flight_lock:
                self._in_flight -= 1
            self._wake.set()

    def deliver_due(self) -> int:
        """Deliver, in this thread, every message that is due now; returns how many were attempted."""
        items = self.store.claim_outbox(self._worker_id)
        for item in items:
            self.deliver(item)
        return len(items)

    # -- one delivery ----------------------------------------------------------------------

    def deliver(self, item: OutboxItem) -> None:
        if item.audience == PUSH_AUDIENCE:
            self._push(item)
            return
        try:
            response = self.client.post(item.url, item.audience, item.body)
        except DspClientError as error:
            self._retry(item, str(error))
            return
        except Exception as error:
            _log.exception("outbox delivery failed", extra={"url": item.url})
            self._retry(item, str(error))
            return
        if 200 <= response.status < 300:
            self.store.outbox_delivered(item.id)
            self._learn_from_ack(item, response.body)
        elif response.status in RETRY_STATUSES or response.status >= 500 or _unavailable(response.body):
            self._retry(item, f"HTTP {response.status}")
        else:
            reason = reason_text(response.body or {}, f"the counter-party answered HTTP {response.status}")
            self.store.outbox_failed(item.id, reason)
            if self.listener is not None:
                self.listener.end_after_refusal(item.process_id, reason)

    def _push(self, item: OutboxItem) -> None:
        """One attempt of an HTTP push: retried like a message, at most ``pusher.max_attempts``."""
        pusher = self.pusher
        if pusher is None:
            self.store.outbox_failed(item.id, "this connector runs no data plane to push from")
            if self.listener is not None:
                self.listener.end_after_refusal(item.process_id, "no data plane to push from")
            return
        result = pusher.push(item)
        if result.outcome == Outcome.DELIVERED:
            self.store.outbox_delivered(item.id)
            pusher.delivered(item)
        elif result.outcome == Outcome.DROPPED:
            self.store.outbox_failed(item.id, result.reason)
            pusher.dropped(item)
        elif result.outcome == Outcome.RETRY and item.attempts + 1 < pusher.max_attempts:
            attempts = item.attempts + 1
            self.retries += 1
            self.store.outbox_retry(item.id, attempts, time.time() + backoff(attempts), result.reason)
        else:
            reason = result.reason
            if result.outcome == Outcome.RETRY:
                reason = f"the push failed {pusher.max_attempts} times, the last: {reason}"
            self.store.outbox_failed(item.id, reason)
            pusher.failed(item, reason)

    def _retry(self, item: OutboxItem, reason: str) -> None:
        attempts = item.attempts + 1
        if attempts >= MAX_DELIVERY_ATTEMPTS:
            self.store.outbox_failed(item.id, reason)
            if self.listener is not None:
                self.listener.end_after_refusal(
                    item.process_id, f"the counter-party stayed unreachable: {reason}"
                )
            return
        self.retries += 1
        self.store.outbox_retry(item.id, attempts, time.time() + backoff(attempts), reason)

    def _learn_from_ack(self, item: OutboxItem, body: Mapping[str, Any] | None) -> None:
        if not body or body.get("@type") not in ("ContractNegotiation", "TransferProcess"):
            return
        if self.listener is not None:
            self.listener.learn_peer_pid(item.process_id, body)
