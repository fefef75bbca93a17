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
every attempt. Its credential is kept sealed (:mod:`connector.control.push_secrets`) while the
push is pending and erased from the transfer when the transfer ends. The delivery itself is
:mod:`connector.control.push_delivery`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from connector.addresses import AddressPolicy, AddressRefused
from connector.control.push_secrets import CredentialSealer
from connector.dataplane import ARROW_STREAM, PARQUET, ContractState, DataAddress, TransferView
from connector.dataplane.plane import PreparedRead
from connector.store import OutboundMessage
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


class DestinationRefused(ValueError):
    """A push destination we will not write to; the message says why."""


@dataclass(frozen=True)
class PushDestination:
    """Where a push goes and how: endpoint, the consumer's credentials, the media type."""

    endpoint: str
    authorization: str | None = None
    auth_type: str | None = None
    media_type: str = ARROW_STREAM

    def sealed(self, sealer: CredentialSealer, transfer_id: str) -> dict[str, Any]:
        """What the provider keeps of the destination: the credential sealed for this transfer."""
        kept: dict[str, Any] = {
            "endpoint": self.endpoint,
            "auth_type": self.auth_type,
            "media_type": self.media_type,
        }
        if self.authorization:
            kept["authorization_sealed"] = sealer.seal(self.authorization, _context(transfer_id))
        return kept

    @classmethod
    def opened(cls, data: Mapping[str, Any], sealer: CredentialSealer, transfer_id: str) -> PushDestination:
        """The destination :meth:`sealed` kept, its credential opened (``SealError`` if it will not)."""
        envelope = data.get("authorization_sealed")
        authorization = sealer.open(envelope, _context(transfer_id)) if envelope is not None else None
        legacy = data.get("authorization")  # kept in clear by an earlier release; erased at the end
        if authorization is None and isinstance(legacy, str) and legacy:
            authorization = legacy
        media_type = str(data.get("media_type") or ARROW_STREAM)
        return cls(str(data["endpoint"]), authorization, data.get("auth_type"), media_type)

    @staticmethod
    def erased(data: Mapping[str, Any]) -> dict[str, Any]:
        """The kept destination without its credential (the push has ended: nothing more is sent)."""
        secret = ("authorization_sealed", "authorization")
        return {name: value for name, value in data.items() if name not in secret}

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


def _context(transfer_id: str) -> str:
    return f"push-destination-authorization:{transfer_id}"


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


#: Where a queued message keeps its destination credential sealed (beside ``"value": "***"``);
#: never sent: :func:`opened_request` puts the clear value back just before sending.
SEALED_VALUE = "sluis:sealedValue"


def carries_credential(body: Mapping[str, Any]) -> bool:
    """Whether a message names a push destination with a credential, clear or sealed
    (``redacted`` removes it)."""
    address = body.get("dataAddress")
    if not isinstance(address, Mapping):
        return False
    entries = address.get("endpointProperties")
    return isinstance(entries, list) and any(
        isinstance(entry, Mapping)
        and entry.get("name") == "authorization"
        and (entry.get("value") != "***" or SEALED_VALUE in entry)
        for entry in entries
    )


def has_sealed_credential(body: Mapping[str, Any]) -> bool:
    """Whether a queued message keeps a credential sealed (:func:`sealed_request`)."""
    address = body.get("dataAddress")
    entries = address.get("endpointProperties") if isinstance(address, Mapping) else None
    return isinstance(entries, list) and any(
        isinstance(entry, Mapping) and SEALED_VALUE in entry for entry in entries
    )


def _with_authorization(
    body: Mapping[str, Any], change: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    address = body.get("dataAddress")
    if not isinstance(address, Mapping):
        return dict(body)
    entries = []
    for entry in address.get("endpointProperties", []) or []:
        if isinstance(entry, Mapping) and entry.get("name") == "authorization":
            entry = change(entry)
        entries.append(entry)
    return {**body, "dataAddress": {**address, "endpointProperties": entries}}


def redacted(body: Mapping[str, Any]) -> dict[str, Any]:
    """A transfer request as we log it: the destination's credentials replaced by ``***``."""

    def hide(entry: Mapping[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in entry.items() if k != SEALED_VALUE}, "value": "***"}

    return _with_authorization(body, hide)


def _request_context(process_id: str) -> str:
    return f"push-request-authorization:{process_id}"


def sealed_request(body: Mapping[str, Any], sealer: CredentialSealer, process_id: str) -> dict[str, Any]:
    """A transfer request as the outbox keeps it until sent: the credential sealed for this
    process (a database dump holds no usable credential), the value shown as ``***``."""

    def seal(entry: Mapping[str, Any]) -> dict[str, Any]:
        value = entry.get("value")
        if not isinstance(value, str) or value == "***":
            return dict(entry)
        return {**entry, "value": "***", SEALED_VALUE: sealer.seal(value, _request_context(process_id))}

    return _with_authorization(body, seal)


def opened_request(body: Mapping[str, Any], sealer: CredentialSealer, process_id: str) -> dict[str, Any]:
    """The message :func:`sealed_request` kept, as it is sent: the credential in clear
    (:class:`~connector.control.push_secrets.SealError` when it does not open)."""

    def open_(entry: Mapping[str, Any]) -> dict[str, Any]:
        if SEALED_VALUE not in entry:
            return dict(entry)
        clear = sealer.open(entry[SEALED_VALUE], _request_context(process_id))
        return {**{k: v for k, v in entry.items() if k != SEALED_VALUE}, "value": clear}

    return _with_authorization(body, open_)


class PushReader(Protocol):
    """What a push needs from the data plane (``connector.dataplane.DataPlane``)."""

    state: ContractState
    data_root: Path | None

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
        read_key: str | None = None,
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
