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
from connector.control.push import (
    PUSH_AUDIENCE,
    Outcome,
    PushResult,
    carries_credential,
    has_sealed_credential,
    opened_request,
    redacted,
)
from connector.control.push_secrets import CredentialSealer, SealError
from connector.dsp_client import DspClient, DspClientError
from connector.observability import correlated, tracing
from connector.store import OUTBOX_LEASE_SECONDS, OutboundMessage, OutboxItem, Store

_log = logging.getLogger(__name__)

#: Parallel senders (each waits on one peer's answer, so more senders than cores keep both
#: sides busy), retry backoff (first, cap) and attempts before giving up.
OUTBOX_SENDERS = 32
#: Senders one peer (a counter-party) may hold at once: a slow or hostile peer that answers
#: after minutes, or has thousands of messages due, keeps at most these busy; the rest serve
#: everyone else. Per process: N replicas give one peer at most N times this.
OUTBOX_SENDERS_PER_PEER = 8
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0
MAX_DELIVERY_ATTEMPTS = 200
#: Idle poll of the outbox (new work from this process wakes the worker at once).
OUTBOX_POLL_SECONDS = 1.0
#: Answers that mean "try again later"; any other non-2xx is a refusal that ends the process.
RETRY_STATUSES = frozenset({408, 409, 425, 429})
#: How often the leases of messages being sent are renewed: three times per lease, so one
#: missed renewal (a slow database) does not let the lease run out under a live sender.
LEASE_RENEWAL_SECONDS = OUTBOX_LEASE_SECONDS / 3


#: Refusal codes that mean "not now" rather than "no": the peer could not resolve our DID (our
#: host, or the balancer in front of it, was unavailable to it) and said so with a 401.
UNAVAILABLE_CODES = frozenset(
    {f"token-{code}" for code in TRANSIENT_IDENTITY_CODES} | {"temporarily-unavailable"}
)


def _unavailable(body: Mapping[str, Any] | None) -> bool:
    return isinstance(body, Mapping) and body.get("code") in UNAVAILABLE_CODES


def _process_ack(body: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The peer's answer when it describes the process (and so may name the peer's pid)."""
    if isinstance(body, Mapping) and body.get("@type") in ("ContractNegotiation", "TransferProcess"):
        return body
    return None


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (doubling, capped)."""
    return float(min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2.0 ** min(attempts, 10)))


class OutboxListener(Protocol):
    """What a delivery tells the process it belongs to."""

    def end_after_refusal(self, process_id: str, reason: str) -> None: ...


class Pusher(Protocol):
    """What delivers push items (:class:`connector.control.push.PushDelivery`)."""

    max_attempts: int

    def push(self, item: OutboxItem, lease: Lease) -> PushResult: ...

    def delivered(self, item: OutboxItem) -> None: ...

    def failed(self, item: OutboxItem, reason: str) -> None: ...

    def dropped(self, item: OutboxItem) -> None: ...


def peer_of(item: OutboxItem) -> str:
    """The peer a delivery is for (its process's counter-party; the audience for an item leased
    at commit, which is that counter-party)."""
    return item.peer or item.audience


class Lease:
    """A sender's hold on one outbox item, renewed by the worker while the sender works.

    ``lost`` becomes true when a renewal finds the item no longer ours (the process stalled past
    the lease and another worker took it up): a sender checks it between chunks and stops, so
    at most one worker keeps sending, and the outcome it would record is ignored by the store.
    """

    def __init__(self, item: OutboxItem) -> None:
        self.item = item
        self._lost = threading.Event()
        #: Whether the worker has something to do once this delivery ends (see
        #: :meth:`Outbox._deliver_and_release`); cleared only when it surely has not.
        self.wake_worker = True
        #: Set once the attempt is over and its outcome is being recorded: a renewal that then
        #: finds the item no longer held has met that record (delivered, failed, rescheduled),
        #: not another worker - and had another worker taken it, the record would be refused.
        self.settling = False

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def lose(self) -> None:
        self._lost.set()


class Outbox:
    """The sender pool and the worker that drain the store's outbox."""

    def __init__(self, store: Store, client: DspClient, sealer: CredentialSealer | None = None) -> None:
        """``sealer`` opens the push destination credentials queued messages keep sealed
        (:func:`~connector.control.push.sealed_request`) just before they are sent."""
        self.store = store
        self.client = client
        self.sealer = sealer
        self.listener: OutboxListener | None = None
        self.pusher: Pusher | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._senders: ThreadPoolExecutor | None = None
        self._worker_id = f"worker-{uuid.uuid4()}"
        self._flight_lock = threading.Lock()
        self._in_flight = 0
        self._by_peer: dict[str, int] = {}
        self._leases: dict[int, Lease] = {}
        self._renewed_at = 0.0
        #: Deliveries of this process that failed and were scheduled again (a metric).
        self.retries = 0
        #: Lease a new message in the transaction that queues it and send it right after the
        #: commit; ``False`` leaves every message to the worker (the benchmark's baseline).
        self.lease_at_commit = True

    def listen(self, listener: OutboxListener) -> None:
        self.listener = listener

    # -- leasing at commit -----------------------------------------------------------------

    def lease_args(self, outbox: Sequence[OutboundMessage], leased: list[OutboxItem]) -> dict[str, Any]:
        """Let the store lease a new message to us in its own transaction while a sender is free."""
        if not outbox or self._senders is None or not self.lease_at_commit:
            return {}
        with self._flight_lock:
            if self._in_flight >= OUTBOX_SENDERS:
                return {}
            if self._by_peer.get(outbox[0].audience, 0) >= OUTBOX_SENDERS_PER_PEER:
                return {}  # the worker sends it once this peer has a sender free
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
            self._by_peer.clear()
            self._leases.clear()
        self._senders = ThreadPoolExecutor(OUTBOX_SENDERS, thread_name_prefix="dsp-outbox")
        self._worker = threading.Thread(target=self._run_worker, name="dsp-outbox-worker", daemon=True)
        self._worker.start()

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive (readiness: nothing is retried without it)."""
        return self._worker is not None and self._worker.is_alive()

    def stop(self) -> None:
        """Stop the worker and the senders. Leases are no longer renewed from here on, so a push
        still sending stops mid-body (its lease counts as lost) and is retried - by a replica,
        or by this connector after its restart - rather than sent on past its lease."""
        self._stop.set()
        self._wake.set()
        with self._flight_lock:
            sending = list(self._leases.values())
        for lease in sending:
            lease.lose()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None
        if self._senders is not None:
            self._senders.shutdown(wait=True, cancel_futures=True)
            self._senders = None

    def _run_worker(self) -> None:
        """The recovery and retry path: claim due messages nobody is delivering yet.

        Sleeps until woken or the next retry falls due (at most :data:`OUTBOX_POLL_SECONDS`, and
        never longer than :data:`LEASE_RENEWAL_SECONDS`: the leases of what is being sent are
        renewed from here).
        """
        while not self._stop.is_set():
            self._wake.clear()
            claimed = 0
            self._renew_leases()
            with self._flight_lock:
                free = OUTBOX_SENDERS - self._in_flight
                busy = dict(self._by_peer)
            try:
                if free > 0 and self._senders is not None:
                    for item in self.store.claim_outbox(
                        self._worker_id, limit=free, per_peer=OUTBOX_SENDERS_PER_PEER, busy=busy
                    ):
                        self._dispatch(item)
                        claimed += 1
            except Exception:
                _log.exception("outbox pass failed")
            if claimed:
                continue
            # with every sender busy, the first to finish wakes us; leases are renewed meanwhile
            wait = min(OUTBOX_POLL_SECONDS, LEASE_RENEWAL_SECONDS)
            if free > 0:
                # sleep until the next retry is due; a message due but not claimable waits behind
                # an earlier one of its process, whose sender wakes us when it is done
                try:
                    due = self.store.next_outbox_due()
                except Exception:
                    due = None
                if due is not None and due > time.time():
                    wait = min(wait, due - time.time())
            self._wake.wait(wait)

    def _renew_leases(self) -> None:
        """Renew the leases of everything this worker is sending (see :class:`Lease`)."""
        now = time.monotonic()
        if now - self._renewed_at < LEASE_RENEWAL_SECONDS:
            return
        self._renewed_at = now
        with self._flight_lock:
            leases = dict(self._leases)
        if not leases:
            return
        try:
            held = self.store.renew_outbox_leases(self._worker_id, sorted(leases))
        except Exception:  # the database is away: the next pass tries again, well within the lease
            _log.exception("outbox lease renewal failed")
            return
        for item_id, lease in leases.items():
            if item_id not in held and not lease.lost and not lease.settling:
                lease.lose()
                _log.warning("outbox lease lost", extra={"outbox_id": item_id, "url": lease.item.url})

    def _hold(self, item: OutboxItem) -> Lease:
        lease = Lease(item)
        with self._flight_lock:
            self._in_flight += 1
            peer = peer_of(item)
            self._by_peer[peer] = self._by_peer.get(peer, 0) + 1
            self._leases[item.id] = lease
        return lease

    def _release(self, lease: Lease) -> bool:
        """Give the sender back; whether it was one the worker may have waited for (every sender
        busy, or this peer's share of them)."""
        with self._flight_lock:
            starved = self._in_flight >= OUTBOX_SENDERS
            self._in_flight -= 1
            peer = peer_of(lease.item)
            starved = starved or self._by_peer.get(peer, 0) >= OUTBOX_SENDERS_PER_PEER
            left = self._by_peer.get(peer, 1) - 1
            if left > 0:
                self._by_peer[peer] = left
            else:
                self._by_peer.pop(peer, None)
            if self._leases.get(lease.item.id) is lease:
                del self._leases[lease.item.id]
        return starved

    def _dispatch(self, item: OutboxItem) -> None:
        senders = self._senders
        if senders is None:  # stopping: the lease runs out and the message is delivered after restart
            return
        lease = self._hold(item)
        try:
            senders.submit(self._deliver_and_release, lease)
        except RuntimeError:  # the pool shut down meanwhile
            self._release(lease)

    def _deliver_and_release(self, lease: Lease) -> None:
        """Deliver, then wake the worker when it may have work: a message of this process queued
        behind this one, a retry to schedule, a refusal, or a sender it was waiting for. A message
        delivered with nothing behind it wakes nobody (a wake costs the worker a look at the
        outbox); anything missed is found at the worker's next poll."""
        try:
            self._deliver(lease)
        except Exception:
            lease.wake_worker = True
            _log.exception("outbox delivery failed", extra={"url": lease.item.url})
        finally:
            starved = self._release(lease)
            if lease.wake_worker or starved:
                self._wake.set()

    def deliver_due(self) -> int:
        """Deliver, in this thread, every message that is due now; returns how many were attempted."""
        items = self.store.claim_outbox(self._worker_id)
        for item in items:
            self.deliver(item)
        return len(items)

    # -- one delivery ----------------------------------------------------------------------

    def deliver(self, item: OutboxItem) -> None:
        """Deliver one item leased to this worker, in this thread (its lease renewed meanwhile)."""
        lease = self._hold(item)
        try:
            self._deliver(lease)
        finally:
            self._release(lease)

    def _deliver(self, lease: Lease) -> None:
        """One attempt, logged and traced with the correlation id of the message's negotiation."""
        item = lease.item
        attributes = {
            "sluis.outbox_id": item.id,
            "sluis.process_id": item.process_id,
            "sluis.attempt": item.attempts + 1,
            "url.full": item.url,
            tracing.CORRELATION_ATTRIBUTE: item.correlation_id,
        }
        with correlated(item.correlation_id), tracing.span(
            "outbox.send", attributes, traceparent=item.traceparent, kind="client"
        ):
            self._attempt(lease)

    def _attempt(self, lease: Lease) -> None:
        item = lease.item
        if item.audience == PUSH_AUDIENCE:
            self._push(lease)
            return
        body = self._sendable(item)
        if body is None:
            return
        try:
            response = self.client.post(item.url, item.audience, body)
        except DspClientError as error:
            lease.settling = True
            self._retry(item, str(error))
            return
        except Exception as error:
            lease.settling = True
            _log.exception("outbox delivery failed", extra={"url": item.url})
            self._retry(item, str(error))
            return
        lease.settling = True
        if _log.isEnabledFor(logging.INFO):
            _log.info(
                "outbox sent",
                extra={"process_id": item.process_id, "url": item.url, "status": response.status,
                       "attempt": item.attempts + 1},
            )
        if 200 <= response.status < 300:
            # the peer's pid in its answer is learnt in the same write (connector.store)
            delivered, pending = self.store.outbox_delivered_next(
                item.id, item.process_id, worker=self._worker_id, ack=_process_ack(response.body)
            )
            if delivered:
                self._forget_credential(item)
            lease.wake_worker = pending or not delivered
        elif response.status in RETRY_STATUSES or response.status >= 500 or _unavailable(response.body):
            self._retry(item, f"HTTP {response.status}")
        else:
            reason = reason_text(response.body or {}, f"the counter-party answered HTTP {response.status}")
            refused = self.store.outbox_failed(item.id, reason, worker=self._worker_id)
            if refused:
                self._forget_credential(item)
            if refused and self.listener is not None:
                self.listener.end_after_refusal(item.process_id, reason)

    def _sendable(self, item: OutboxItem) -> Mapping[str, Any] | None:
        """The message as sent: a sealed destination credential opened. One that does not open
        (the participant key was rotated since) fails the message, and the transfer ends with
        the reason, instead of sending a request without the credential."""
        if not has_sealed_credential(item.body):
            return item.body
        try:
            if self.sealer is None:
                raise SealError("this connector cannot open sealed push credentials")
            return opened_request(item.body, self.sealer, item.process_id)
        except SealError as error:
            reason = f"the push destination credential could not be opened: {error}"
            refused = self.store.outbox_failed(item.id, reason, worker=self._worker_id)
            if refused:
                self._forget_credential(item)
            if refused and self.listener is not None:
                self.listener.end_after_refusal(item.process_id, reason)
            return None

    def _forget_credential(self, item: OutboxItem) -> None:
        """A settled message keeps no push destination credential: a ``TransferRequestMessage``
        for a push carries the one the provider writes with (or the one-transfer secret of our
        own receiving endpoint) and is kept, once sent or given up, with it replaced by ``***``."""
        if carries_credential(item.body):
            self.store.outbox_replace_body(item.id, redacted(item.body))

    def _push(self, lease: Lease) -> None:
        """One attempt of an HTTP push: retried like a message, at most ``pusher.max_attempts``.
        What the attempt ends with is recorded only while the lease is still ours."""
        item, worker = lease.item, self._worker_id
        pusher = self.pusher
        if pusher is None:
            reason = "this connector runs no data plane to push from"
            if self.store.outbox_failed(item.id, reason, worker=worker) and self.listener is not None:
                self.listener.end_after_refusal(item.process_id, "no data plane to push from")
            return
        result = pusher.push(item, lease)
        lease.settling = True
        if result.outcome == Outcome.DELIVERED:
            if self.store.outbox_delivered(item.id, worker=worker):
                pusher.delivered(item)
        elif result.outcome == Outcome.DROPPED:
            if self.store.outbox_failed(item.id, result.reason, worker=worker):
                pusher.dropped(item)
        elif result.outcome == Outcome.RETRY and item.attempts + 1 < pusher.max_attempts:
            attempts = item.attempts + 1
            self.retries += 1
            self.store.outbox_retry(
                item.id, attempts, time.time() + backoff(attempts), result.reason, worker=worker
            )
        else:
            reason = result.reason
            if result.outcome == Outcome.RETRY:
                reason = f"the push failed {pusher.max_attempts} times, the last: {reason}"
            if self.store.outbox_failed(item.id, reason, worker=worker):
                pusher.failed(item, reason)

    def _retry(self, item: OutboxItem, reason: str) -> None:
        attempts = item.attempts + 1
        worker = self._worker_id
        if attempts >= MAX_DELIVERY_ATTEMPTS:
            if self.store.outbox_failed(item.id, reason, worker=worker):
                self._forget_credential(item)
                if self.listener is not None:
                    self.listener.end_after_refusal(
                        item.process_id, f"the counter-party stayed unreachable: {reason}"
                    )
            return
        self.retries += 1
        self.store.outbox_retry(item.id, attempts, time.time() + backoff(attempts), reason, worker=worker)

