"""Replicas of one provider on one database: every message is sent once, every process ends once;
behind a round-robin balancer, a replica killed mid-negotiation leaves the others to finish it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from connector.app import create_app
from connector.config import load_config
from sluis.servers import free_port, serve_in_thread
from tests.connector.dsp_world import (
    RESEARCH,
    Authority,
    ConnectorProcess,
    Party,
    Recorder,
    fetch_offer,
    make_party,
    negotiate,
    publish_dataset,
    running_party,
    wait_for_state,
)


def test_two_provider_replicas_share_the_work_without_doing_it_twice(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    received = Recorder()
    with (
        running_party(tmp_path, "provider", authority, storage_urls("provider")) as provider,
        running_party(tmp_path, "consumer", authority, storage_urls("consumer"), received) as consumer,
    ):
        # a second replica of the provider: same identity, same database, its own outbox worker
        replica = create_app(load_config(provider.config_path))
        with serve_in_thread(replica):
            dataset_id = publish_dataset(provider)
            offer = fetch_offer(consumer, provider, dataset_id)
            ids = [negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH) for _ in range(8)]
            for negotiation_id in ids:
                done = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED", "TERMINATED")
                assert done["state"] == "FINALIZED", done
    deliveries = Counter(
        (body["@type"], body["consumerPid"])
        for direction, _, body in received.messages
        if direction == "received"
        and body.get("@type") in ("ContractAgreementMessage", "ContractNegotiationEventMessage")
    )
    for negotiation_id in ids:
        assert deliveries[("ContractAgreementMessage", negotiation_id)] == 1, deliveries
        assert deliveries[("ContractNegotiationEventMessage", negotiation_id)] == 1, deliveries


class RoundRobin:
    """A load balancer in front of provider replicas: each request goes to the next replica that
    answers; a replica that refuses the connection (killed) is skipped, as a balancer's health
    check would, and a request lost with a replica is answered 502 (the sender retries it)."""

    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = upstreams
        self.turn = 0
        self.served: Counter[str] = Counter()

    def app(self) -> Any:
        async def forward(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() != b"host"]
            target = scope["path"] + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
            for _ in range(len(self.upstreams)):
                upstream = self.upstreams[self.turn % len(self.upstreams)]
                self.turn += 1
                try:
                    async with httpx.AsyncClient(timeout=30) as client:
                        answer = await client.request(
                            scope["method"], upstream + target, headers=headers, content=body
                        )
                except httpx.ConnectError:
                    continue  # refused: the next replica takes it
                except httpx.HTTPError:
                    break  # lost mid-request (a killed replica): 502, the sender retries
                self.served[upstream] += 1
                kept = [
                    (k.encode(), v.encode())
                    for k, v in answer.headers.items()
                    if k.lower()
                    not in ("content-length", "transfer-encoding", "connection", "content-encoding")
                ]
                await send({"type": "http.response.start", "status": answer.status_code, "headers": kept})
                await send({"type": "http.response.body", "body": answer.content})
                return
            await send({"type": "http.response.start", "status": 502, "headers": []})
            await send({"type": "http.response.body", "body": b"no replica answers"})

        return forward


def _ended(consumer: Party, provider: Party, negotiation_id: str) -> dict[str, Any]:
    try:
        return wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED", "TERMINATED")
    except AssertionError:
        with consumer.management() as api:
            mine = api.get(f"/negotiations/{negotiation_id}").json()
        with provider.management() as api:
            theirs = [n for n in api.get("/negotiations").json() if n["consumer_pid"] == negotiation_id]
        raise AssertionError(f"stuck: consumer {mine}, provider {theirs}") from None


def _replica(provider: Party, name: str) -> ConnectorProcess:
    """Another process of the provider: same identity, config and database, its own port."""
    port = free_port()
    text = provider.config_path.read_text().replace(f"port = {provider.port}\n", f"port = {port}\n", 1)
    path = provider.root / f"{name}.toml"
    path.write_text(text)
    path.chmod(0o600)
    return ConnectorProcess(replace(provider, name=name, config_path=path, port=port))


def test_replica_killed_mid_negotiation_the_other_finishes_behind_a_round_robin_balancer(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    received = Recorder()
    provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
    replicas = [_replica(provider, "replica-a"), _replica(provider, "replica-b")]
    balancer = RoundRobin([r.party.url for r in replicas])
    try:
        for replica in replicas:
            replica.start()
        with (
            serve_in_thread(balancer.app(), port=provider.port),
            running_party(tmp_path, "consumer", authority, storage_urls("consumer"), received) as consumer,
        ):
            dataset_id = publish_dataset(provider)
            offer = fetch_offer(consumer, provider, dataset_id)
            ids = [negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH) for _ in range(6)]
            replicas[0].kill()  # mid-negotiation: some of its steps and leased messages are lost with it
            ids += [negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH) for _ in range(2)]
            finished = [_ended(consumer, provider, i) for i in ids]
            errors = [f.get("error") for f in finished]
            assert [f["state"] for f in finished] == ["FINALIZED"] * len(ids), errors
            for done in finished:
                wait_for_state(provider, "negotiations", done["provider_pid"], "FINALIZED")
            with provider.management() as api:
                agreements = api.get("/agreements", params={"limit": 1000}).json()
                transfers_started = api.get("/negotiations", params={"role": "provider"}).json()
        # one agreement per negotiation, no process left half-way, no duplicate negotiation
        assert sorted(a["id"] for a in agreements) == sorted(f["agreement_id"] for f in finished)
        assert len(transfers_started) == len(ids)
        assert {n["state"] for n in transfers_started} == {"FINALIZED"}
        # a message the killed replica sent but could not record may come again: always the same one
        agreements_seen: dict[str, set[str]] = {}
        for direction, _, body in received.messages:
            if direction == "received" and body.get("@type") == "ContractAgreementMessage":
                agreements_seen.setdefault(body["consumerPid"], set()).add(body["agreement"]["@id"])
        assert all(len(seen) == 1 for seen in agreements_seen.values()), agreements_seen
        assert set(agreements_seen) == set(ids)
        assert balancer.served[replicas[1].party.url] > 0
    finally:
        for replica in replicas:
            replica.stop()


def test_a_read_limit_holds_exactly_across_two_replicas_read_at_once(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from connector.identity import KeyPair
    from connector.jobs.data import Address, TransferReader
    from connector.jobs.errors import JobError

    limited = {
        "@id": "urn:sluis:policy:three-reads",
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH},
                    {"leftOperand": "count", "operator": "lteq", "rightOperand": 3},
                ],
            }
        ],
    }
    with (
        running_party(tmp_path, "provider", authority, storage_urls("provider")) as provider,
        running_party(tmp_path, "consumer", authority, storage_urls("consumer")) as consumer,
    ):
        replica = create_app(load_config(provider.config_path))
        with serve_in_thread(replica) as replica_url:
            dataset_id = publish_dataset(provider, contract_policy=limited)
            offer = fetch_offer(consumer, provider, dataset_id)
            done = wait_for_state(
                consumer,
                "negotiations",
                negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH),
                "FINALIZED",
                "TERMINATED",
            )
            assert done["state"] == "FINALIZED", done
            with consumer.management() as api:
                body = {
                    "agreement_id": done["agreement_id"],
                    "counterparty_address": provider.dsp,
                    "job": {"id": "job-limit", "purpose": RESEARCH},
                }
                transfer_id = api.post("/transfers", json=body).json()["id"]
            started = wait_for_state(consumer, "transfers", transfer_id, "STARTED", "TERMINATED")
            assert started["state"] == "STARTED", started
            key = KeyPair.load(consumer.root / "participant-key.pem")

            def read(index: int) -> str:
                address = Address.from_json(started["data_address"])
                if index % 2:  # every other read goes to the other replica (same DB, same audience)
                    address.endpoint = address.endpoint.replace(provider.url, replica_url)
                # no identity token: its audience would name the replica's own address, which a
                # balancer hides (the access token's audience is the public URL both share)
                reader = TransferReader(address, key, consumer_id=consumer.did)
                try:
                    return "read" if reader.read().num_rows == 2 else "wrong"
                except JobError as error:
                    return error.code
                finally:
                    reader.close()

            with ThreadPoolExecutor(8) as pool:
                outcomes = Counter(pool.map(read, range(10)))
    assert outcomes["read"] == 3, outcomes
    assert sum(outcomes.values()) == 10
    # the reads past the limit are denied: by the count constraint, or by the atomic counter
    # when they raced the third read
    assert set(outcomes) <= {"read", "read_limit", "policy_denied"}, outcomes
