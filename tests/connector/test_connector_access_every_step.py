"""Knowing an id grants nothing: the access policy is decided at every step, not only in the catalog.

A participant the access policy does not admit is driven here as an attacker would: with its own
did:web, key and membership, sending plain DSP messages that name offer, agreement and process
ids it learnt elsewhere. A participant that *was* admitted loses access part-way (the provider
tightens the access policy) and is refused at the very next step: negotiation message, transfer
request, resume. Each refusal is a DSP error and leaves no agreement, transfer or data address
behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connector.jobs.data import Address, TransferReader
from connector.jobs.errors import JobError
from tests.connector.dsp_world import Authority, Party, running_party, wait_for_state, wait_until
from tests.connector.plain_peer import PlainPeer, pid, plain_peer


@dataclass
class World:
    provider: Party
    member: PlainPeer
    intruder: PlainPeer


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    authority: Authority,
    module_storage_urls: Callable[[str], str],
    dsp_examples: Path,
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("access")
    with (
        running_party(root, "provider", authority, module_storage_urls("provider")) as provider,
        plain_peer(root, authority, dsp_examples, "member") as member,
        plain_peer(root, authority, dsp_examples, "intruder") as intruder,
    ):
        yield World(provider, member, intruder)


def _only(did: str) -> dict[str, Any]:
    """An access policy admitting exactly one participant (its verified DID, the recipient)."""
    return {
        "@id": f"urn:access:{uuid.uuid4()}",
        "@type": "Set",
        "permission": [
            {
                "action": "use",
                "constraint": [{"leftOperand": "recipient", "operator": "eq", "rightOperand": did}],
            }
        ],
    }


def _members_may_use() -> dict[str, Any]:
    return {
        "@id": "urn:contract:members",
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "sluis:credential",
                        "operator": "hasPart",
                        "rightOperand": "MembershipCredential",
                    }
                ],
            }
        ],
    }


def _publish(provider: Party, admitted: str) -> tuple[str, str]:
    """A fresh dataset whose access policy admits only ``admitted``; returns (dataset, access id)."""
    name = uuid.uuid4().hex[:12]
    dataset_id = f"urn:sluis:dataset:{name}"
    (provider.root / "data" / f"{name}.csv").write_text("age,region\n34,NL-NH\n51,NL-UT\n")
    with provider.management() as api:
        api.post(
            "/assets",
            json={"id": dataset_id, "title": "Cohort", "data": {"kind": "csv", "path": f"{name}.csv"}},
        ).raise_for_status()
        api.post("/policies", json={"id": f"access-{name}", "policy": _only(admitted)}).raise_for_status()
        api.post(
            "/policies", json={"id": f"contract-{name}", "policy": _members_may_use()}
        ).raise_for_status()
        api.post(
            "/contract-definitions",
            json={
                "id": f"cd-{name}",
                "access_policy_id": f"access-{name}",
                "contract_policy_id": f"contract-{name}",
                "asset_ids": [dataset_id],
            },
        ).raise_for_status()
    return dataset_id, f"access-{name}"


def _revoke_access(provider: Party, access_id: str) -> None:
    """The provider tightens the access policy: nobody is admitted any more."""
    with provider.management() as api:
        api.post(
            "/policies", json={"id": access_id, "policy": _only("did:web:nobody.invalid")}
        ).raise_for_status()


def _catalog_offer(peer: PlainPeer, provider: Party, dataset_id: str) -> dict[str, Any] | None:
    response = peer.post(provider, "/catalog/request", peer.example("catalog/catalog-request-message"))
    assert response.status == 200, response.body
    assert response.body is not None
    for dataset in response.body.get("dataset", []):
        if dataset["@id"] == dataset_id:
            return dict(dataset["hasPolicy"][0])
    return None


def _agreed(world: World, dataset_id: str) -> tuple[str, str, dict[str, Any]]:
    """The member requests the catalog's offer; the provider agrees. Returns (provider pid,
    consumer pid, agreement)."""
    member, provider = world.member, world.provider
    offer = _catalog_offer(member, provider, dataset_id)
    assert offer is not None
    consumer_pid = pid()
    response = member.post(
        provider, "/negotiations/request", member.contract_request(consumer_pid, offer, dataset_id)
    )
    assert response.status == 201, response.body
    assert response.body is not None
    provider_pid = str(response.body["providerPid"])
    agreements = member.wait_for(f"negotiations/{consumer_pid}/agreement")
    return provider_pid, consumer_pid, agreements[0]["agreement"]


def _finalized(world: World, dataset_id: str) -> str:
    member, provider = world.member, world.provider
    provider_pid, consumer_pid, agreement = _agreed(world, dataset_id)
    response = member.post(
        provider,
        f"/negotiations/{provider_pid}/agreement/verification",
        member.verification(provider_pid, consumer_pid),
    )
    assert response.status == 200, response.body
    member.wait_for(f"negotiations/{consumer_pid}/events")
    return str(agreement["@id"])


def _started(world: World, agreement_id: str) -> tuple[str, str, dict[str, Any]]:
    """A transfer the member requested and the provider started: (provider pid, consumer pid, address)."""
    member, provider = world.member, world.provider
    consumer_pid = pid()
    response = member.post(
        provider, "/transfers/request", member.transfer_request(consumer_pid, agreement_id)
    )
    assert response.status == 201, response.body
    assert response.body is not None
    assert response.body["state"] == "STARTED", response.body
    start = member.wait_for(f"transfers/{consumer_pid}/start")[0]
    return str(response.body["providerPid"]), consumer_pid, start["dataAddress"]


def _reads(peer: PlainPeer, address: dict[str, Any]) -> bool:
    reader = TransferReader(
        Address.from_json(address), peer.key, consumer_id=peer.did, credentials=peer.credentials
    )
    try:
        return reader.read().num_rows == 2
    except JobError:
        return False
    finally:
        reader.close()


def test_a_participant_the_access_policy_refuses_can_name_every_id_and_still_gets_nothing(
    world: World,
) -> None:
    provider, intruder = world.provider, world.intruder
    dataset_id, _ = _publish(provider, world.member.did)
    offer = _catalog_offer(world.member, provider, dataset_id)
    assert offer is not None  # the member sees it; the intruder learnt the (predictable) ids
    assert _catalog_offer(intruder, provider, dataset_id) is None
    assert intruder.get(provider, f"/catalog/datasets/{dataset_id}").status == 404

    named = intruder.post(
        provider, "/negotiations/request", intruder.contract_request(pid(), offer, dataset_id)
    )
    unknown = intruder.post(
        provider,
        "/negotiations/request",
        intruder.contract_request(pid(), {**offer, "@id": f"{offer['@id']}-none"}, dataset_id),
    )
    assert named.status == unknown.status == 400
    assert named.body is not None
    assert unknown.body is not None
    assert named.body["code"] == unknown.body["code"] == "unknown-offer"  # no oracle
    with provider.management() as api:
        agreements = api.get("/agreements").json()
    assert not [a for a in agreements if a["consumer_id"] == intruder.did]
    assert not [body for path, body in intruder.received if path.endswith("/agreement")]


def test_access_lost_mid_negotiation_refuses_the_next_message(world: World) -> None:
    member, provider = world.member, world.provider
    dataset_id, access_id = _publish(provider, member.did)
    provider_pid, consumer_pid, _ = _agreed(world, dataset_id)
    _revoke_access(provider, access_id)

    response = member.post(
        provider,
        f"/negotiations/{provider_pid}/agreement/verification",
        member.verification(provider_pid, consumer_pid),
    )
    assert response.status == 403, response.body
    assert response.body is not None
    assert response.body["@type"] == "ContractNegotiationError"
    assert response.body["code"] == "access-denied"
    assert wait_for_state(provider, "negotiations", provider_pid, "TERMINATED")["state"] == "TERMINATED"
    # asking for the state is a step too
    assert member.get(provider, f"/negotiations/{provider_pid}").status == 403


def test_access_lost_after_the_agreement_refuses_the_transfer_request(world: World) -> None:
    member, provider = world.member, world.provider
    dataset_id, access_id = _publish(provider, member.did)
    agreement_id = _finalized(world, dataset_id)
    _revoke_access(provider, access_id)

    consumer_pid = pid()
    response = member.post(
        provider, "/transfers/request", member.transfer_request(consumer_pid, agreement_id)
    )
    assert response.status == 403, response.body
    assert response.body is not None
    assert response.body["@type"] == "TransferError"
    assert "access policy" in response.body["reason"][0]
    assert not [body for path, body in member.received if path.endswith(f"transfers/{consumer_pid}/start")]


def test_access_lost_while_suspended_refuses_the_resume(world: World) -> None:
    member, provider = world.member, world.provider
    dataset_id, access_id = _publish(provider, member.did)
    provider_pid, consumer_pid, address = _started(world, _finalized(world, dataset_id))
    assert _reads(member, address)
    suspended = member.post(
        provider,
        f"/transfers/{provider_pid}/suspension",
        member.transfer_message("suspension", provider_pid, consumer_pid),
    )
    assert suspended.status == 200, suspended.body
    _revoke_access(provider, access_id)

    resumed = member.post(
        provider,
        f"/transfers/{provider_pid}/start",
        member.transfer_message("start", provider_pid, consumer_pid),
    )
    assert resumed.status == 403, resumed.body
    assert wait_for_state(provider, "transfers", provider_pid, "TERMINATED")["state"] == "TERMINATED"
    assert len(member.wait_for(f"transfers/{consumer_pid}/start")) == 1  # no new address was sent
    assert not _reads(member, address)


def test_resume_of_a_pull_transfer_gives_a_fresh_address_and_token(world: World) -> None:
    member, provider = world.member, world.provider
    dataset_id, _ = _publish(provider, member.did)
    provider_pid, consumer_pid, first = _started(world, _finalized(world, dataset_id))
    suspension = member.transfer_message("suspension", provider_pid, consumer_pid)
    assert member.post(provider, f"/transfers/{provider_pid}/suspension", suspension).status == 200
    assert not _reads(member, first)  # suspended: the token is revoked

    start = member.transfer_message("start", provider_pid, consumer_pid)
    assert member.post(provider, f"/transfers/{provider_pid}/start", start).status == 200
    second = member.wait_for(f"transfers/{consumer_pid}/start", count=2)[1]["dataAddress"]
    assert Address.from_json(second).token != Address.from_json(first).token
    assert _reads(member, second)
    assert not _reads(member, first)

    # the provider's own resume does the same
    assert member.post(provider, f"/transfers/{provider_pid}/suspension", suspension).status == 200
    with provider.management() as api:
        assert api.post(f"/transfers/{provider_pid}/resume").status_code == 200
    third = member.wait_for(f"transfers/{consumer_pid}/start", count=3)[2]["dataAddress"]
    assert _reads(member, third)
    assert not _reads(member, second)


def test_redelivery_is_recognised_by_identity_not_by_message_type(world: World) -> None:
    member, provider = world.member, world.provider
    dataset_id, _ = _publish(provider, member.did)
    provider_pid, consumer_pid, _ = _started(world, _finalized(world, dataset_id))
    completion = member.transfer_message("completion", provider_pid, consumer_pid)
    assert member.post(provider, f"/transfers/{provider_pid}/completion", completion).status == 200
    wait_until(lambda: wait_for_state(provider, "transfers", provider_pid, "COMPLETED"), "completion")

    # the same completion again (a lost acknowledgement): acknowledged, nothing changes
    assert member.post(provider, f"/transfers/{provider_pid}/completion", completion).status == 200
    # a suspension of a COMPLETED transfer is a new message, and an illegal one
    suspension = member.transfer_message("suspension", provider_pid, consumer_pid)
    refused = member.post(provider, f"/transfers/{provider_pid}/suspension", suspension)
    assert refused.status == 400, refused.body
    assert refused.body is not None
    assert refused.body["@type"] == "TransferError"
    # a completion with different content is not the one applied either
    other = {**completion, "consumerPid": consumer_pid, "https://w3id.org/sluis/ns#note": "again"}
    assert member.post(provider, f"/transfers/{provider_pid}/completion", other).status == 400
    assert wait_for_state(provider, "transfers", provider_pid, "COMPLETED")["state"] == "COMPLETED"


@pytest.mark.parametrize("answer", ["accept", "counter-request"])
def test_access_lost_after_a_counter_offer_refuses_the_answer(world: World, answer: str) -> None:
    member, provider = world.member, world.provider
    dataset_id, access_id = _publish(provider, member.did)
    offer = _catalog_offer(member, provider, dataset_id)
    assert offer is not None
    different = {**offer, "permission": [{"action": "use"}]}  # other rules: the provider re-offers
    consumer_pid = pid()
    requested = member.post(
        provider, "/negotiations/request", member.contract_request(consumer_pid, different, dataset_id)
    )
    assert requested.status == 201, requested.body
    assert requested.body is not None
    provider_pid = str(requested.body["providerPid"])
    member.wait_for(f"negotiations/{consumer_pid}/offers")
    _revoke_access(provider, access_id)

    if answer == "accept":
        response = member.post(
            provider,
            f"/negotiations/{provider_pid}/events",
            member.event(provider_pid, consumer_pid, "ACCEPTED"),
        )
    else:
        again = member.example(
            "negotiation/contract-request-message",
            providerPid=provider_pid,
            consumerPid=consumer_pid,
            offer={**offer, "target": dataset_id},
        )
        response = member.post(provider, f"/negotiations/{provider_pid}/request", again)
    assert response.status == 403, response.body
    assert response.body is not None
    assert response.body["code"] == "access-denied"
    assert not [
        body for path, body in member.received if path.endswith(f"negotiations/{consumer_pid}/agreement")
    ]
