"""HTTP push (``HttpData-PUSH``): the provider writes the granted data to the consumer's destination.

The consumer names a destination in its ``TransferRequestMessage`` (a DSP ``DataAddress``: an
endpoint and, as endpoint properties, the credentials to write with and the media type it wants).
When the transfer starts, the provider owes that destination one delivery, queued in the outbox
behind the ``TransferStartMessage`` so it is retried with backoff and survives restarts like any
message. A delivery reads the granted data through the data plane exactly as a consumer's read
would go - token, proof, transfer and agreement state, usage policy, granted views, read limits
and an audit entry - with a token bound to the provider's own key that never leaves the process,
then ``PUT``s the bytes with a ``Content-Digest`` (RFC 9530) the receiver checks. Success
completes the transfer over DSP; a refusal, or a destination unreachable for
:data:`PUSH_MAX_ATTEMPTS` attempts, terminates it with the reason.

The destination passes the same address policy as callbacks (no loopback, private or reserved
ranges unless the operator allowed them), checked when the request arrives and again before
every attempt.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from connector.addresses import AddressPolicy, AddressRefused, PeerRefused, guarded_create_connection
from connector.dataplane import (
    ARROW_STREAM,
    PARQUET,
    Busy,
    ContractState,
    DataAddress,
    DataPlaneError,
    TransferView,
    make_proof,
)
from connector.dataplane.plane import PreparedRead
from connector.identity import KeyPair
from connector.protocol import TransferState
from connector.store import OutboundMessage, OutboxItem, ProcessRecord, Store
from vocab import dsp

_log = logging.getLogger(__name__)

#: The format of HTTP push from our data plane to the consumer's destination.
PUSH_FORMAT = "HttpData-PUSH"
#: The outbox ``audience`` that marks a push delivery (no DSP participant is ever named so).
PUSH_AUDIENCE = "urn:sluis:push"
#: Attempts before a push gives up and the transfer is terminated (backoff as for messages).
PUSH_MAX_ATTEMPTS = 8
#: Media types a destination may ask for (endpoint property ``mediaType``).
PUSH_MEDIA_TYPES = (ARROW_STREAM, PARQUET)
#: Longest credential a consumer may hand us for its destination.
MAX_CREDENTIAL_CHARS = 4096
#: Answers of a destination that mean "try again later"; any other non-2xx refuses the push.
RETRY_STATUSES = frozenset({408, 409, 425, 429})
#: How long one attempt may wait for the destination (connect, then each read or write).
PUSH_TIMEOUT_SECONDS = 60.0
#: Bytes of a destination's answer read at most (only its status is used).
MAX_ANSWER_BYTES = 64 * 1024


class DestinationRefused(ValueError):
    """A push destination we will not write to; the message says why."""


@dataclass(frozen=True)
class PushDestination:
    """Where a push goes and how: endpoint, the consumer's credentials, the media type."""

    endpoint: str
    authorization: str | None = None
    auth_type: str | None = None
    media_type: str = ARROW_STREAM

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "authorization": self.authorization,
            "auth_type": self.auth_type,
            "media_type": self.media_type,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PushDestination:
        return cls(
            str(data["endpoint"]),
            data.get("authorization"),
            data.get("auth_type"),
            str(data.get("media_type") or ARROW_STREAM),
        )

    def to_dsp(self) -> dict[str, Any]:
        """The DSP ``DataAddress`` a consumer sends in its ``TransferRequestMessage``."""
        properties = {"mediaType": self.media_type}
        if self.authorization:
            properties["authorization"] = self.authorization
            properties["authType"] = self.auth_type or "Bearer"
        return dsp.data_address(self.endpoint, properties)

    def header(self) -> str | None:
        if not self.authorization:
            return None
        return f"{self.auth_type} {self.authorization}" if self.auth_type else self.authorization


def destination_of(address: object, policy: AddressPolicy) -> PushDestination:
    """The destination a ``TransferRequestMessage``'s ``dataAddress`` names, checked; raises
    :class:`DestinationRefused` naming the member and the reason."""
    if not isinstance(address, Mapping):
        raise DestinationRefused(f"an {PUSH_FORMAT} transfer needs a dataAddress naming the destination")
    endpoint = address.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise DestinationRefused("dataAddress.endpoint must name the push destination")
    try:
        policy.check_url(endpoint, what="dataAddress.endpoint")
    except AddressRefused as refused:
        raise DestinationRefused(str(refused)) from None
    properties = dsp.data_address_properties(address)
    media_type = properties.get("mediaType") or ARROW_STREAM
    if media_type not in PUSH_MEDIA_TYPES:
        raise DestinationRefused(
            f"dataAddress mediaType {media_type[:80]!r} is not one of {list(PUSH_MEDIA_TYPES)}"
        )
    authorization = properties.get("authorization") or None
    auth_type = properties.get("authType") or None
    for name, value in (("authorization", authorization), ("authType", auth_type)):
        if value is not None and (len(value) > MAX_CREDENTIAL_CHARS or any(c in value for c in "\r\n\x00")):
            raise DestinationRefused(
                f"dataAddress property {name} must be one line of at most {MAX_CREDENTIAL_CHARS} characters"
            )
    if auth_type is not None and (not auth_type.isascii() or not auth_type.replace("-", "").isalnum()):
        raise DestinationRefused("dataAddress property authType must be an HTTP auth scheme name")
    return PushDestination(endpoint, authorization, auth_type, media_type)


def redacted(body: Mapping[str, Any]) -> dict[str, Any]:
    """A transfer request as we log it: the destination's credentials replaced by ``***``."""
    address = body.get("dataAddress")
    if not isinstance(address, Mapping):
        return dict(body)
    entries = []
    for entry in address.get("endpointProperties", []) or []:
        if isinstance(entry, Mapping) and entry.get("name") == "authorization":
            entry = {**entry, "value": "***"}
        entries.append(entry)
    return {**body, "dataAddress": {**address, "endpointProperties": entries}}


class PushReader(Protocol):
    """What a push needs from the data plane (``connector.dataplane.DataPlane``)."""

    state: ContractState

    def issue_push_access(self, transfer: TransferView, now: datetime | None = None) -> DataAddress: ...

    def prepare_read(
        self,
        transfer_id: str,
        authorization: str | None,
        proof: str | None,
        method: str,
        path: str,
        sql: str | None,
        media_type: str,
        identity: str | None = None,
    ) -> PreparedRead: ...

    def stream(self, read: PreparedRead) -> Iterator[bytes | memoryview]: ...

    def revoke(self, transfer_id: str) -> None: ...


class PushFlow:
    """HTTP push: nothing for the consumer to read from; one delivery owed to its destination."""

    format = PUSH_FORMAT

    def __init__(self, reader: PushReader) -> None:
        self.reader = reader

    def open(self, transfer: TransferView, now: datetime) -> None:
        return None

    def deliveries(self, transfer: TransferView) -> list[OutboundMessage]:
        # the destination and its credentials stay in the process's details, not in the outbox
        return [OutboundMessage(f"push:{transfer.id}", PUSH_AUDIENCE, {"transfer_id": transfer.id})]

    def close(self, transfer_id: str) -> None:
        try:
            self.reader.revoke(transfer_id)
        except Exception:  # the transfer's state already denies reads; log and go on
            _log.exception("data plane revoke failed", extra={"transfer": transfer_id})


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"  # the transfer ends, the consumer told why
    DROPPED = "dropped"  # the transfer no longer runs: nothing more to do


@dataclass(frozen=True)
class PushResult:
    outcome: Outcome
    reason: str = ""


@dataclass(frozen=True)
class _Spooled:
    path: Path
    sha256: bytes
    size: int


class PushDelivery:
    """Delivers the outbox's push items: read through the data plane, spool, ``PUT``.

    The data read for an item is spooled once and kept while the item is retried in this
    process, so a flaky destination does not spend the agreement's reads; before every attempt
    the transfer must still be STARTED and its agreement standing (a revocation stops the next
    attempt). A restart reads again (audited and counted like any read).
    """

    max_attempts = PUSH_MAX_ATTEMPTS

    def __init__(
        self,
        store: Store,
        reader: PushReader,
        key: KeyPair,
        addresses: AddressPolicy,
        provider_id: str,
        finish: Callable[[str, str | None], None],
    ) -> None:
        self.store = store
        self.reader = reader
        self.key = key
        self.addresses = addresses
        self.provider_id = provider_id
        self.finish = finish
        self._spool_root = Path(tempfile.mkdtemp(prefix="sluis-push-"))
        self._spooled: dict[int, _Spooled] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Forget every spooled read (a later attempt reads again)."""
        with self._lock:
            self._spooled.clear()
        shutil.rmtree(self._spool_root, ignore_errors=True)

    # -- what the outbox calls ---------------------------------------------------------------

    def push(self, item: OutboxItem) -> PushResult:
        record = self.store.get_process(item.process_id, "transfer")
        if record is None or record.state != TransferState.STARTED:
            self._forget(item.id)
            state = record.state if record is not None else "gone"
            return PushResult(Outcome.DROPPED, f"the transfer is {state}; nothing pushed")
        agreement = self.reader.state.agreement(record.agreement_id or "")
        if agreement is None or agreement.terminated:
            self._forget(item.id)
            return PushResult(Outcome.REFUSED, "the agreement was terminated; nothing more is pushed")
        try:
            destination = PushDestination.from_json(record.details["push"])
        except (KeyError, TypeError, ValueError):
            return PushResult(Outcome.REFUSED, "the transfer names no push destination")
        try:
            self.addresses.check_url(destination.endpoint, what="the push destination")
        except AddressRefused as refused:
            self._forget(item.id)
            return PushResult(Outcome.REFUSED, str(refused))
        spooled = self._spooled.get(item.id)
        if spooled is None:
            try:
                spooled = self._read(item.id, record, destination.media_type)
            except Busy as busy:
                return PushResult(Outcome.RETRY, busy.message)
            except DataPlaneError as error:
                return PushResult(Outcome.REFUSED, f"the data plane refused the push: {error.message}")
        return self._send(item.id, destination, spooled)

    def delivered(self, item: OutboxItem) -> None:
        self._forget(item.id)
        self.finish(item.process_id, None)

    def failed(self, item: OutboxItem, reason: str) -> None:
        self._forget(item.id)
        self.finish(item.process_id, reason)

    def dropped(self, item: OutboxItem) -> None:
        self._forget(item.id)

    # -- reading and sending ---------------------------------------------------------------

    def _read(self, item_id: int, record: ProcessRecord, media_type: str) -> _Spooled:
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
        )
        digest = hashlib.sha256()
        size = 0
        self._spool_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._spool_root / f"{item_id}.part"
        with path.open("wb") as out:
            for chunk in self.reader.stream(read):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk) if isinstance(chunk, bytes) else chunk.nbytes
        spooled = _Spooled(path, digest.digest(), size)
        with self._lock:
            self._spooled[item_id] = spooled
        return spooled

    def _send(self, item_id: int, destination: PushDestination, spooled: _Spooled) -> PushResult:
        headers = {
            "Content-Type": destination.media_type,
            "Content-Length": str(spooled.size),
            "Content-Digest": f"sha-256=:{base64.b64encode(spooled.sha256).decode()}:",
        }
        authorization = destination.header()
        if authorization:
            headers["Authorization"] = authorization

        try:
            status = self._put(destination.endpoint, headers, spooled.path)
        except PeerRefused as refused:
            self._forget(item_id)
            return PushResult(Outcome.REFUSED, f"the push destination {refused}")
        except ValueError as error:  # a header http.client will not send
            self._forget(item_id)
            return PushResult(Outcome.REFUSED, f"the push request cannot be made: {error}")
        except (OSError, http.client.HTTPException) as error:
            return PushResult(Outcome.RETRY, f"the destination could not be reached: {error}")
        if 200 <= status < 300:
            return PushResult(Outcome.DELIVERED)
        if status in RETRY_STATUSES or status >= 500:
            return PushResult(Outcome.RETRY, f"the destination answered HTTP {status}")
        self._forget(item_id)
        return PushResult(Outcome.REFUSED, f"the destination refused the data: HTTP {status}")

    def _put(self, endpoint: str, headers: dict[str, str], path: Path) -> int:
        """One ``PUT`` of the spooled file; the status. The address the socket actually connected
        to is checked against the address policy (a name may resolve elsewhere than when it was
        checked: DNS rebinding), no redirect is followed, one connection per attempt."""
        parts = urlsplit(endpoint)
        factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = factory(parts.hostname or "", parts.port, timeout=PUSH_TIMEOUT_SECONDS)
        connection._create_connection = guarded_create_connection(self.addresses)  # type: ignore[attr-defined]
        try:
            with path.open("rb") as body:
                connection.request("PUT", parts.path or "/", body=body, headers=headers)
                response = connection.getresponse()
                response.read(MAX_ANSWER_BYTES)  # the answer is not used; bounded
                return int(response.status)
        finally:
            connection.close()

    def _forget(self, item_id: int) -> None:
        with self._lock:
            spooled = self._spooled.pop(item_id, None)
        if spooled is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spooled.path)
