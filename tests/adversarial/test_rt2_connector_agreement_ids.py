"""A hostile provider names its agreement after one our consumer already holds with someone else.

On the consumer's side the agreement's ``@id`` is the provider's choice (DSP lets it name its
agreement). Agreement ids are not secret - a provider's transparency register publishes them -
so a second provider, negotiating with the same consumer, can send a ContractAgreementMessage
whose ``@id`` is that of the consumer's agreement with the first. It must be refused, and the
first agreement - rules, parties and the first provider's signature - left exactly as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.connector.conftest import authority, dsp_examples, module_storage_urls
from tests.connector.dsp_world import (
    Authority,
    Party,
    finalized_agreement,
    members_only,
    publish_dataset,
    running_party,
    wait_for_state,
)
from tests.connector.plain_peer import PlainPeer, plain_peer

__all__ = ["authority", "dsp_examples", "module_storage_urls"]  # the connector suite's fixtures


@dataclass
class World:
    provider: Party
    consumer: Party
    hostile: PlainPeer
    dataset_id: str


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    authority: Authority,
    module_storage_urls: Callable[[str], str],
    dsp_examples: Path,
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("agreement-ids")
    with (
        running_party(root, "provider", authority, module_storage_urls("provider")) as provider,
        running_party(root, "consumer", authority, module_storage_urls("consumer")) as consumer,
        plain_peer(root, authority, dsp_examples, "hostile") as hostile,
    ):
        dataset_id = publish_dataset(provider, contract_policy=members_only("urn:sluis:policy:contract"))
        yield World(provider, consumer, hostile, dataset_id)


def _agreement(party: Party, agreement_id: str) -> dict[str, Any]:
    with party.management() as api:
        response = api.get(f"/agreements/{agreement_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_agreement_id_of_another_provider_cannot_be_taken_over(world: World) -> None:
    consumer, hostile = world.consumer, world.hostile
    first = finalized_agreement(consumer, world.provider, world.dataset_id)
    taken = str(first["agreement_id"])
    before = _agreement(consumer, taken)

    dataset_id = f"urn:uuid:{uuid.uuid4()}"
    offer = {"@id": f"urn:uuid:{uuid.uuid4()}", "@type": "Offer", "permission": [{"action": "use"}]}
    with consumer.management() as api:
        response = api.post("/negotiations", json={
            "counterparty_address": hostile.dsp, "counterparty_id": hostile.did,
            "dataset_id": dataset_id, "offer": offer,
        })
        assert response.status_code == 201, response.text
        negotiation_id = response.json()["id"]
    hostile.wait_for("negotiations/request")
    wait_for_state(consumer, "negotiations", negotiation_id, "REQUESTED")
    message = hostile.example(
        "negotiation/contract-agreement-message",
        providerPid=hostile.provider_pid,
        consumerPid=negotiation_id,
        agreement={
            "@id": taken,
            "@type": "Agreement",
            "target": dataset_id,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "assigner": hostile.did,
            "assignee": consumer.did,
            "permission": [{"action": "use"}],
        },
    )
    path = f"{consumer.dsp}/negotiations/{negotiation_id}/agreement"
    reply = hostile.client.post(path, consumer.did, message)
    assert reply.status == 400, reply.body
    assert _agreement(consumer, taken) == before, "the hostile provider rewrote the consumer's agreement"
    state = wait_for_state(consumer, "negotiations", negotiation_id, "REQUESTED", "TERMINATED")
    assert state.get("agreement_id") in (None, ""), state
