"""Two real connectors on loopback negotiate, agree, transfer and terminate over DSP 2025-1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from connector.identity import DidResolver, verify_agreement
from tests.connector.conftest import OfficialSchemas
from tests.connector.dsp_world import (
    AI_TRAINING,
    RESEARCH,
    Authority,
    Party,
    Recorder,
    fetch_offer,
    negotiate,
    publish_dataset,
    running_party,
    wait_for_state,
)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def pair(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str], recorder: Recorder
) -> Iterator[tuple[Party, Party]]:
    with (
        running_party(tmp_path, "provider", authority, storage_urls("provider"), recorder) as provider,
        running_party(tmp_path, "consumer", authority, storage_urls("consumer"), recorder) as consumer,
    ):
        yield provider, consumer


def _assert_all_schema_valid(recorder: Recorder, official_schemas: OfficialSchemas) -> None:
    assert recorder.messages, "no DSP message was exchanged"
    failures = []
    for direction, path, body in recorder.messages:
        errors = official_schemas.errors(body)
        if errors:
            failures.append(f"{direction} {path} {body.get('@type')}: {errors[:3]}")
    assert not failures, "\n".join(failures)


def test_consumer_negotiates_signed_agreement_and_starts_a_transfer(
    pair: tuple[Party, Party], recorder: Recorder, official_schemas: OfficialSchemas
) -> None:
    provider, consumer = pair
    dataset_id = publish_dataset(provider)
    offer = fetch_offer(consumer, provider, dataset_id)
    assert "target" not in offer

    negotiation_id = negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH)
    finished = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED", "TERMINATED")
    assert finished["state"] == "FINALIZED", finished
    agreement_id = finished["agreement_id"]
    wait_for_state(provider, "negotiations", finished["provider_pid"], "FINALIZED")

    with provider.management() as api:
        signed = api.get(f"/agreements/{agreement_id}").json()
    with DidResolver() as resolver:
        verification = verify_agreement(signed, resolver, require_countersignature=True)
    assert verification.valid, verification.reason
    assert verification.assigner == provider.did
    assert verification.assignee == consumer.did
    assert signed["target"] == dataset_id

    with consumer.management() as api:
        response = api.post(
            "/transfers",
            json={
                "agreement_id": agreement_id,
                "counterparty_address": provider.dsp,
                "job": {
                    "id": "job-1",
                    "purpose": RESEARCH,
                    "compute_site": "https://w3id.org/sluis/place/NL-NH",
                },
            },
        )
        assert response.status_code == 201, response.text
        transfer_id = response.json()["id"]
    started = wait_for_state(consumer, "transfers", transfer_id, "STARTED", "TERMINATED")
    assert started["state"] == "STARTED", started
    address = started["data_address"]
    assert address["endpoint"].startswith(f"{provider.url}/data/")
    assert address["token"]

    # the provider revokes the agreement: its transfers end and the consumer is told over DSP
    with provider.management() as api:
        assert api.post(f"/agreements/{agreement_id}/terminate").status_code == 200
    ended = wait_for_state(consumer, "transfers", transfer_id, "TERMINATED")
    assert ended["state"] == "TERMINATED"

    types = {body.get("@type") for _, _, body in recorder.messages}
    for expected in (
        "CatalogRequestMessage",
        "Catalog",
        "ContractRequestMessage",
        "ContractNegotiation",
        "ContractAgreementMessage",
        "ContractAgreementVerificationMessage",
        "ContractNegotiationEventMessage",
        "TransferRequestMessage",
        "TransferProcess",
        "TransferStartMessage",
        "TransferTerminationMessage",
    ):
        assert expected in types, f"{expected} was never exchanged"
    _assert_all_schema_valid(recorder, official_schemas)


def test_policy_denial_reaches_the_consumer_with_the_decision_summary(
    pair: tuple[Party, Party], recorder: Recorder, official_schemas: OfficialSchemas
) -> None:
    provider, consumer = pair
    dataset_id = publish_dataset(provider)
    offer = fetch_offer(consumer, provider, dataset_id)
    negotiation_id = negotiate(consumer, provider, dataset_id, offer, purpose=AI_TRAINING)
    ended = wait_for_state(consumer, "negotiations", negotiation_id, "TERMINATED", "FINALIZED")
    assert ended["state"] == "TERMINATED"
    assert "purpose" in ended["error"]
    assert "deny" in ended["error"]
    errors = [b for _, _, b in recorder.messages if b.get("@type") == "ContractNegotiationError"]
    assert errors
    assert "purpose" in errors[0]["reason"][0]
    _assert_all_schema_valid(recorder, official_schemas)


def test_counter_offer_is_answered_with_the_providers_offer_and_can_be_accepted(
    pair: tuple[Party, Party], recorder: Recorder, official_schemas: OfficialSchemas
) -> None:
    provider, consumer = pair
    dataset_id = publish_dataset(provider)
    offer = fetch_offer(consumer, provider, dataset_id)
    counter = {**offer, "permission": [{"action": "use"}]}  # asks for unrestricted use
    negotiation_id = negotiate(consumer, provider, dataset_id, counter, purpose=RESEARCH)
    offered = wait_for_state(consumer, "negotiations", negotiation_id, "OFFERED", "TERMINATED")
    assert offered["state"] == "OFFERED"
    assert offered["offer"]["permission"] == offer["permission"]
    with consumer.management() as api:
        assert api.post(f"/negotiations/{negotiation_id}/accept").status_code == 200
    done = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED", "TERMINATED")
    assert done["state"] == "FINALIZED", done
    assert any(b.get("@type") == "ContractOfferMessage" for _, _, b in recorder.messages)
    _assert_all_schema_valid(recorder, official_schemas)


@pytest.mark.parametrize("side", ["consumer", "provider"])
def test_either_side_can_terminate_a_negotiation(
    pair: tuple[Party, Party], recorder: Recorder, official_schemas: OfficialSchemas, side: str
) -> None:
    provider, consumer = pair
    dataset_id = publish_dataset(provider)
    offer = fetch_offer(consumer, provider, dataset_id)
    counter = {**offer, "permission": [{"action": "use"}]}
    negotiation_id = negotiate(consumer, provider, dataset_id, counter, purpose=RESEARCH)
    offered = wait_for_state(consumer, "negotiations", negotiation_id, "OFFERED")
    party, local_id = (
        (consumer, negotiation_id) if side == "consumer" else (provider, offered["provider_pid"])
    )
    with party.management() as api:
        response = api.post(f"/negotiations/{local_id}/terminate", json={"reason": f"the {side} walked away"})
        assert response.status_code == 200, response.text
    ended_consumer = wait_for_state(consumer, "negotiations", negotiation_id, "TERMINATED")
    ended_provider = wait_for_state(provider, "negotiations", offered["provider_pid"], "TERMINATED")
    assert f"the {side} walked away" in (ended_consumer.get("error", "") + ended_provider.get("error", ""))
    with party.management() as api:  # a terminated negotiation cannot be terminated again
        again = api.post(f"/negotiations/{local_id}/terminate")
        assert again.status_code == 409
        assert "TERMINATED" in again.json()["detail"]
    _assert_all_schema_valid(recorder, official_schemas)


def test_callback_address_on_a_foreign_host_is_refused(pair: tuple[Party, Party]) -> None:
    provider, consumer = pair
    dataset_id = publish_dataset(provider)
    offer = fetch_offer(consumer, provider, dataset_id)
    from connector.dsp_client import DspClient
    from connector.identity import KeyPair
    from vocab import dsp

    key = KeyPair.load(consumer.root / "participant-key.pem")
    import json

    credentials = [json.loads((consumer.root / "credentials" / "membership.json").read_text())]
    client = DspClient(consumer.did, key, credentials)
    message = dsp.contract_request_message(
        "urn:uuid:foreign-1", {**offer, "target": dataset_id}, callback_address="http://127.0.0.2:9/dsp"
    )
    response = client.post(f"{provider.dsp}/negotiations/request", provider.did, message)
    client.close()
    assert response.status == 400
    assert response.body is not None
    assert response.body["@type"] == "ContractNegotiationError"
    assert "callbackAddress" in response.body["reason"][0]
    with provider.management() as api:
        assert api.get("/negotiations").json() == []


def test_a_replayed_token_is_refused(pair: tuple[Party, Party]) -> None:
    provider, consumer = pair
    from connector.dsp_client import DspClient
    from connector.identity import KeyPair
    from vocab import dsp

    key = KeyPair.load(consumer.root / "participant-key.pem")
    import json

    credentials = [json.loads((consumer.root / "credentials" / "membership.json").read_text())]
    token = DspClient(consumer.did, key, credentials).token_for(provider.did)
    headers = {"Authorization": f"Bearer {token}"}
    first = httpx.post(f"{provider.dsp}/catalog/request", json=dsp.catalog_request_message(), headers=headers)
    assert first.status_code == 200, first.text
    second = httpx.post(
        f"{provider.dsp}/catalog/request", json=dsp.catalog_request_message(), headers=headers
    )
    assert second.status_code == 401
    assert second.json()["@type"] == "CatalogError"
    assert "replay" in second.json()["code"]
