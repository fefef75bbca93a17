"""Delivering one HTTP push: read through the data plane once, spool, ``PUT``, settle.

The outbox hands each attempt of a push item to :meth:`PushDelivery.push`. An attempt

1. drops the push when the transfer is no longer STARTED and refuses it when its agreement was
   terminated (a revocation stops the next attempt, and the one sending: see ``stop``);
2. opens the destination's sealed credential and checks the destination against the address
   policy again (the name is resolved now, and the connection goes to what was checked);
3. takes the delivery's spooled bytes, or reads them through the data plane - the same token,
   proof, state, policy, granted view, read limit and audit as a consumer's read - under the
   read key ``push:<outbox id>``, so however often the delivery is read again (a restart, another
   replica) the agreement's count goes up once; bytes read again must hash as first read;
4. ``PUT``s them with the consumer's credential, a ``Content-Digest`` (RFC 9530) and an
   ``Idempotency-Key`` naming the delivery, so a destination that sees the same delivery twice
   (an answer lost on the way back) can take it once; the consumer's own receiving endpoint does.

While it sends, ``stop`` is asked between chunks: the outbox lease was lost (another worker owns
the delivery now), or - looked up at most every :data:`STATE_CHECK_SECONDS` - the transfer left
STARTED or its agreement was terminated; the connection is then dropped mid-body.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from connector.addresses import AddressPolicy, AddressRefused, Destination, PeerRefused
from connector.control.push import (
    RETRY_STATUSES,
    Outcome,
    PushDestination,
    PushReader,
    PushResult,
)
from connector.control.push_secrets import CredentialSealer, SealError
from connector.control.push_send import PushStopped, put_file
from connector.control.push_spool import PushSpool, Spooled, SpoolMismatch, SpoolTooLarge
from connector.dataplane import Busy, DataPlaneError, TransferView, make_proof
from connector.identity import KeyPair
from connector.protocol import TransferState
from connector.store import OutboxItem, ProcessRecord, Store

_log = logging.getLogger(__name__)

#: Attempts before a push gives up and the transfer is terminated (backoff as for messages).
PUSH_MAX_ATTEMPTS = 8
#: While a body is being sent, the transfer's state is looked up at most this often.
STATE_CHECK_SECONDS = 1.0


class LeaseView(Protocol):
    """What a push needs of its outbox lease (:class:`connector.control.outbox.Lease`)."""

    @property
    def lost(self) -> bool: ...


#: What ``stop`` answers when the outbox lease was lost.
LEASE_LOST = "another worker took the delivery over (this worker's lease ran out)"


def _still_running(store: Store, reader: PushReader, transfer_id: str) -> str | None:
    """Why a push must stop now, or ``None`` while the transfer runs under a standing agreement."""
    record = store.get_process(transfer_id, "transfer")
    if record is None or record.state != TransferState.STARTED:
        return f"the transfer is {record.state if record is not None else 'gone'}"
    agreement = reader.state.agreement(record.agreement_id or "")
    if agreement is None or agreement.terminated:
        return "the agreement was terminated"
    return None


class PushDelivery:
    """Delivers the outbox's push items (see the module doc)."""

    max_attempts = PUSH_MAX_ATTEMPTS

    def __init__(
        self,
        store: Store,
        reader: PushReader,
        key: KeyPair,
        addresses: AddressPolicy,
        provider_id: str,
        finish: Callable[[str, str | None], None],
        spool_root: Path,
    ) -> None:
        self.store = store
        self.reader = reader
        self.key = key
        self.addresses = addresses
        self.provider_id = provider_id
        self.finish = finish
        self.sealer = CredentialSealer(key)
        self.spool = PushSpool(spool_root, store)
        try:
            self.spool.sweep()
        except Exception:  # a sweep is housekeeping: a database hiccup must not stop the connector
            _log.exception("push spool sweep failed")

    # -- what the outbox calls ---------------------------------------------------------------

    def push(self, item: OutboxItem, lease: LeaseView | None = None) -> PushResult:
        transfer_id = item.process_id
        record = self.store.get_process(transfer_id, "transfer")
        if record is None or record.state != TransferState.STARTED:
            state = record.state if record is not None else "gone"
            return PushResult(Outcome.DROPPED, f"the transfer is {state}; nothing pushed")
        agreement = self.reader.state.agreement(record.agreement_id or "")
        if agreement is None or agreement.terminated:
            return PushResult(Outcome.REFUSED, "the agreement was terminated; nothing more is pushed")
        try:
            destination = PushDestination.opened(record.details["push"], self.sealer, transfer_id)
        except SealError as error:  # before ValueError, which it is
            return PushResult(Outcome.REFUSED, f"the destination's credential cannot be used: {error}")
        except (KeyError, TypeError, ValueError):
            return PushResult(Outcome.REFUSED, "the transfer names no push destination")
        try:
            checked = self.addresses.check_url(destination.endpoint, what="the push destination")
        except AddressRefused as refused:
            return PushResult(Outcome.REFUSED, str(refused))
        spooled = self.spool.local(item.id)
        if spooled is None:
            try:
                spooled = self._read(item.id, record, destination.media_type)
            except Busy as busy:
                return PushResult(Outcome.RETRY, busy.message)
            except DataPlaneError as error:
                return PushResult(Outcome.REFUSED, f"the data plane refused the push: {error.message}")
            except (SpoolMismatch, SpoolTooLarge) as refused:
                return PushResult(Outcome.REFUSED, str(refused))
            except OSError as error:  # the spool's disk (full, gone): an attempt spent, retried
                return PushResult(Outcome.RETRY, f"the push could not be spooled: {error.strerror or error}")
        return self._send(item.id, record.id, destination, checked, spooled, self._stop(transfer_id, lease))

    def delivered(self, item: OutboxItem) -> None:
        self.spool.forget(item.id)
        self.finish(item.process_id, None)

    def failed(self, item: OutboxItem, reason: str) -> None:
        self.spool.forget(item.id)
        self.finish(item.process_id, reason)

    def dropped(self, item: OutboxItem) -> None:
        self.spool.forget(item.id)

    # -- reading and sending ---------------------------------------------------------------

    def _read(self, item_id: int, record: ProcessRecord, media_type: str) -> Spooled:
        details = record.details
        view = TransferView(
            id=record.id,
            state=TransferState.STARTED,
            agreement_id=record.agreement_id or "",
            consumer_id=record.counterparty_id,
            provider_id=self.provider_id,
            asset_id=str(details.get("asset_id") or ""),
            job_id=details.get("job_id"),
            purpose=details.get("purpose"),
            compute_site=details.get("compute_site"),
            correlation_id=details.get("correlation_id"),
        )
        address = self.reader.issue_push_access(view)
        proof = make_proof(self.key, "GET", address.endpoint, address.token)
        read = self.reader.prepare_read(
            record.id,
            f"DPoP {address.token}",
            proof,
            "GET",
            urlsplit(address.endpoint).path,
            None,
            media_type,
            read_key=f"push:{item_id}",
        )
        return self.spool.write(item_id, record.id, media_type, self.reader.stream(read))

    def _stop(self, transfer_id: str, lease: LeaseView | None) -> Callable[[], str | None]:
        checked_at = time.monotonic()

        def stop() -> str | None:
            nonlocal checked_at
            if lease is not None and lease.lost:
                return LEASE_LOST
            now = time.monotonic()
            if now - checked_at < STATE_CHECK_SECONDS:
                return None
            checked_at = now
            return _still_running(self.store, self.reader, transfer_id)

        return stop

    def _send(
        self,
        item_id: int,
        transfer_id: str,
        destination: PushDestination,
        checked: Destination,
        spooled: Spooled,
        stop: Callable[[], str | None],
    ) -> PushResult:
        headers = {
            "Content-Type": destination.media_type,
            "Content-Length": str(spooled.size),
            "Content-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(spooled.sha256)).decode()}:",
            "Idempotency-Key": f'"{idempotency_key(transfer_id, item_id)}"',
        }
        authorization = destination.header()
        if authorization:
            headers["Authorization"] = authorization
        try:
            status = put_file(checked, self.addresses, headers, spooled.path, stop, LEASE_LOST)
        except PushStopped as stopped:
            # a lost lease: the new holder delivers (and this outcome is not recorded anyway);
            # a transfer that stopped running: nothing more to send
            outcome = Outcome.RETRY if stopped.lease_lost else Outcome.DROPPED
            return PushResult(outcome, f"the push stopped mid-body: {stopped}")
        except PeerRefused as refused:
            return PushResult(Outcome.REFUSED, f"the push destination {refused}")
        except ValueError as error:  # a header http.client will not send
            return PushResult(Outcome.REFUSED, f"the push request cannot be made: {error}")
        except (OSError, http.client.HTTPException) as error:
            return PushResult(Outcome.RETRY, f"the destination could not be reached: {error}")
        if 200 <= status < 300:
            return PushResult(Outcome.DELIVERED)
        if 300 <= status < 400:
            redirect = f"the destination redirected (HTTP {status}); a push follows no redirect"
            return PushResult(Outcome.REFUSED, redirect)
        if status in RETRY_STATUSES or status >= 500:
            return PushResult(Outcome.RETRY, f"the destination answered HTTP {status}")
        return PushResult(Outcome.REFUSED, f"the destination refused the data: HTTP {status}")


def idempotency_key(transfer_id: str, item_id: int) -> str:
    """One delivery's ``Idempotency-Key``: the same on every attempt, another for every delivery
    (a resumed transfer's new push), and no transfer id spelt out to a third-party store."""
    return "push-" + hashlib.sha256(f"{transfer_id}\n{item_id}".encode()).hexdigest()[:32]


def spool_root(data_root: Path | None, participant_id: str) -> Path:
    """Where this participant's pushes spool: under the data root (replicas sharing one find
    each other's spooled bytes), one folder per participant (connectors sharing a data root
    never mix outbox ids); a private temporary folder for a data plane without a data root."""
    if data_root is None:
        return Path(tempfile.mkdtemp(prefix="sluis-push-"))
    return data_root / ".push-spool" / hashlib.sha256(participant_id.encode()).hexdigest()[:16]
