"""DSP 2025-1 transfer process as a table: who may send which message in which state.

Pure data and one lookup, like :mod:`connector.protocol.negotiation`. A suspended transfer is
resumed by a start message from either side; ``COMPLETED`` and ``TERMINATED`` are final.
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


class TransferState(StrEnum):
    INITIAL = "INITIAL"
    REQUESTED = "REQUESTED"
    STARTED = "STARTED"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    TERMINATED = "TERMINATED"


class TransferMessage(StrEnum):
    REQUEST = "TransferRequestMessage"
    START = "TransferStartMessage"
    SUSPENSION = "TransferSuspensionMessage"
    COMPLETION = "TransferCompletionMessage"
    TERMINATION = "TransferTerminationMessage"


_T = TransferState
_Msg = TransferMessage


def _common_moves() -> dict[_T, dict[_Msg, _T]]:
    """Moves both parties may make once a transfer exists."""
    return {
        _T.REQUESTED: {_Msg.TERMINATION: _T.TERMINATED},
        _T.STARTED: {
            _Msg.SUSPENSION: _T.SUSPENDED,
            _Msg.COMPLETION: _T.COMPLETED,
            _Msg.TERMINATION: _T.TERMINATED,
        },
        _T.SUSPENDED: {_Msg.START: _T.STARTED, _Msg.TERMINATION: _T.TERMINATED},
    }


def _consumer_moves() -> dict[_T, dict[_Msg, _T]]:
    moves = _common_moves()
    moves[_T.INITIAL] = {_Msg.REQUEST: _T.REQUESTED}
    return moves


def _provider_moves() -> dict[_T, dict[_Msg, _T]]:
    moves = _common_moves()
    moves[_T.REQUESTED] = {_Msg.START: _T.STARTED, **moves[_T.REQUESTED]}
    # a provider answers a consumer's resume with a start message carrying a fresh data address
    moves[_T.STARTED] = {_Msg.START: _T.STARTED, **moves[_T.STARTED]}
    return moves


TRANSFER_TRANSITIONS: TransitionTable[TransferState, TransferMessage] = {
    Role.CONSUMER: _consumer_moves(),
    Role.PROVIDER: _provider_moves(),
}

#: A suspension revokes the consumer's tokens, so every resume - whoever sends it - ends with a
#: start message from the provider carrying a fresh data address: the provider's own resume
#: carries it; a consumer's resume is answered with one (STARTED -> STARTED).
TRANSFER_REACTIONS: ReactionTable[TransferMessage, TransferState] = {
    (Role.PROVIDER, _Msg.REQUEST, _T.REQUESTED): (Effect.START_TRANSFER,),
    (Role.PROVIDER, _Msg.START, _T.STARTED): (Effect.REISSUE_ACCESS,),
    (Role.CONSUMER, _Msg.START, _T.STARTED): (Effect.RECORD_DATA_ADDRESS,),
    (Role.PROVIDER, _Msg.SUSPENSION, _T.SUSPENDED): (Effect.REVOKE_ACCESS,),
    (Role.PROVIDER, _Msg.COMPLETION, _T.COMPLETED): (Effect.REVOKE_ACCESS,),
    (Role.PROVIDER, _Msg.TERMINATION, _T.TERMINATED): (Effect.REVOKE_ACCESS,),
}

FINAL_TRANSFER_STATES = frozenset({_T.COMPLETED, _T.TERMINATED})

TransferTransition = Transition[TransferState, TransferMessage]
IllegalTransferTransition = IllegalTransition[TransferState, TransferMessage]


def transfer_step(
    state: TransferState, message: TransferMessage, sender: Role
) -> TransferTransition | IllegalTransferTransition:
    """The next state when ``sender`` sends ``message`` in ``state`` (or why it may not)."""
    return step(TRANSFER_TRANSITIONS, TRANSFER_REACTIONS, state, message, sender)
