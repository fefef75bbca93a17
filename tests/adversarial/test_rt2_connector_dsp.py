"""An outside DSP participant plays with the state machine: concurrent duplicates of one
initial request, messages in the wrong state, and redeliveries that change their content.

DSP identifies a consumer's process by its ``consumerPid``: an initial request sent twice (a
retry whose answer was lost, or on purpose, at once) must yield one provider-side process, not
two started transfers or two agreements.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from connector.protocol import TransferState
from tests.robustness.worlds import ConnectorWorld
from vocab import dsp

COPIES = 12
ROUNDS = 4


def _provider_processes(world: ConnectorWorld, kind: str, consumer_pid: str) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{world.provider.database()}?mode=ro", uri=True, timeout=30) as db:
        rows = db.execute(
            "SELECT id, state FROM processes WHERE kind = ? AND role = 'provider' AND consumer_pid = ?",
            (kind, consumer_pid),
        ).fetchall()
    return [(str(pid), str(state)) for pid, state in rows]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_copies_of_one_transfer_request_start_one_transfer(
    world: ConnectorWorld, round_: int
) -> None:
    consumer_pid = f"urn:uuid:rt2-concurrent-transfer-{round_}"
    message = dsp.transfer_request_message(
        consumer_pid, world.agreement_id, "HttpData-PULL", world.consumer.dsp
    )
    headers = [world.dsp_auth() for _ in range(COPIES)]  # each copy with its own fresh token

    def send(auth: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{world.provider.dsp}/transfers/request", json=message, headers=auth, timeout=60)

    with ThreadPoolExecutor(COPIES) as pool:
        replies = list(pool.map(send, headers))
    assert all(reply.status_code < 500 for reply in replies), [r.text for r in replies]
    created = {reply.json().get("providerPid") for reply in replies if reply.status_code == 201}
    stored = _provider_processes(world, "transfer", consumer_pid)
    assert len(stored) == 1, f"{len(stored)} provider transfers for one consumerPid: {stored}"
    assert created == {stored[0][0]}
    # started, or already ended by the consumer (it never asked for this process)
    assert stored[0][1] in (TransferState.STARTED, TransferState.TERMINATED)


def _post(world: ConnectorWorld, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{world.provider.dsp}{path}", json=body, headers=world.dsp_auth(), timeout=60)


def _provider_state(world: ConnectorWorld, kind: str, pid: str) -> str:
    with sqlite3.connect(f"file:{world.provider.database()}?mode=ro", uri=True, timeout=30) as db:
        (state,) = db.execute("SELECT state FROM processes WHERE id = ? AND kind = ?", (pid, kind)).fetchone()
    return str(state)


def test_negotiation_messages_in_the_wrong_state_are_refused(world: ConnectorWorld) -> None:
    ppid, cpid = world.provider_negotiation_pid, world.consumer_negotiation_pid
    assert _provider_state(world, "negotiation", ppid) == "FINALIZED"
    wrong = {
        f"/negotiations/{ppid}/events": dsp.negotiation_event_message(ppid, cpid, "ACCEPTED"),
        f"/negotiations/{ppid}/request": dsp.contract_request_message(
            cpid, {"@id": "urn:x", "permission": [{"action": "use"}]}, provider_pid=ppid,
            callback_address=world.consumer.dsp,
        ),
        # a verification naming our process but another consumer pid (a different message)
        f"/negotiations/{ppid}/agreement/verification": dsp.agreement_verification_message(
            ppid, "urn:uuid:someone-else"
        ),
    }
    for path, message in wrong.items():
        reply = _post(world, path, message)
        assert 400 <= reply.status_code < 500, (path, reply.status_code, reply.text[:300])
        assert reply.json()["@type"] == "ContractNegotiationError", (path, reply.text[:300])
    assert _provider_state(world, "negotiation", ppid) == "FINALIZED"


def test_a_completed_transfer_cannot_be_resumed_suspended_or_requested_again(world: ConnectorWorld) -> None:
    ppid, cpid = world.provider_transfer_id, world.consumer_transfer_id
    assert _provider_state(world, "transfer", ppid) == "STARTED"
    # a consumer may send a start only to resume a suspended transfer
    reply = _post(world, f"/transfers/{ppid}/start", dsp.transfer_start_message(ppid, cpid))
    assert reply.status_code == 400, reply.text[:300]
    assert _provider_state(world, "transfer", ppid) == "STARTED"
    done = _post(world, f"/transfers/{ppid}/completion", dsp.transfer_completion_message(ppid, cpid))
    assert done.status_code == 200, done.text[:300]
    assert _provider_state(world, "transfer", ppid) == "COMPLETED"
    for kind, message in (
        ("start", dsp.transfer_start_message(ppid, cpid)),
        ("suspension", dsp.transfer_suspension_message(ppid, cpid, reasons=["again"])),
        ("termination", dsp.transfer_termination_message(ppid, cpid, reasons=["again"])),
    ):
        reply = _post(world, f"/transfers/{ppid}/{kind}", message)
        assert reply.status_code == 400, (kind, reply.status_code, reply.text[:300])
        assert _provider_state(world, "transfer", ppid) == "COMPLETED", kind
    again = _post(world, "/transfers/request", dsp.transfer_request_message(
        cpid, world.agreement_id, "HttpData-PULL", world.consumer.dsp))
    assert again.status_code < 500, again.text[:300]
    assert _provider_processes(world, "transfer", cpid) == [(ppid, "COMPLETED")]
    # and the job's token reads nothing any more
    url = world.data_endpoint
    read = httpx.get(url, headers=world.data_auth("GET", url), timeout=60)
    assert read.status_code in (401, 403), read.text[:300]


ODD_FACTS: list[object] = [
    {"@id": "https://w3id.org/sluis/purpose/scientific-research"},
    ["https://w3id.org/sluis/purpose/scientific-research"],
    42,
    True,
    "x" * 50_000,
    "",
]
EXT = "https://w3id.org/sluis/ns#"


def test_job_facts_of_any_json_type_are_refused_or_taken_as_text(world: ConnectorWorld) -> None:
    for index, value in enumerate(ODD_FACTS):
        for member in ("purpose", "computeSite", "jobId"):
            consumer_pid = f"urn:uuid:rt2-odd-fact-{member}-{index}"
            message = dsp.transfer_request_message(
                consumer_pid, world.agreement_id, "HttpData-PULL", world.consumer.dsp,
                extensions={f"{EXT}{member}": value},
            )
            reply = httpx.post(f"{world.provider.dsp}/transfers/request", json=message,
                               headers=world.dsp_auth(), timeout=60)
            shown = value if len(str(value)) < 80 else "long"
            assert reply.status_code < 500, (member, shown, reply.text[:300])
            for ppid, _ in _provider_processes(world, "transfer", consumer_pid):
                found = world.clients["provider"].get(f"/transfers/{ppid}")
                assert found.status_code == 200, (member, found.text[:300])


def test_concurrent_copies_of_one_contract_request_make_one_negotiation(world: ConnectorWorld) -> None:
    catalog = world.clients["consumer"].post(
        "/catalog/request",
        json={"counterparty_address": world.provider.dsp, "counterparty_id": world.provider.did},
    )
    assert catalog.status_code == 200, catalog.text[:300]
    datasets = catalog.json()["dataset"]
    offer = dict(datasets[0]["hasPolicy"][0])
    offer["target"] = datasets[0]["@id"]
    consumer_pid = "urn:uuid:rt2-concurrent-negotiation"
    message = dsp.contract_request_message(consumer_pid, offer, callback_address=world.consumer.dsp)
    message["https://w3id.org/sluis/ns#purpose"] = "https://w3id.org/sluis/purpose/scientific-research"
    headers = [world.dsp_auth() for _ in range(COPIES)]

    def send(auth: dict[str, str]) -> httpx.Response:
        url = f"{world.provider.dsp}/negotiations/request"
        return httpx.post(url, json=message, headers=auth, timeout=60)

    with ThreadPoolExecutor(COPIES) as pool:
        replies = list(pool.map(send, headers))
    assert all(reply.status_code < 500 for reply in replies), [r.text[:200] for r in replies]
    stored = _provider_processes(world, "negotiation", consumer_pid)
    assert len(stored) == 1, f"{len(stored)} provider negotiations for one consumerPid: {stored}"
    with sqlite3.connect(f"file:{world.provider.database()}?mode=ro", uri=True, timeout=30) as db:
        (agreements,) = db.execute(
            "SELECT count(*) FROM agreements WHERE negotiation_id = ?", (stored[0][0],)
        ).fetchone()
    assert agreements <= 1
