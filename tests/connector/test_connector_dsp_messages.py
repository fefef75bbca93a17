"""DSP message builders, our schema checks and the compact-form fast path (vocab.dsp)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.connector.conftest import OfficialSchemas
from vocab import dsp, jsonld

PIDS = ("urn:uuid:p-1", "urn:uuid:c-1")
OFFER = {"@id": "urn:offer:1", "@type": "Offer", "target": "urn:ds:1", "permission": [{"action": "use"}]}
AGREEMENT = {
    "@id": "urn:agreement:1",
    "@type": "Agreement",
    "target": "urn:ds:1",
    "assigner": "did:web:p",
    "assignee": "did:web:c",
    "timestamp": "2026-01-01T00:00:00Z",
    "permission": [{"action": "use"}],
}


def _built_messages() -> list[dict[str, object]]:
    address = dsp.data_address("http://127.0.0.1/data/t", {"authorization": "tok", "authType": "DPoP"})
    return [
        dsp.catalog_request_message(),
        dsp.dataset_request_message("urn:ds:1"),
        dsp.catalog_error("not-found", ["no such dataset"]),
        dsp.contract_request_message(PIDS[1], OFFER, callback_address="http://127.0.0.1/dsp"),
        dsp.contract_request_message(PIDS[1], OFFER, provider_pid=PIDS[0]),
        dsp.contract_offer_message(PIDS[0], OFFER, consumer_pid=PIDS[1]),
        dsp.contract_agreement_message(*PIDS, AGREEMENT),
        dsp.agreement_verification_message(*PIDS),
        dsp.negotiation_event_message(*PIDS, "ACCEPTED"),
        dsp.negotiation_termination_message(*PIDS, "99", ["changed my mind"]),
        dsp.contract_negotiation(*PIDS, "REQUESTED"),
        dsp.negotiation_error(*PIDS, "illegal-transition", ["not now"]),
        dsp.transfer_request_message(PIDS[1], "urn:agreement:1", "HttpData-PULL", "http://127.0.0.1/dsp"),
        dsp.transfer_start_message(*PIDS, address),
        dsp.transfer_suspension_message(*PIDS, "paused", ["maintenance"]),
        dsp.transfer_completion_message(*PIDS),
        dsp.transfer_termination_message(*PIDS),
        dsp.transfer_process(*PIDS, "STARTED"),
        dsp.transfer_error(*PIDS, "denied", ["policy"]),
    ]


@pytest.mark.parametrize("message", _built_messages(), ids=lambda m: str(m["@type"]))
def test_built_messages_pass_our_checks_and_the_official_schemas(
    message: dict[str, object], official_schemas: OfficialSchemas
) -> None:
    assert dsp.check_message(message) == []
    assert dsp.is_known_compact_form(message)
    assert official_schemas.errors(message) == []


def test_every_official_example_is_recognised_on_the_fast_path(dsp_examples: Path) -> None:
    seen = 0
    for file in sorted(dsp_examples.rglob("*.json")):
        example = json.loads(file.read_text())
        if example.get("@type") not in dsp.MESSAGE_SCHEMAS:
            continue
        message = dsp.read_message(example)
        assert message.fast_path, file.name
        assert message.body == example, file.name
        seen += 1
    assert seen == 24


def test_prefixed_terms_take_the_json_ld_path_and_come_back_in_compact_form() -> None:
    prefixed = {
        "@context": [dsp.DSP_CONTEXT_URL],
        "@type": "ContractAgreementVerificationMessage",
        "dspace:providerPid": {"@id": PIDS[0]},
        "dspace:consumerPid": {"@id": PIDS[1]},
    }
    assert not dsp.is_known_compact_form(prefixed)
    message = dsp.read_message(prefixed)
    assert not message.fast_path
    assert message.body == dsp.agreement_verification_message(*PIDS)


def test_expanded_json_ld_is_understood_too() -> None:
    compact = dsp.negotiation_event_message(*PIDS, "FINALIZED")
    expanded = jsonld.expand(compact, base="https://dsp.invalid/")
    message = dsp.read_message(expanded[0])
    assert not message.fast_path
    assert message.body == compact


def test_both_paths_agree_on_a_contract_request() -> None:
    compact = dsp.contract_request_message(PIDS[1], OFFER, callback_address="http://127.0.0.1/dsp")
    assert dsp.read_message(compact).body == dsp.read_message_naive(compact).body == compact


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        (lambda m: m.pop("consumerPid"), "(message)"),
        (lambda m: m.update({"consumerPid": 7}), "consumerPid"),
        (lambda m: m["offer"].pop("@id"), "offer"),
        (
            lambda m: m["offer"]["permission"][0].update(
                {"constraint": [{"leftOperand": "x", "operator": "near", "rightOperand": "y"}]}
            ),
            "offer",
        ),
    ],
)
def test_invalid_messages_are_refused_naming_the_field(mutation: object, field: str) -> None:
    message = json.loads(
        json.dumps(dsp.contract_request_message(PIDS[1], OFFER, callback_address="http://x/dsp"))
    )
    mutation(message)  # type: ignore[operator]
    with pytest.raises(dsp.DspMessageError) as raised:
        dsp.read_message(message)
    assert raised.value.field.startswith(field)


def test_unexpected_type_and_remote_contexts_are_refused() -> None:
    with pytest.raises(dsp.DspMessageError, match="expected ContractRequestMessage"):
        dsp.read_message(dsp.catalog_request_message(), expected={"ContractRequestMessage"})
    remote = {"@context": "https://example.org/evil.jsonld", "@type": "CatalogRequestMessage"}
    with pytest.raises(dsp.DspMessageError) as raised:
        dsp.read_message(remote)
    assert raised.value.code == "unknown-context"


def test_too_deep_messages_are_refused_before_any_processing() -> None:
    deep: object = "x"
    for _ in range(dsp.MAX_MESSAGE_DEPTH + 5):
        deep = [deep]
    with pytest.raises(dsp.DspMessageError, match="deeper"):
        dsp.read_message({**dsp.catalog_request_message(), "filter": [deep]})
