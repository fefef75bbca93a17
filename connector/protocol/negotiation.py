"""DSP 2025-1 contract negotiation as a table: who may send which message in which state.

The table is the specification's state machine, nothing more. It knows nothing about HTTP,
storage or policies; ``negotiation_step`` is a pure lookup. ``INITIAL`` stands for "no process
yet" (it is never stored or sent): the consumer's first request or the provider's first offer
create a process. ``FINALIZED`` and ``TERMINATED`` are final: nothing leaves them.
"""

from __future__ import annotations

from enum import StrEnum

from connector.protocol._machine import (
    Effect,
    IllegalTransition,
    ReactionTable,
    Role,
    Transition,
    TransitionTable,
    step,
)


class NegotiationState(StrEnum):
    INITIAL = "INITIAL"
    REQUESTED = "REQUESTED"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    AGREED = "AGREED"
    VERIFIED = "VERIFIED"
    FINALIZED = "FINALIZED"
    TERMINATED = "TERMINATED"


class NegotiationMessage(StrEnum):
    """The messages of the protocol; the event message is two messages, one per ``eventType``."""

    REQUEST = "ContractRequestMessage"
    OFFER = "ContractOfferMessage"
    ACCEPT = "ContractNegotiationEventMessage:ACCEPTED"
    AGREEMENT = "ContractAgreementMessage"
    VERIFICATION = "ContractAgreementVerificationMessage"
    FINALIZE = "ContractNegotiationEventMessage:FINALIZED"
    TERMINATION = "ContractNegotiationTerminationMessage"


_N = NegotiationState
_Msg = NegotiationMessage

#: States from which either party may still walk away.
_OPEN_STATES = (_N.REQUESTED, _N.OFFERED, _N.ACCEPTED, _N.AGREED, _N.VERIFIED)


def _with_termination(moves: dict[_N, dict[_Msg, _N]]) -> dict[_N, dict[_Msg, _N]]:
    for state in _OPEN_STATES:
        moves.setdefault(state, {})[_Msg.TERMINATION] = _N.TERMINATED
    return moves


NEGOTIATION_TRANSITIONS: TransitionTable[NegotiationState, NegotiationMessage] = {
    Role.CONSUMER: _with_termination(
        {
            _N.INITIAL: {_Msg.REQUEST: _N.REQUESTED},
            _N.OFFERED: {_Msg.REQUEST: _N.REQUESTED, _Msg.ACCEPT: _N.ACCEPTED},
            _N.AGREED: {_Msg.VERIFICATION: _N.VERIFIED},
        }
    ),
    Role.PROVIDER: _with_termination(
        {
            _N.INITIAL: {_Msg.OFFER: _N.OFFERED},
            _N.REQUESTED: {_Msg.OFFER: _N.OFFERED, _Msg.AGREEMENT: _N.AGREED},
            _N.ACCEPTED: {_Msg.AGREEMENT: _N.AGREED},
            _N.VERIFIED: {_Msg.FINALIZE: _N.FINALIZED},
        }
    ),
}

#: (receiving role, message, new state) -> what the receiver does next.
NEGOTIATION_REACTIONS: ReactionTable[NegotiationMessage, NegotiationState] = {
    (Role.PROVIDER, _Msg.REQUEST, _N.REQUESTED): (Effect.DECIDE_ON_REQUEST,),
    (Role.CONSUMER, _Msg.OFFER, _N.OFFERED): (Effect.DECIDE_ON_OFFER,),
    (Role.PROVIDER, _Msg.ACCEPT, _N.ACCEPTED): (Effect.SEND_AGREEMENT,),
    (Role.CONSUMER, _Msg.AGREEMENT, _N.AGREED): (Effect.VERIFY_AGREEMENT,),
    (Role.PROVIDER, _Msg.VERIFICATION, _N.VERIFIED): (Effect.FINALIZE,),
}

FINAL_NEGOTIATION_STATES = frozenset({_N.FINALIZED, _N.TERMINATED})

NegotiationTransition = Transition[NegotiationState, NegotiationMessage]
IllegalNegotiationTransition = IllegalTransition[NegotiationState, NegotiationMessage]


def negotiation_step(
    state: NegotiationState, message: NegotiationMessage, sender: Role
) -> NegotiationTransition | IllegalNegotiationTransition:
    """The next state when ``sender`` sends ``message`` in ``state`` (or why it may not)."""
    return step(NEGOTIATION_TRANSITIONS, NEGOTIATION_REACTIONS, state, message, sender)


def negotiation_message_for(dsp_type: str, event_type: str | None = None) -> NegotiationMessage | None:
    """Map a message's ``@type`` (and ``eventType`` for events) to the table's message."""
    if dsp_type == "ContractNegotiationEventMessage":
        dsp_type = f"{dsp_type}:{event_type}"
    try:
        return NegotiationMessage(dsp_type)
    except ValueError:
        return None
