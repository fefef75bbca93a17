"""The DSP state machines as tables: every legal step and every illegal one, as values."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from connector.protocol import (
    FINAL_NEGOTIATION_STATES,
    FINAL_TRANSFER_STATES,
    NEGOTIATION_TRANSITIONS,
    TRANSFER_TRANSITIONS,
    Effect,
    IllegalTransition,
    NegotiationMessage,
    NegotiationState,
    Role,
    TransferMessage,
    TransferState,
    Transition,
    negotiation_message_for,
    negotiation_step,
    transfer_step,
)
from connector.protocol.diagrams import render_protocol_doc

N = NegotiationState
NM = NegotiationMessage
T = TransferState
TM = TransferMessage


def test_the_happy_negotiation_walks_requested_agreed_verified_finalized() -> None:
    path = [
        (N.INITIAL, NM.REQUEST, Role.CONSUMER, N.REQUESTED, (Effect.DECIDE_ON_REQUEST,)),
        (N.REQUESTED, NM.AGREEMENT, Role.PROVIDER, N.AGREED, (Effect.VERIFY_AGREEMENT,)),
        (N.AGREED, NM.VERIFICATION, Role.CONSUMER, N.VERIFIED, (Effect.FINALIZE,)),
        (N.VERIFIED, NM.FINALIZE, Role.PROVIDER, N.FINALIZED, ()),
    ]
    for before, message, sender, after, effects in path:
        result = negotiation_step(before, message, sender)
        assert isinstance(result, Transition), result
        assert (result.after, result.effects) == (after, effects)


def test_counter_offer_round_trip() -> None:
    offered = negotiation_step(N.REQUESTED, NM.OFFER, Role.PROVIDER)
    assert isinstance(offered, Transition)
    assert offered.after == N.OFFERED
    assert offered.effects == (Effect.DECIDE_ON_OFFER,)
    again = negotiation_step(N.OFFERED, NM.REQUEST, Role.CONSUMER)
    assert isinstance(again, Transition)
    assert again.after == N.REQUESTED
    accepted = negotiation_step(N.OFFERED, NM.ACCEPT, Role.CONSUMER)
    assert isinstance(accepted, Transition)
    assert accepted.effects == (Effect.SEND_AGREEMENT,)


@pytest.mark.parametrize("sender", list(Role))
def test_either_party_may_terminate_any_open_negotiation_and_nothing_leaves_a_final_state(
    sender: Role,
) -> None:
    for state in N:
        result = negotiation_step(state, NM.TERMINATION, sender)
        if state in FINAL_NEGOTIATION_STATES or state == N.INITIAL:
            assert isinstance(result, IllegalTransition)
        else:
            assert isinstance(result, Transition)
            assert result.after == N.TERMINATED
    for state, message in itertools.product(FINAL_NEGOTIATION_STATES, NM):
        assert isinstance(negotiation_step(state, message, sender), IllegalTransition)


def test_every_negotiation_triple_is_either_in_the_table_or_an_error_value() -> None:
    legal = illegal = 0
    for state, message, sender in itertools.product(N, NM, Role):
        result = negotiation_step(state, message, sender)
        in_table = message in NEGOTIATION_TRANSITIONS[sender].get(state, {})
        if in_table:
            assert isinstance(result, Transition)
            legal += 1
        else:
            assert isinstance(result, IllegalTransition)
            assert result.state == state
            assert result.message == message
            assert result.sender == sender
            assert str(state) in result.reason
            assert str(message) in result.reason
            assert result.code == "illegal-transition"
            illegal += 1
    assert legal == 19
    assert illegal == len(N) * len(NM) * 2 - 19


def test_a_consumer_cannot_send_the_agreement() -> None:
    result = negotiation_step(N.REQUESTED, NM.AGREEMENT, Role.CONSUMER)
    assert isinstance(result, IllegalTransition)
    assert "consumer may not send ContractAgreementMessage while the process is REQUESTED" in result.reason


def test_event_messages_map_by_event_type() -> None:
    assert negotiation_message_for("ContractNegotiationEventMessage", "ACCEPTED") == NM.ACCEPT
    assert negotiation_message_for("ContractNegotiationEventMessage", "FINALIZED") == NM.FINALIZE
    assert negotiation_message_for("ContractNegotiationEventMessage", "OTHER") is None
    assert negotiation_message_for("TransferStartMessage") is None


def test_transfer_start_suspend_resume_complete() -> None:
    steps = [
        (T.INITIAL, TM.REQUEST, Role.CONSUMER, T.REQUESTED),
        (T.REQUESTED, TM.START, Role.PROVIDER, T.STARTED),
        (T.STARTED, TM.SUSPENSION, Role.CONSUMER, T.SUSPENDED),
        (T.SUSPENDED, TM.START, Role.CONSUMER, T.STARTED),
        (T.STARTED, TM.COMPLETION, Role.PROVIDER, T.COMPLETED),
    ]
    for before, message, sender, after in steps:
        result = transfer_step(before, message, sender)
        assert isinstance(result, Transition)
        assert result.after == after


def test_only_the_provider_starts_a_requested_transfer() -> None:
    result = transfer_step(T.REQUESTED, TM.START, Role.CONSUMER)
    assert isinstance(result, IllegalTransition)
    assert result.allowed == (TM.TERMINATION,)


def test_provider_revokes_access_whenever_the_consumer_stops_a_transfer() -> None:
    for message, after in (
        (TM.SUSPENSION, T.SUSPENDED),
        (TM.COMPLETION, T.COMPLETED),
        (TM.TERMINATION, T.TERMINATED),
    ):
        result = transfer_step(T.STARTED, message, Role.CONSUMER)
        assert isinstance(result, Transition)
        assert result.after == after
        assert result.effects == (Effect.REVOKE_ACCESS,)


def test_every_transfer_triple_is_either_in_the_table_or_an_error_value() -> None:
    for state, message, sender in itertools.product(T, TM, Role):
        result = transfer_step(state, message, sender)
        if message in TRANSFER_TRANSITIONS[sender].get(state, {}):
            assert isinstance(result, Transition)
        else:
            assert isinstance(result, IllegalTransition)
            assert str(state) in result.reason
    for state, message, sender in itertools.product(FINAL_TRANSFER_STATES, TM, Role):
        assert isinstance(transfer_step(state, message, sender), IllegalTransition)


def test_protocol_doc_is_generated_from_the_tables() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
    assert doc.read_text(encoding="utf-8") == render_protocol_doc(), (
        "docs/protocol.md is stale: python -m connector.protocol.diagrams > docs/protocol.md"
    )
    rendered = render_protocol_doc()
    for role in Role:
        for state, moves in NEGOTIATION_TRANSITIONS[role].items():
            for message, after in moves.items():
                assert f"| {role} | {state} | {message} | {after} |" in rendered


def test_extension_members_in_the_doc_are_the_ones_the_service_sends() -> None:
    from connector.protocol import extensions as service
    from connector.protocol.diagrams import EXTENSION_MEMBERS

    # every EXT_ member the service defines, so a new one cannot go undocumented
    sent = {value for name, value in vars(service).items() if name.startswith("EXT_")}
    assert service.EXT_AGREEMENT_TERMINATED in sent
    assert set(EXTENSION_MEMBERS) == sent
