"""Two real connectors on loopback negotiate, agree, transfer and terminate over DSP 2025-1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
    negotiation_state,
    publish_dataset,
    running_party,
    wait_for_state,
)
from vocab import dsp

EU = "https://w3id.org/sluis/place/EU"
NL_NH = "https://w3id.org/sluis/place/NL-NH"
NORWAY = "http://publications.europa.eu/resource/authority/country/NOR"


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
    authority: Authority,
    module_storage_urls: Callable[[str], str],
    recorder: Recorder,
) -> Iterator[tuple[Party, Party]]:
    """One provider and one consumer, started once for the module (each test uses fresh processes)."""
    tmp_path = tmp_path_factory.mktemp("parties")
    storage_urls = module_storage_urls
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

    # either side can ask the other for the negotiation's state (GET /negotiations/{pid})
    import json

    from connector.dsp_client import DspClient
    from connector.identity import KeyPair

    credentials = [json.loads((consumer.root / "credentials" / "membership.json").read_text())]
    client = DspClient(consumer.did, KeyPair.load(consumer.root / "participant-key.pem"), credentials)
    state = client.get(f"{provider.dsp}/negotiations/{finished['provider_pid']}", provider.did)
    client.close()
    assert state.status == 200
    assert state.body is not None
    assert state.body["state"] == "FINALIZED"
    assert not official_schemas.errors(state.body)

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
    # the data address tells the consumer the token is DPoP-bound, not a bearer token
    start_messages = [
        body for _, _, body in recorder.messages if body.get("@type") == "TransferStartMessage"
    ]
    assert start_messages
    sent_address = start_messages[0]["dataAddress"]
    assert dsp.data_address_properties(sent_address)["authType"] == "DPoP"
    assert not official_schemas.errors(start_messages[0])

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
    assert any("purpose" in error["reason"][0] for error in errors)
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
        assert all(n["consumer_pid"] != "urn:uuid:foreign-1" for n in api.get("/negotiations").json())


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


def _finalized_agreement(consumer: Party, provider: Party) -> str:
    dataset_id = publish_dataset(provider)
    offer = fetch_offer(consumer, provider, dataset_id)
    negotiation_id = negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH)
    done = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED", "TERMINATED")
    assert done["state"] == "FINALIZED", done
    wait_for_state(provider, "negotiations", done["provider_pid"], "FINALIZED")
    return str(done["agreement_id"])


def test_transfer_is_suspended_resumed_and_completed_across_both_connectors(
    pair: tuple[Party, Party], recorder: Recorder, official_schemas: OfficialSchemas
) -> None:
    provider, consumer = pair
    agreement_id = _finalized_agreement(consumer, provider)
    with consumer.management() as api:
        job = {"id": "job-2", "purpose": RESEARCH, "compute_site": "https://w3id.org/sluis/place/EU"}
        body = {"agreement_id": agreement_id, "counterparty_address": provider.dsp, "job": job}
        transfer_id = api.post("/transfers", json=body).json()["id"]
    started = wait_for_state(consumer, "transfers", transfer_id, "STARTED", "TERMINATED")
    assert started["state"] == "STARTED", started
    provider_id = started["provider_pid"]
    with provider.management() as api:
        assert api.get(f"/transfers/{provider_id}").json()["job_id"] == "job-2"

    with consumer.management() as api:
        assert api.post(f"/transfers/{transfer_id}/suspend").status_code == 200
    wait_for_state(provider, "transfers", provider_id, "SUSPENDED")
    with consumer.management() as api:
        assert api.post(f"/transfers/{transfer_id}/resume").status_code == 200
    wait_for_state(provider, "transfers", provider_id, "STARTED")
    with provider.management() as api:
        assert api.post(f"/transfers/{provider_id}/complete").status_code == 200
    wait_for_state(consumer, "transfers", transfer_id, "COMPLETED")
    with consumer.management() as api:  # nothing leaves COMPLETED
        refused = api.post(f"/transfers/{transfer_id}/resume")
        assert refused.status_code == 409
        assert "COMPLETED" in refused.json()["detail"]
    _assert_all_schema_valid(recorder, official_schemas)


def test_transfer_for_another_purpose_is_refused_with_the_policy_summary(pair: tuple[Party, Party]) -> None:
    provider, consumer = pair
    agreement_id = _finalized_agreement(consumer, provider)
    with consumer.management() as api:
        job = {"id": "job-3", "purpose": AI_TRAINING}
        body = {"agreement_id": agreement_id, "counterparty_address": provider.dsp, "job": job}
        transfer_id = api.post("/transfers", json=body).json()["id"]
    ended = wait_for_state(consumer, "transfers", transfer_id, "TERMINATED", "STARTED")
    assert ended["state"] == "TERMINATED"
    assert "purpose" in ended["error"]


def test_catalog_shows_only_offers_whose_access_policy_the_verified_claims_satisfy(
    pair: tuple[Party, Party],
) -> None:
    provider, consumer = pair
    permit_holders = {
        "@id": "urn:sluis:policy:permit-holders",
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "sluis:credential",
                        "operator": "hasPart",
                        "rightOperand": "EHDSDataPermit",
                    }
                ],
            }
        ],
    }
    dataset_id = publish_dataset(provider, "urn:sluis:dataset:restricted", access_policy=permit_holders)
    with consumer.management() as api:
        catalog = api.post(
            "/catalog/request", json={"counterparty_address": provider.dsp, "counterparty_id": provider.did}
        ).json()
    assert catalog["@type"] == "Catalog"
    assert "dataset" not in catalog  # the consumer holds a membership credential, no data permit
    from connector.dsp_client import DspClient
    from connector.identity import KeyPair

    key = KeyPair.load(consumer.root / "participant-key.pem")
    client = DspClient(consumer.did, key)
    response = client.get(f"{provider.dsp}/catalog/datasets/{dataset_id}", provider.did)
    client.close()
    assert response.status == 404
    assert response.body is not None
    assert response.body["@type"] == "CatalogError"


def test_management_api_needs_its_token_and_is_documented(pair: tuple[Party, Party]) -> None:
    provider, _ = pair
    assert httpx.get(f"{provider.url}/management/negotiations").status_code == 401
    wrong = httpx.get(f"{provider.url}/management/negotiations", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    paths = httpx.get(f"{provider.url}/openapi.json").json()["paths"]
    for path in (
        "/management/assets",
        "/management/negotiations",
        "/management/transfers/{transfer_id}",
        "/dsp/negotiations/request",
        "/.well-known/dspace-version",
    ):
        assert path in paths
    with provider.management() as api:
        bad = api.post("/assets", json={"id": "x", "title": "t", "data": {"kind": "xls", "path": "a"}})
        assert bad.status_code == 400
        assert any(e["field"] == "data.kind" for e in bad.json()["errors"])
        escape = api.post(
            "/assets", json={"id": "x", "title": "t", "data": {"kind": "csv", "path": "../etc"}}
        )
        assert escape.status_code == 400
        deep: dict[str, Any] = {}
        for _ in range(40):
            deep = {"nested": deep}
        too_deep = api.post("/policies", json={"id": "deep", "policy": deep})
        assert too_deep.status_code == 400
        assert any(e["field"] == "policy" for e in too_deep.json()["errors"])
        huge = b'{"id": "x", "title": "' + b"x" * (3 * 1024 * 1024) + b'"}'
        json_type = {"content-type": "application/json"}
        too_big = api.post("/assets", content=huge, headers=json_type)
        assert too_big.status_code == 413
        chunked = api.post("/assets", content=iter([huge[:1024], huge[1024:]]), headers=json_type)
        assert chunked.status_code == 413
        assert chunked.headers["content-type"].startswith("application/problem+json")


def test_another_participant_cannot_touch_a_negotiation_and_repeats_are_idempotent(
    pair: tuple[Party, Party], tmp_path: Path, authority: Authority, module_storage_urls: Callable[[str], str]
) -> None:
    storage_urls = module_storage_urls
    import json

    from connector.dsp_client import DspClient
    from connector.identity import KeyPair
    from vocab import dsp

    provider, consumer = pair
    dataset_id = publish_dataset(provider)
    offer = fetch_offer(consumer, provider, dataset_id)
    counter = {**offer, "permission": [{"action": "use"}]}
    negotiation_id = negotiate(consumer, provider, dataset_id, counter, purpose=RESEARCH)
    offered = wait_for_state(consumer, "negotiations", negotiation_id, "OFFERED")
    provider_pid = offered["provider_pid"]
    termination = dsp.negotiation_termination_message(provider_pid, negotiation_id, "x", ["not yours"])

    with running_party(tmp_path, "intruder", authority, storage_urls("intruder")) as intruder:
        key = KeyPair.load(intruder.root / "participant-key.pem")
        credentials = [json.loads((intruder.root / "credentials" / "membership.json").read_text())]
        client = DspClient(intruder.did, key, credentials)
        refused = client.post(
            f"{provider.dsp}/negotiations/{provider_pid}/termination", provider.did, termination
        )
        client.close()
    assert refused.status == 404  # unknown and not-yours look the same
    assert refused.body is not None
    assert refused.body["@type"] == "ContractNegotiationError"
    assert negotiation_state(provider, provider_pid)["state"] == "OFFERED"

    key = KeyPair.load(consumer.root / "participant-key.pem")
    credentials = [json.loads((consumer.root / "credentials" / "membership.json").read_text())]
    client = DspClient(consumer.did, key, credentials)
    url = f"{provider.dsp}/negotiations/{provider_pid}/termination"
    first = client.post(url, provider.did, termination)
    again = client.post(url, provider.did, termination)  # a retried delivery is acknowledged again
    verification = dsp.agreement_verification_message(provider_pid, negotiation_id)
    illegal = client.post(
        f"{provider.dsp}/negotiations/{provider_pid}/agreement/verification", provider.did, verification
    )
    client.close()
    assert (first.status, again.status) == (200, 200)
    assert negotiation_state(provider, provider_pid)["state"] == "TERMINATED"
    assert illegal.status == 400
    assert illegal.body is not None
    assert "TERMINATED" in illegal.body["reason"][0]


def test_compute_site_is_decided_when_declared_and_otherwise_at_transfer(pair: tuple[Party, Party]) -> None:
    provider, consumer = pair
    eu_only = {
        "@id": "urn:sluis:policy:eu-only",
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {"leftOperand": "sluis:computeSite", "operator": "isPartOf", "rightOperand": EU},
                    {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH},
                ],
            }
        ],
    }
    dataset_id = publish_dataset(provider, "urn:sluis:dataset:eu-only", contract_policy=eu_only)
    offer = fetch_offer(consumer, provider, dataset_id)
    outside = negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH, compute_site=NORWAY)
    undeclared = negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH)
    refused = wait_for_state(consumer, "negotiations", outside, "TERMINATED", "FINALIZED")
    assert refused["state"] == "TERMINATED"
    assert "computeSite" in refused["error"]
    agreed = wait_for_state(consumer, "negotiations", undeclared, "FINALIZED", "TERMINATED")
    assert agreed["state"] == "FINALIZED", agreed

    def transfer(site: str) -> dict[str, Any]:
        job = {"id": f"job-{site[-3:]}", "purpose": RESEARCH, "compute_site": site}
        body = {"agreement_id": agreed["agreement_id"], "counterparty_address": provider.dsp, "job": job}
        with consumer.management() as api:
            transfer_id = api.post("/transfers", json=body).json()["id"]
        return wait_for_state(consumer, "transfers", transfer_id, "STARTED", "TERMINATED")

    assert transfer(NL_NH)["state"] == "STARTED"
    outside_eu = transfer(NORWAY)
    assert outside_eu["state"] == "TERMINATED"
    assert "computeSite" in outside_eu["error"]
