"""A DSP token's id written with the step it authorised: one write transaction per message, not two.

``verify_token`` asks a replay guard whether a token id (``jti``) is new. Answered by an insert
of its own, that is a write transaction for every DSP request - four of the thirteen a
negotiation makes. Inside :func:`deferred_replay` the guard is a :class:`DeferredReplay`: it
answers "new" and keeps the id, and the store's process write (``create_process``, ``advance``)
inserts it in the same transaction as the step. A replay racing the first use then meets the
primary key there and the whole step rolls back (:class:`TokenReplayed`), so exactly one of them
changes anything, as before.

A request that writes no process - a catalog request, a state query, a redelivery acknowledged
again, a message refused before any write - has its id recorded on its own when the block ends
(:meth:`DeferredReplay.settle`), and a replay of such a request is still refused: its answer is
dropped, and it changed nothing because nothing was written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Protocol

_PENDING: ContextVar[DeferredReplay | None] = ContextVar("sluis_pending_jti", default=None)


class TokenReplayed(Exception):
    """The token id was used before (found when the step's transaction inserted it)."""

    code = "token_replayed"


class _Guard(Protocol):
    def check_and_remember(self, jti: str, expires_at: datetime | float | int) -> bool: ...


class DeferredReplay:
    """The replay guard of one request whose process write records the token id."""

    def __init__(self) -> None:
        self.jti: str | None = None
        self.expires_at: float = 0.0
        #: Set once a committed transaction holds the id.
        self.recorded = False

    def check_and_remember(self, jti: str, expires_at: datetime | float | int) -> bool:
        """Keep the id for the step's transaction; the answer is given there (or by :meth:`settle`)."""
        self.jti = jti
        self.expires_at = expires_at.timestamp() if isinstance(expires_at, datetime) else float(expires_at)
        return True

    def settle(self, guard: _Guard) -> None:
        """Record the id on its own if no process write did; raise :class:`TokenReplayed` for a replay."""
        if self.jti is None or self.recorded:
            return
        if not guard.check_and_remember(self.jti, self.expires_at):
            raise TokenReplayed(f"the token id {self.jti} was already used")
        self.recorded = True


@contextmanager
def deferred_replay() -> Iterator[DeferredReplay]:
    """A block whose process write records the token id verified in it (see the module docstring).
    The caller settles the id when the block's work is done."""
    pending = DeferredReplay()
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def pending_replay() -> DeferredReplay | None:
    """The deferred id of the request running in this context, if any and not yet recorded."""
    pending = _PENDING.get()
    return pending if pending is not None and pending.jti is not None and not pending.recorded else None


def deferral() -> DeferredReplay | None:
    """The replay guard to verify this context's token with, inside :func:`deferred_replay`."""
    return _PENDING.get()
