"""DSP 2025-1 contract negotiation and transfer process as pure state machines.

Tables plus one lookup per protocol; no I/O. See ``docs/protocol.md`` (generated from here).
"""

from connector.protocol._machine import Effect, IllegalTransition, Role, Transition, all_states
from connector.protocol.negotiation import (
    FINAL_NEGOTIATION_STATES,
    NEGOTIATION_REACTIONS,
    NEGOTIATION_TRANSITIONS,
    NegotiationMessage,
    NegotiationState,
    negotiation_message_for,
    negotiation_step,
)
from connector.protocol.transfer import (
    FINAL_TRANSFER_STATES,
    TRANSFER_REACTIONS,
    TRANSFER_TRANSITIONS,
    TransferMessage,
    TransferState,
    transfer_step,
)

__all__ = [
    "FINAL_NEGOTIATION_STATES",
    "FINAL_TRANSFER_STATES",
    "NEGOTIATION_REACTIONS",
    "NEGOTIATION_TRANSITIONS",
    "TRANSFER_REACTIONS",
    "TRANSFER_TRANSITIONS",
    "Effect",
    "IllegalTransition",
    "NegotiationMessage",
    "NegotiationState",
    "Role",
    "TransferMessage",
    "TransferState",
    "Transition",
    "all_states",
    "negotiation_message_for",
    "negotiation_step",
    "transfer_step",
]
