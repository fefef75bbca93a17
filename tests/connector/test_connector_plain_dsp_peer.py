"""Interoperability: a peer that speaks only DSP 2025-1 negotiates with us, in both roles.

The peer's messages are the official examples with their ids replaced; it never signs an
agreement and never sends a Sluis member. Sluis's signed agreement is an extension: used only
when both sides list it, and then required. Provider-initiated offers, counter-offers and
dataset requests go through the management API between two Sluis connectors.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.identity import KeyPair
from connector.jobs.data import Address, TransferReader
from connector.jobs.errors import JobError
from connector.protocol.extensions import EXT_CONSUMER_PROOF, EXT_EXTENSIONS, SIGNED_AGREEMENT
from tests.connector.conftest import OfficialSchemas
from tests.connector.dsp_world import (
    Authority,
    Party,
    fetch_offer,
    members_only,
    negotiate,
    publish_dataset,
    running_party,
    wait_for_state,
    wait_until,
)
from tests.connector.plain_peer import PlainPeer, pid, plain_peer
from vocab import jsonld

SECURITY_PROOF = "https://w3id.org/security#proof"


@dataclass
class World:
    provider: Party
    consumer: Party
    peer: PlainPeer
    dataset_id: str


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    authority: Authority,
    module_storage_urls: Callable[[str], str],
    dsp_examples: Path,
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("interop")
    with (
        running_party(root, "provider", authority, module_storage_urls("provider")) as provider,
        running_party(root, "consumer", authority, module_storage_urls("consumer")) as consumer,
        plain_peer(root, authority, dsp_examples) as peer,
    ):
        dataset_id = publish_dataset(provider, contract_policy=members_only("urn:sluis:policy:contract"))
        yield World(provider, consumer, peer, dataset_id)


def _offer(world: World) -> dict[str, Any]:
    response = world.peer.post(
        world.provider, "/catalog/request", world.peer.example("catalog/catalog-request-message")
    )
    assert response.body is not None
    return dict(next(d for d in response.body["dataset"] if d["@id"] == world.dataset_id)["hasPolicy"][0])


def _request(world: World, *, extensions: bool) -> tuple[str, str]:
    peer = world.peer
    consumer_pid = pid()
    body = peer.contract_request(consumer_pid, _offer(world), world.dataset_id)
    if extensions:
        body[EXT_EXTENSIONS] = [SIGNED_AGREEMENT]
    response = peer.post(world.provider, "/negotiations/request", body)
    assert response.status == 201, response.body
    assert response.body is not None
    return str(response.body["providerPid"]), consumer_pid


def test_a_plain_consumer_reaches_finalized_without_counter_signing(
    world: World, official_schemas: OfficialSchemas
) -> None:
    provider, peer = world.provider, world.peer
    provider_pid, consumer_pid = _request(world, extensions=False)
    message = peer.wait_for(f"negotiations/{consumer_pid}/agreement")[0]
    assert not official_schemas.errors(message)
    # the provider's proof is defined by the Sluis context the message names: a JSON-LD
    # processor keeps it (under the DSP context alone it would be dropped)
    expanded = jsonld.expand(message, base=provider.dsp)
    agreement_node = expanded[0]["https://w3id.org/dspace/2025/1/agreement"][0]
    assert SECURITY_PROOF in agreement_node
    without_ours = jsonld.expand({**message, "@context": message["@context"][:1]}, base=provider.dsp)
    assert SECURITY_PROOF not in without_ours[0]["https://w3id.org/dspace/2025/1/agreement"][0]

    verification = peer.verification(provider_pid, consumer_pid)
    assert not official_schemas.errors(verification)
    response = peer.post(provider, f"/negotiations/{provider_pid}/agreement/verification", verification)
    assert response.status == 200, response.body
    event = peer.wait_for(f"negotiations/{consumer_pid}/events")[0]
    assert event["eventType"] == "FINALIZED"
    done = wait_for_state(provider, "negotiations", provider_pid, "FINALIZED")
    with provider.management() as api:
        stored = api.get(f"/agreements/{done['agreement_id']}").json()
    assert stored["assignee"] == peer.did


def test_a_consumer_that_asked_for_signed_agreements_must_counter_sign(world: World) -> None:
    provider, peer = world.provider, world.peer
    provider_pid, consumer_pid = _request(world, extensions=True)
    peer.wait_for(f"negotiations/{consumer_pid}/agreement")
    response = peer.post(
        provider,
        f"/negotiations/{provider_pid}/agreement/verification",
        peer.verification(provider_pid, consumer_pid),
    )
    assert response.status == 400, response.body
    assert response.body is not None
    assert response.body["code"] == "countersignature-missing"


def test_our_consumer_negotiates_with_a_plain_provider(
    world: World, official_schemas: OfficialSchemas
) -> None:
    consumer, peer = world.consumer, world.peer
    dataset_id = f"urn:uuid:{uuid.uuid4()}"
    offer = {"@id": f"urn:uuid:{uuid.uuid4()}", "@type": "Offer", "permission": [{"action": "use"}]}
    with consumer.management() as api:
        response = api.post(
            "/negotiations",
            json={
                "counterparty_address": peer.dsp,
                "counterparty_id": peer.did,
                "dataset_id": dataset_id,
                "offer": offer,
            },
        )
        assert response.status_code == 201, response.text
        negotiation_id = response.json()["id"]
    request = next(b for b in peer.wait_for("negotiations/request") if b["consumerPid"] == negotiation_id)
    assert not official_schemas.errors(request)
    assert request[EXT_EXTENSIONS] == [SIGNED_AGREEMENT]  # an extension member a plain peer may ignore
    provider_pid = peer.provider_pid
    wait_for_state(consumer, "negotiations", negotiation_id, "REQUESTED")

    agreement = peer.example(
        "negotiation/contract-agreement-message",
        providerPid=provider_pid,
        consumerPid=negotiation_id,
        agreement={
            "@id": f"urn:uuid:{uuid.uuid4()}",
            "@type": "Agreement",
            "target": dataset_id,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "assigner": peer.did,
            "assignee": consumer.did,
            "permission": [{"action": "use"}],
        },
    )
    response_ = peer.client.post(
        f"{consumer.dsp}/negotiations/{negotiation_id}/agreement", consumer.did, agreement
    )
    assert response_.status == 200, response_.body
    verification = peer.wait_for(f"negotiations/{provider_pid}/agreement/verification")[-1]
    assert not official_schemas.errors(verification)
    assert EXT_CONSUMER_PROOF not in verification  # nothing to counter-sign
    event = peer.event(provider_pid, negotiation_id, "FINALIZED")
    assert (
        peer.client.post(f"{consumer.dsp}/negotiations/{negotiation_id}/events", consumer.did, event).status
        == 200
    )
    done = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED")
    assert done["agreement_id"] == agreement["agreement"]["@id"]

    # a different agreement on the FINALIZED negotiation is refused; the same one is acknowledged
    again = peer.client.post(
        f"{consumer.dsp}/negotiations/{negotiation_id}/agreement", consumer.did, agreement
    )
    assert again.status == 200
    other = {**agreement, "agreement": {**agreement["agreement"], "@id": f"urn:uuid:{uuid.uuid4()}"}}
    refused = peer.client.post(f"{consumer.dsp}/negotiations/{negotiation_id}/agreement", consumer.did, other)
    assert refused.status == 400, refused.body
    assert refused.body is not None
    assert refused.body["@type"] == "ContractNegotiationError"


def test_the_version_document_and_the_catalog_advertise_the_extension(world: World) -> None:
    provider, peer = world.provider, world.peer
    versions = httpx.get(f"{provider.url}/.well-known/dspace-version").json()["protocolVersions"]
    assert versions[0][EXT_EXTENSIONS] == [SIGNED_AGREEMENT]
    catalog = peer.post(provider, "/catalog/request", peer.example("catalog/catalog-request-message")).body
    assert catalog is not None
    assert catalog["service"][0][EXT_EXTENSIONS] == [SIGNED_AGREEMENT]


def test_provider_offers_first_and_the_consumer_counter_offers_through_management(world: World) -> None:
    provider, consumer = world.provider, world.consumer
    offer = fetch_offer(consumer, provider, world.dataset_id)
    with provider.management() as api:
        response = api.post(
            "/negotiations/offers",
            json={
                "counterparty_address": consumer.dsp,
                "counterparty_id": consumer.did,
                "offer_id": offer["@id"],
            },
        )
        assert response.status_code == 201, response.text
        provider_side = response.json()["id"]
        unknown = api.post(
            "/negotiations/offers",
            json={
                "counterparty_address": consumer.dsp,
                "counterparty_id": consumer.did,
                "offer_id": "urn:none",
            },
        )
        assert unknown.status_code == 404
    consumer_pid = wait_for_state(provider, "negotiations", provider_side, "OFFERED")

    def offered() -> dict[str, Any] | None:
        with consumer.management() as api:
            listed = api.get("/negotiations").json()
        return next((n for n in listed if n["provider_pid"] == provider_side), None)

    ours = wait_until(offered, "the provider's offer at the consumer")
    assert ours["state"] == "OFFERED"
    assert consumer_pid
    with consumer.management() as api:
        counter = api.post(f"/negotiations/{ours['id']}/request", json={"offer": ours["offer"]})
        assert counter.status_code == 200, counter.text
    done = wait_for_state(consumer, "negotiations", ours["id"], "FINALIZED", "TERMINATED")
    assert done["state"] == "FINALIZED", done
    wait_for_state(provider, "negotiations", provider_side, "FINALIZED")


def test_dataset_request_through_management(world: World) -> None:
    provider, consumer = world.provider, world.consumer
    with consumer.management() as api:
        found = api.post(
            "/catalog/dataset",
            json={
                "counterparty_address": provider.dsp,
                "counterparty_id": provider.did,
                "dataset_id": world.dataset_id,
            },
        )
        assert found.status_code == 200, found.text
        assert found.json()["@id"] == world.dataset_id
        missing = api.post(
            "/catalog/dataset",
            json={
                "counterparty_address": provider.dsp,
                "counterparty_id": provider.did,
                "dataset_id": "urn:none",
            },
        )
        assert missing.status_code == 404


def test_a_consumer_resuming_a_pull_transfer_gets_a_fresh_address_it_can_read_with(world: World) -> None:
    provider, consumer = world.provider, world.consumer
    offer = fetch_offer(consumer, provider, world.dataset_id)
    negotiation_id = negotiate(consumer, provider, world.dataset_id, offer)
    agreement_id = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED")["agreement_id"]
    with consumer.management() as api:
        created = api.post(
            "/transfers", json={"agreement_id": agreement_id, "counterparty_address": provider.dsp}
        )
        assert created.status_code == 201, created.text
        transfer_id = created.json()["id"]
    first = wait_for_state(consumer, "transfers", transfer_id, "STARTED")["data_address"]

    key = KeyPair.load(consumer.root / "participant-key.pem")
    credentials = [json.loads((consumer.root / "credentials" / "membership.json").read_text())]

    def reads(address: dict[str, Any]) -> bool:
        reader = TransferReader(
            Address.from_json(address), key, consumer_id=consumer.did, credentials=credentials
        )
        try:
            return reader.read().num_rows > 0
        except JobError:
            return False
        finally:
            reader.close()

    assert reads(first)
    with consumer.management() as api:
        assert api.post(f"/transfers/{transfer_id}/suspend").status_code == 200
    provider_pid = wait_for_state(consumer, "transfers", transfer_id, "SUSPENDED")["provider_pid"]
    wait_for_state(provider, "transfers", provider_pid, "SUSPENDED")
    assert not reads(first)
    with consumer.management() as api:
        assert api.post(f"/transfers/{transfer_id}/resume").status_code == 200

    def fresh() -> dict[str, Any] | None:
        with consumer.management() as api:
            body = api.get(f"/transfers/{transfer_id}").json()
        address = body.get("data_address") or {}
        return address if body["state"] == "STARTED" and address.get("token") != first["token"] else None

    second = wait_until(fresh, "a fresh data address after the resume")
    assert reads(second)
    assert not reads(first)
    assert wait_for_state(provider, "transfers", provider_pid, "STARTED")["state"] == "STARTED"
