"""The control plane's two refusals and its DSP answer.

A :class:`DspError` answers a peer over DSP (it becomes a ``ContractNegotiationError``,
``TransferError`` or ``CatalogError``); a :class:`ServiceError` answers the participant's own
management API (it becomes a problem response). Both carry a machine-readable code and a
sentence; the HTTP layers map them, nothing here knows about HTTP responses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Longest reason text we store or send (a peer's reasons are cut to it too).
MAX_REASON_CHARS = 1000


#: Identity failures that say the peer's DID host is unavailable now, not that anything is wrong:
#: a step that meets one is answered 503 (the sender's outbox tries again) and changes nothing.
TRANSIENT_IDENTITY_CODES = frozenset({"did_unreachable", "did_resolver_busy"})


def transient(reason: str) -> DspError:
    """The answer to a step that could not be decided *now* (a DID host unavailable)."""
    return DspError(503, "temporarily-unavailable", f"{reason}; send the message again later")


class DspError(Exception):
    """A DSP-level refusal: becomes a ``ContractNegotiationError``/``TransferError``/``CatalogError``."""

    def __init__(
        self, status: int, code: str, reason: str, *, provider_pid: str = "", consumer_pid: str = ""
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason[:MAX_REASON_CHARS]
        self.provider_pid = provider_pid
        self.consumer_pid = consumer_pid


class ServiceError(Exception):
    """A management request that cannot be carried out (unknown id, wrong state, bad input)."""

    def __init__(self, status: int, code: str, reason: str, field_name: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.field = field_name


@dataclass(frozen=True)
class DspReply:
    """A successful DSP answer: status and, when the binding returns one, the body."""

    status: int
    body: dict[str, Any] | None = None
