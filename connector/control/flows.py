"""How data moves once a transfer starts: one :class:`TransferFlow` per transfer format.

The control plane decides *whether* a transfer may start; the flow decides *how* the consumer
gets the data. HTTP pull (``HttpData-PULL``, :class:`PullFlow`) opens access on the data plane
and hands the consumer a :class:`~connector.dataplane.DataAddress` (endpoint plus a fresh,
key-bound token); HTTP push (``HttpData-PUSH``, :class:`~connector.control.push.PushFlow`)
instead owes the destination the consumer gave one delivery, queued in the outbox. Every
start - the first and each resume after a suspension - opens access anew; every suspension,
completion or termination closes it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from connector.dataplane import DataAddress
from connector.dataplane.contract_state import TransferView
from connector.store import OutboundMessage
from vocab import dsp

_log = logging.getLogger(__name__)

#: The format of HTTP pull through our data plane.
PULL_FORMAT = "HttpData-PULL"


class AccessIssuer(Protocol):
    """What the pull flow needs from the data plane (``connector.dataplane.DataPlane``)."""

    def issue_access(self, transfer: TransferView, now: datetime) -> DataAddress: ...

    def revoke(self, transfer_id: str) -> None: ...


class TransferFlow(Protocol):
    """One transfer format, provider side."""

    format: str

    def open(self, transfer: TransferView, now: datetime) -> DataAddress | None:
        """Let data flow for a (re)started transfer; the address the consumer reads from, if any."""
        ...

    def deliveries(self, transfer: TransferView) -> list[OutboundMessage]:
        """What the start owes beyond the ``TransferStartMessage`` (queued behind it)."""
        ...

    def close(self, transfer_id: str) -> None:
        """Stop data flowing (suspended, completed, terminated); must not raise."""
        ...


class PullFlow:
    """HTTP pull: the consumer's job reads from our data plane with a DPoP-bound token."""

    format = PULL_FORMAT

    def __init__(self, issuer: AccessIssuer) -> None:
        self.issuer = issuer

    def open(self, transfer: TransferView, now: datetime) -> DataAddress:
        return self.issuer.issue_access(transfer, now)

    def deliveries(self, transfer: TransferView) -> list[OutboundMessage]:
        return []  # the consumer's job comes to read

    def close(self, transfer_id: str) -> None:
        try:
            self.issuer.revoke(transfer_id)
        except Exception:  # the transfer's state already denies reads; log and go on
            _log.exception("data plane revoke failed", extra={"transfer": transfer_id})


def received_address(address: Mapping[str, Any]) -> dict[str, Any]:
    """What a consumer keeps of the ``DataAddress`` a provider sent (the job reads it).

    A complete pull address becomes our :class:`DataAddress`; a peer that sends less (another
    product's address without expiry or refresh endpoint) is kept as given, field by field.
    """
    properties = dsp.data_address_properties(address)
    endpoint = address.get("endpoint")
    token = properties.get("authorization")
    expires = properties.get("expiresAt")
    refresh = properties.get("refreshEndpoint")
    if isinstance(endpoint, str) and token and expires and refresh:
        try:
            moment = datetime.fromisoformat(expires)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            kept = DataAddress(endpoint, token, moment, refresh, properties.get("authType") or "DPoP")
            return kept.to_json()
    return {
        "endpoint": endpoint,
        "token": token,
        "token_type": properties.get("authType"),
        "expires_at": expires,
        "refresh_endpoint": refresh,
    }
