"""HTTP push delivered once and counted once: through a destination slower than the outbox lease
with two provider replicas, across a provider killed with SIGKILL mid-push and restarted, and
with the destination's credential never at rest in clear. Real connectors on loopback, real
DuckDB, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import connector.control.outbox as outbox_module
import connector.store.store as store_module
from connector.app import create_app
from connector.config import load_config
from connector.store import Store
from sluis.servers import serve_in_thread
from tests.connector.dsp_world import (
    RESEARCH,
    Authority,
    ConnectorProcess,
    Party,
    finalized_agreement,
    make_party,
    publish_dataset,
    running,
    wait_for_state,
    wait_until,
)

PUSH = "HttpData-PUSH"
JOB = {"id": "job-push", "purpose": RESEARCH}
SECRET = "bucket-credential-0f4c2a"


@dataclass
class Bucket:
    """A destination storage: keeps every complete PUT; holds the first while told to."""

    hold_first_seconds: float = 0.0
    hold_first_until: threading.Event | None = None
    puts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.put("/bucket/{name}")
        async def put(name: str, request: Request) -> JSONResponse:
            body = await request.body()
            with self.lock:
                self.puts.append((dict(request.headers), body))
                first = len(self.puts) == 1
            if first and self.hold_first_seconds:
                await asyncio.sleep(self.hold_first_seconds)
            if first and self.hold_first_until is not None:
                while not self.hold_first_until.is_set():
                    await asyncio.sleep(0.05)
            return JSONResponse({"stored": name}, status_code=201)

        return app


def _agreement(provider: Party, consumer: Party) -> str:
    return str(finalized_agreement(consumer, provider, publish_dataset(provider))["agreement_id"])


def _push(consumer: Party, provider: Party, agreement_id: str, endpoint: str) -> str:
    body = {
        "agreement_id": agreement_id,
        "counterparty_address": provider.dsp,
        "format": PUSH,
        "job": JOB,
        "destination": {"endpoint": endpoint, "authorization": SECRET, "auth_type": "Bearer"},
    }
    with consumer.management() as api:
        response = api.post("/transfers", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def _rows(storage_url: str, sql: str) -> list[dict[str, Any]]:
    store = Store(storage_url)
    try:
        with store.db.transaction(write=False) as tx:
            return tx.all(sql)
    finally:
        store.close()


def _reads_counted(storage_url: str) -> int:
    return sum(int(row["reads"]) for row in _rows(storage_url, "SELECT reads FROM sluis_dp_reads"))


def _read_entries(storage_url: str) -> list[dict[str, Any]]:
    bodies = [json.loads(row["body"]) for row in _rows(storage_url, "SELECT body FROM sluis_audit_entries")]
    return [body for body in bodies if body.get("kind") == "read"]


def test_a_destination_slower_than_the_lease_gets_the_push_once_from_two_replicas(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "OUTBOX_LEASE_SECONDS", 2.0)
    monkeypatch.setattr(outbox_module, "LEASE_RENEWAL_SECONDS", 0.25)
    bucket = Bucket(hold_first_seconds=8.0)  # four leases
    provider_url = storage_urls("provider")
    provider = make_party(tmp_path, "provider", authority, provider_url)
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    replica = create_app(load_config(provider.config_path))
    with running(provider), running(consumer), serve_in_thread(replica), serve_in_thread(bucket.app()) as url:
        agreement_id = _agreement(provider, consumer)
        transfer_id = _push(consumer, provider, agreement_id, f"{url}/bucket/cohort")
        done = wait_for_state(consumer, "transfers", transfer_id, "COMPLETED", "TERMINATED")
    assert done["state"] == "COMPLETED", done
    assert len(bucket.puts) == 1
    assert _reads_counted(provider_url) == 1


def test_a_provider_killed_mid_push_delivers_once_and_counts_one_read_after_restart(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    """SIGKILL while the destination holds the first PUT; the spooled bytes are gone too (as on
    a replica with another disk), so the restarted provider reads again: counted once, the same
    bytes, the same Idempotency-Key, and the transfer completes once."""
    released = threading.Event()
    bucket = Bucket(hold_first_until=released)
    provider_url = storage_urls("provider")
    provider = make_party(tmp_path, "provider", authority, provider_url)
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    process = ConnectorProcess(provider)
    process.start()
    try:
        with running(consumer), serve_in_thread(bucket.app()) as url:
            agreement_id = _agreement(provider, consumer)
            transfer_id = _push(consumer, provider, agreement_id, f"{url}/bucket/cohort")
            wait_until(lambda: len(bucket.puts) == 1, "the first PUT to arrive")
            process.kill()
            released.set()
            shutil.rmtree(provider.root / "data" / ".push-spool")
            process.start()
            done = wait_for_state(consumer, "transfers", transfer_id, "COMPLETED", "TERMINATED")
            assert done["state"] == "COMPLETED", done
            provider_side = wait_for_state(provider, "transfers", done["provider_pid"], "COMPLETED")
    finally:
        process.stop()
    assert len(bucket.puts) == 2  # the first answer was lost with the killed process
    (first_headers, first), (again_headers, again) = bucket.puts
    assert first == again
    assert first_headers["idempotency-key"] == again_headers["idempotency-key"]
    assert first_headers["content-digest"] == again_headers["content-digest"]
    assert _reads_counted(provider_url) == 1
    entries = _read_entries(provider_url)
    assert len(entries) == 2  # read twice: the spooled bytes were lost with the process's disk
    assert {entry["read_number"] for entry in entries} == {1}  # counted as one read
    assert provider_side["format"] == PUSH


def test_the_destination_credential_is_sealed_at_rest_and_erased_when_the_push_ends(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    released = threading.Event()
    bucket = Bucket(hold_first_until=released)
    provider_url, consumer_url = storage_urls("provider"), storage_urls("consumer")
    provider = make_party(tmp_path, "provider", authority, provider_url)
    consumer = make_party(tmp_path, "consumer", authority, consumer_url)
    with running(provider), running(consumer), serve_in_thread(bucket.app()) as url:
        agreement_id = _agreement(provider, consumer)
        transfer_id = _push(consumer, provider, agreement_id, f"{url}/bucket/cohort")
        wait_until(lambda: len(bucket.puts) == 1, "the PUT to arrive")
        pending = _rows(provider_url, "SELECT details_json FROM processes WHERE kind = 'transfer'")
        released.set()
        done = wait_for_state(consumer, "transfers", transfer_id, "COMPLETED", "TERMINATED")
        assert done["state"] == "COMPLETED", done
        wait_for_state(provider, "transfers", done["provider_pid"], "COMPLETED")
        with provider.management() as api:
            shown = api.get(f"/transfers/{done['provider_pid']}").text
    assert bucket.puts[0][0]["authorization"] == f"Bearer {SECRET}"
    [while_pending] = [json.loads(row["details_json"]) for row in pending]
    assert SECRET not in json.dumps(while_pending)
    assert while_pending["push"]["authorization_sealed"]["kid"]
    [ended] = _rows(provider_url, "SELECT details_json FROM processes WHERE kind = 'transfer'")
    assert "authorization_sealed" not in json.loads(ended["details_json"])["push"]
    everything = json.dumps(_rows(provider_url, "SELECT body_json FROM messages"))
    assert SECRET not in everything
    assert SECRET not in shown
    assert "authorization_sealed" not in shown
    # the consumer sent it once: its outbox and message log keep it as ***
    for table in ("outbox", "messages"):
        assert SECRET not in json.dumps(_rows(consumer_url, f"SELECT body_json FROM {table}"))


def test_a_destination_that_redirects_gets_nothing_followed_and_the_transfer_ends_saying_so(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    """A redirect could lead the data to an address the policy never checked: not followed."""
    elsewhere = Bucket()
    with serve_in_thread(elsewhere.app()) as target:
        redirecting = FastAPI()

        @redirecting.put("/bucket/{name}")
        async def moved(name: str) -> JSONResponse:
            return JSONResponse({}, status_code=307, headers={"Location": f"{target}/bucket/{name}"})

        provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
        consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
        with running(provider), running(consumer), serve_in_thread(redirecting) as url:
            agreement_id = _agreement(provider, consumer)
            transfer_id = _push(consumer, provider, agreement_id, f"{url}/bucket/cohort")
            ended = wait_for_state(consumer, "transfers", transfer_id, "TERMINATED", "COMPLETED")
    assert ended["state"] == "TERMINATED"
    assert "redirect" in ended["error"]
    assert elsewhere.puts == []


def test_a_credential_sealed_under_a_retired_key_ends_the_push_saying_so(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    """The rotation story: a push pending when the participant key changed cannot open its
    credential; it ends with that reason instead of writing without it."""
    from connector.control.push import PushDestination
    from connector.control.push_delivery import idempotency_key
    from connector.control.push_secrets import CredentialSealer
    from connector.identity import KeyPair
    from connector.protocol import Role, TransferState
    from connector.store import AgreementRecord, OutboxItem, ProcessRecord, new_pid

    provider_url = storage_urls("provider")
    provider = make_party(tmp_path, "provider", authority, provider_url)
    app = create_app(load_config(provider.config_path))
    store, pushes = app.state.service.store, app.state.service.pushes
    negotiation, agreement_id, transfer_id = new_pid(), new_pid(), new_pid()
    store.create_process(
        ProcessRecord(
            id=negotiation, kind="negotiation", role=Role.PROVIDER, state="FINALIZED", version=0,
            counterparty_id="did:web:consumer.example", counterparty_address="https://consumer.example/cb",
            agreement_id=agreement_id,
        ),
        agreement=AgreementRecord(
            agreement_id, negotiation, provider.did, "did:web:consumer.example", "urn:x:cohort", {},
        ),
    )
    retired = CredentialSealer(KeyPair.generate())
    destination = PushDestination("http://127.0.0.1:9/bucket", SECRET, "Bearer")
    store.create_process(
        ProcessRecord(
            id=transfer_id, kind="transfer", role=Role.PROVIDER, state=TransferState.STARTED, version=0,
            counterparty_id="did:web:consumer.example", counterparty_address="https://consumer.example/cb",
            agreement_id=agreement_id,
            details={"format": PUSH, "push": destination.sealed(retired, transfer_id)},
        )
    )
    body = {"transfer_id": transfer_id}
    item = OutboxItem(1, transfer_id, f"push:{transfer_id}", "urn:sluis:push", body, 0)
    result = pushes.push(item)
    assert result.outcome.value == "refused"
    assert "no longer has" in result.reason
    assert idempotency_key(transfer_id, 1) != idempotency_key(transfer_id, 2)
