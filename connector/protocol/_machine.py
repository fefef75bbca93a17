"""The shape every DSP state machine shares: a transition table and a pure step function.

This module does not know which protocol it drives, which role we play, or how messages travel.
A table maps *who sends* (a role) and *the current state* to the messages that role may send in
that state and the state each one leads to. ``step`` looks the triple up and answers with a
:class:`Transition` or, when the message is not allowed, an :class:`IllegalTransition` value that
names the state, the message and the sender. Nothing here raises for an illegal message: the
caller decides whether that becomes a DSP error, a log line or a test assertion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar


class Role(StrEnum):
    """The two parties of every DSP process."""

    PROVIDER = "provider"
    CONSUMER = "consumer"

    @property
    def other(self) -> Role:
        return Role.CONSUMER if self is Role.PROVIDER else Role.PROVIDER


class Effect(StrEnum):
    """What the *receiving* connector has to do after a message moved a process.

    Effects are data: the service layer (I/O) carries them out; the state machine never does.
    """

    DECIDE_ON_REQUEST = "decide-on-request"  # provider: evaluate the requested offer, agree or re-offer
    DECIDE_ON_OFFER = "decide-on-offer"  # consumer: accept the offer or wait for the user
    SEND_AGREEMENT = "send-agreement"  # provider: build, sign and send the agreement
    VERIFY_AGREEMENT = "verify-agreement"  # consumer: check the provider's signature and counter-sign
    FINALIZE = "finalize"  # provider: tell the consumer the negotiation is final
    START_TRANSFER = "start-transfer"  # provider: issue access and send the start message
    REISSUE_ACCESS = "reissue-access"  # provider: check access again, send a fresh data address
    RECORD_DATA_ADDRESS = "record-data-address"  # consumer: keep the endpoint and token
    REVOKE_ACCESS = "revoke-access"  # provider: stop the data plane from serving the transfer


S = TypeVar("S", bound=StrEnum)
M = TypeVar("M", bound=StrEnum)

#: sender role -> current state -> message -> next state
TransitionTable = Mapping[Role, Mapping[S, Mapping[M, S]]]
#: (receiving role, message, next state) -> effects the receiver carries out
ReactionTable = Mapping[tuple[Role, M, S], tuple[Effect, ...]]


@dataclass(frozen=True)
class Transition(Generic[S, M]):
    """A legal step: the state before, the message, who sent it, the state after, and what follows."""

    before: S
    message: M
    sender: Role
    after: S
    effects: tuple[Effect, ...]


@dataclass(frozen=True)
class IllegalTransition(Generic[S, M]):
    """A message that the sender may not send in this state; a value, not an exception."""

    state: S
    message: M
    sender: Role
    allowed: tuple[M, ...]

    @property
    def code(self) -> str:
        return "illegal-transition"

    @property
    def reason(self) -> str:
        allowed = ", ".join(self.allowed) or "nothing (the process is over)"
        return (
            f"a {self.sender} may not send {self.message} while the process is {self.state}; "
            f"allowed: {allowed}"
        )


def step(
    table: TransitionTable[S, M],
    reactions: ReactionTable[M, S],
    state: S,
    message: M,
    sender: Role,
) -> Transition[S, M] | IllegalTransition[S, M]:
    """Apply one message to one state; pure, total, and the only place transitions are decided."""
    by_state = table.get(sender, {})
    moves = by_state.get(state, {})
    after = moves.get(message)
    if after is None:
        return IllegalTransition(state, message, sender, tuple(moves))
    effects = reactions.get((sender.other, message, after), ())
    return Transition(state, message, sender, after, effects)


def all_states(table: TransitionTable[S, M]) -> list[S]:
    """Every state the table mentions, in first-seen order (for diagrams and exhaustive tests)."""
    seen: dict[S, None] = {}
    for by_state in table.values():
        for state, moves in by_state.items():
            seen.setdefault(state, None)
            for after in moves.values():
                seen.setdefault(after, None)
    return list(seen)
