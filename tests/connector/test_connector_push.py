"""HTTP push (``HttpData-PUSH``) between two real connectors on loopback.

The provider reads the granted data through its data plane (same checks, counters and audit as a
pull), writes it to the destination the consumer named with the consumer's credentials, retries
through the outbox, and completes or terminates the transfer over DSP with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow.ipc as ipc
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connector.app import create_app
from connector.config import load_config
from connector.control.push import PushDestination
from connector.control.push_delivery import PushDelivery
from connector.store import Store
from sluis.servers import free_port, serve_in_thread
from tests.connector.dsp_world import (
    RESEARCH,
    Authority,
    Party,
    finalized_agreement,
    make_party,
    publish_dataset,
    wait_for_state,
    wait_until,
)

PUSH = "HttpData-PUSH"
JOB = {"id": "job-push", "purpose": RESEARCH, "compute_site": "https://w3id.org/sluis/place/NL-NH"}


@dataclass
class Destination:
    """A real HTTP server standing for a consumer's storage: answers 500 while told to."""

    failures_left: int = 0
    always_fail: bool = False
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.put("/bucket/{name}")
        async def put(name: str, request: Request) -> JSONResponse:
            body = await request.body()
            with self.lock:
                self.attempts += 1
                if self.always_fail or self.failures_left > 0:
                    self.failures_left = max(0, self.failures_left - 1)
                    return JSONResponse({"error": "storage hiccup"}, status_code=500)
                self.received.append((dict(request.headers), body))
            return JSONResponse({"stored": name}, status_code=201)

        return app


@contextmanager
def serving(party: Party) -> Iterator[Any]:
    app = create_app(load_config(party.config_path))
    with serve_in_thread(app, port=party.port):
        yield app


@pytest.fixture
def pair(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> Iterator[tuple[Any, ...]]:
    provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    with serving(provider) as provider_app, serving(consumer) as consumer_app:
        yield provider, consumer, provider_app, consumer_app


@pytest.fixture(autouse=True)
def few_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PushDelivery, "max_attempts", 4)


def _agreement(provider: Party, consumer: Party) -> str:
    return str(finalized_agreement(consumer, provider, publish_dataset(provider))["agreement_id"])


def _start_push(
    consumer: Party, provider: Party, agreement_id: str, destination: dict[str, Any] | None
) -> str:
    body: dict[str, Any] = {
        "agreement_id": agreement_id,
        "counterparty_address": provider.dsp,
        "format": PUSH,
        "job": JOB,
    }
    if destination is not None:
        body["destination"] = destination
    with consumer.management() as api:
        response = api.post("/transfers", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def _audit(app: Any, transfer_id: str) -> list[dict[str, Any]]:
    plane = app.state.service.pushes.reader
    return [e.body for e in plane.audit.entries() if e.body and e.body.get("transfer_id") == transfer_id]


def test_push_end_to_end_to_the_consumers_receiving_endpoint(pair: tuple[Any, ...]) -> None:
    provider, consumer, provider_app, _ = pair
    agreement_id = _agreement(provider, consumer)
    transfer_id = _start_push(consumer, provider, agreement_id, None)

    done = wait_for_state(consumer, "transfers", transfer_id, "COMPLETED", "TERMINATED")
    assert done["state"] == "COMPLETED", done
    received = done["received"]
    stored = consumer.root / "data" / received["file"]
    data = stored.read_bytes()
    assert hashlib.sha256(data).hexdigest() == received["sha256"]
    assert received["bytes"] == len(data)
    table = ipc.open_stream(data).read_all()
    assert table.num_rows == 2
    assert sorted(table.column_names) == ["age", "region"]

    provider_side = wait_for_state(provider, "transfers", done["provider_pid"], "COMPLETED")
    assert provider_side["format"] == PUSH
    # the push went through the data plane as a read: audited, bound to the consumer and job
    entries = _audit(provider_app, done["provider_pid"])
    reads = [e for e in entries if e["kind"] == "read"]
    assert len(reads) == 1
    assert reads[0]["status"] == "completed"
    assert reads[0]["consumer_id"] == consumer.did
    assert reads[0]["job_id"] == JOB["id"]
    assert any(e["kind"] == "push-access-issued" for e in entries)
    # the destination's secret is never in the provider's message log
    with provider.management() as api:
        shown = api.get(f"/transfers/{done['provider_pid']}").json()
    assert "authorization" not in str(shown)


def test_destination_answering_500_then_recovering_gets_the_data_once_read(pair: tuple[Any, ...]) -> None:
    provider, consumer, provider_app, _ = pair
    destination = Destination(failures_left=2)
    with serve_in_thread(destination.app()) as url:
        agreement_id = _agreement(provider, consumer)
        secret = "s3cret-for-the-bucket"
        transfer_id = _start_push(
            consumer,
            provider,
            agreement_id,
            {"endpoint": f"{url}/bucket/cohort", "authorization": secret, "auth_type": "Bearer"},
        )
        done = wait_for_state(consumer, "transfers", transfer_id, "COMPLETED", "TERMINATED")
    assert done["state"] == "COMPLETED", done
    assert destination.attempts == 3
    assert len(destination.received) == 1
    headers, body = destination.received[0]
    assert headers["authorization"] == f"Bearer {secret}"
    assert headers["content-type"] == "application/vnd.apache.arrow.stream"
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert headers["content-digest"] == f"sha-256=:{digest}:"
    assert ipc.open_stream(body).read_all().num_rows == 2
    # the retries reused the one read: the agreement's reads are not spent by a flaky destination
    reads = [e for e in _audit(provider_app, done["provider_pid"]) if e["kind"] == "read"]
    assert len(reads) == 1


def test_push_to_an_unreachable_destination_terminates_with_the_reason(pair: tuple[Any, ...]) -> None:
    provider, consumer, _, _ = pair
    agreement_id = _agreement(provider, consumer)
    nobody = f"http://127.0.0.1:{free_port()}/bucket/cohort"
    transfer_id = _start_push(consumer, provider, agreement_id, {"endpoint": nobody})
    ended = wait_for_state(consumer, "transfers", transfer_id, "TERMINATED", "COMPLETED")
    assert ended["state"] == "TERMINATED"
    assert "could not be reached" in ended["error"]
    assert "failed 4 times" in ended["error"]
    provider_side = wait_for_state(provider, "transfers", ended["provider_pid"], "TERMINATED")
    assert "could not be reached" in provider_side["error"]


@pytest.mark.parametrize(
    "endpoint",
    ["http://10.1.2.3/bucket", "http://169.254.169.254/latest/meta-data", "http://[::ffff:192.168.0.1]/x"],
)
def test_push_destination_in_a_private_range_is_refused(pair: tuple[Any, ...], endpoint: str) -> None:
    provider, consumer, _, _ = pair
    agreement_id = _agreement(provider, consumer)
    transfer_id = _start_push(consumer, provider, agreement_id, {"endpoint": endpoint})
    ended = wait_for_state(consumer, "transfers", transfer_id, "TERMINATED", "STARTED", "COMPLETED")
    assert ended["state"] == "TERMINATED"
    assert "dataAddress.endpoint" in ended["error"]
    with provider.management() as api:
        assert all(t["format"] != PUSH for t in api.get("/transfers").json())


def _pending_pushes(party: Party, storage_url: str) -> int:
    store = Store(storage_url)
    try:
        with store.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT count(*) AS n FROM outbox WHERE audience = ? AND delivered_at IS NULL "
                "AND failed_reason IS NULL",
                ("urn:sluis:push",),
            )
        return int(row["n"]) if row else 0
    finally:
        store.close()


def test_revocation_mid_push_stops_it_and_nothing_reaches_the_destination(pair: tuple[Any, ...]) -> None:
    provider, consumer, _, _ = pair
    destination = Destination(always_fail=True)
    with serve_in_thread(destination.app()) as url:
        agreement_id = _agreement(provider, consumer)
        transfer_id = _start_push(consumer, provider, agreement_id, {"endpoint": f"{url}/bucket/cohort"})
        wait_until(lambda: destination.attempts >= 1, "a first push attempt")
        with provider.management() as api:
            assert api.post(f"/agreements/{agreement_id}/terminate").status_code == 200
        ended = wait_for_state(consumer, "transfers", transfer_id, "TERMINATED", "COMPLETED")
        assert ended["state"] == "TERMINATED"
        destination.always_fail = False  # the destination recovers, but the agreement is gone
        storage = str(load_config(provider.config_path).storage.url)
        wait_until(lambda: _pending_pushes(provider, storage) == 0, "the push to be given up")
    assert destination.received == []


def _receiving_transfer(storage_url: str, secret: str) -> str:
    """A consumer-side push transfer in STARTED, as our own request would leave it."""
    from connector.protocol import Role, TransferState
    from connector.store import ProcessRecord, new_pid

    store = Store(storage_url)
    try:
        pid = new_pid()
        record = ProcessRecord(
            id=pid,
            kind="transfer",
            role=Role.CONSUMER,
            state=TransferState.STARTED,
            version=0,
            counterparty_id="did:web:provider.example",
            counterparty_address="https://provider.example/dsp",
            consumer_pid=pid,
            provider_pid="provider-pid",
            agreement_id="urn:uuid:agreement",
            details={"format": PUSH, "push_secret_sha256": hashlib.sha256(secret.encode()).hexdigest()},
        )
        store.create_process(record)
        return pid
    finally:
        store.close()


def _arrow_bytes() -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    table = pa.table({"age": [34, 51]})
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _digest(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def test_receiving_endpoint_refuses_what_it_cannot_verify(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    url = storage_urls("consumer")
    consumer = make_party(tmp_path, "consumer", authority, url)
    secret = "the-transfers-own-secret"
    with serving(consumer):
        transfer_id = _receiving_transfer(url, secret)
        data = _arrow_bytes()
        target = f"{consumer.url}/push/{transfer_id}"
        good = {
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/vnd.apache.arrow.stream",
            "Content-Digest": _digest(data),
        }
        folder = consumer.root / "data" / "received" / transfer_id

        def put(headers: dict[str, str], body: bytes = data, where: str = target) -> httpx.Response:
            return httpx.put(where, content=body, headers=headers, timeout=30)

        # no secret, a wrong one, another transfer: one answer, no oracle
        for headers, where in (
            ({**good, "Authorization": ""}, target),
            ({**good, "Authorization": "Bearer wrong"}, target),
            (good, f"{consumer.url}/push/unknown-transfer"),
        ):
            refused = put(headers, where=where)
            assert refused.status_code == 401, refused.text
            assert refused.json()["type"] == "push-unauthorised"
        missing = put({k: v for k, v in good.items() if k != "Content-Digest"})
        assert missing.status_code == 400
        assert missing.json()["errors"][0]["field"] == "Content-Digest"
        tampered = put(good, data[:-1] + bytes([data[-1] ^ 1]))
        assert tampered.status_code == 400
        assert tampered.json()["type"] == "content-digest-mismatch"
        wrong_type = put({**good, "Content-Type": "text/csv"})
        assert wrong_type.status_code == 415
        junk = b"not arrow at all"
        unreadable = put({**good, "Content-Digest": _digest(junk)}, junk)
        assert unreadable.status_code == 400
        assert unreadable.json()["type"] == "push-unreadable"
        assert not any(folder.iterdir()) if folder.exists() else True  # nothing half-written

        accepted = put(good)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["sha256"] == hashlib.sha256(data).hexdigest()
        with consumer.management() as api:
            shown = api.get(f"/transfers/{transfer_id}").json()
        assert shown["received"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert (consumer.root / "data" / shown["received"]["file"]).read_bytes() == data
        assert sorted(p.name for p in folder.iterdir()) == ["data.arrows"]


def test_a_push_connects_to_the_address_that_was_checked_and_checks_it_again(tmp_path: Path) -> None:
    """DNS rebinding: the name is resolved once, by the address policy, and the connection goes
    to the address it checked (here a name only the policy's resolver knows); an address the
    policy refuses is refused on the connected socket too, and nothing is sent."""
    from connector.addresses import AddressPolicy, PeerRefused
    from connector.addresses import Destination as Checked
    from connector.control.push_send import put_file

    destination = Destination()
    data = tmp_path / "spooled"
    data.write_bytes(b"granted bytes")
    headers = {"Content-Length": str(len(b"granted bytes")), "Content-Type": "application/octet-stream"}
    with serve_in_thread(destination.app()) as url:
        port = int(url.rsplit(":", 1)[1])
        pinned = AddressPolicy(allow_loopback=True, resolver=lambda _host, _port: ["127.0.0.1"])
        checked = pinned.check_url(f"http://bucket.storage.invalid:{port}/bucket/cohort")
        assert put_file(checked, pinned, headers, data, lambda: None) == 201
        strict = AddressPolicy()
        # checked when the name was harmless; loopback is refused now (a production policy)
        rebound = Checked(f"{url}/bucket/cohort", "http", "bucket.storage.invalid", port, ("127.0.0.1",))
        with pytest.raises(PeerRefused) as refused:
            put_file(rebound, strict, headers, data, lambda: None)
    assert "loopback" in str(refused.value)
    assert [body for _, body in destination.received] == [b"granted bytes"]




def test_a_queued_push_request_keeps_its_credential_sealed_until_it_is_sent(
    tmp_path: Path,
    authority: Authority,
    storage_urls: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    secret = "bucket-credential-7c1e9a"
    caplog.set_level("DEBUG")
    with serving(consumer) as consumer_app:
        with serving(provider):
            agreement_id = _agreement(provider, consumer)
        # the provider is down: the request waits in the outbox, retried
        body = {
            "agreement_id": agreement_id,
            "counterparty_address": provider.dsp,
            "format": PUSH,
            "job": JOB,
            "destination": {"endpoint": "http://127.0.0.1:9/bucket/x", "authorization": secret},
        }
        with consumer.management() as api:
            started = api.post("/transfers", json=body)
            assert started.status_code == 201, started.text
            transfer_id = started.json()["id"]
            shown = [api.get(f"/transfers/{transfer_id}").text, api.get("/transfers").text]
        store: Store = consumer_app.state.service.store
        wait_until(lambda: _attempts(store, transfer_id) >= 1, "a first failed send")
        with store.db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT body_json, delivered_at FROM outbox WHERE process_id = ?", (transfer_id,)
            )
        kept = "".join(str(row["body_json"]) for row in rows)
        assert rows
        assert all(row["delivered_at"] is None for row in rows)
        assert "sluis:sealedValue" in kept
        assert secret not in kept
        # once the provider is back, the request reaches it with the credential in clear
        with serving(provider) as provider_app:
            wait_until(lambda: _provider_transfer(provider_app) is not None, "the request delivered")
            record = _provider_transfer(provider_app)
            assert record is not None
            delivery = provider_app.state.service.pushes
            opened = PushDestination.opened(record.details["push"], delivery.sealer, record.id)
            assert opened.authorization == secret
            wait_until(lambda: _delivered(store, transfer_id), "the outbox row settled")
        with store.db.transaction(write=False) as tx:
            settled = tx.all("SELECT body_json FROM outbox WHERE process_id = ?", (transfer_id,))
        assert secret not in "".join(str(row["body_json"]) for row in settled)
        assert "sluis:sealedValue" not in "".join(str(row["body_json"]) for row in settled)
    # neither the management API nor a log line showed it
    assert all(secret not in text for text in shown)
    assert secret not in caplog.text


def _attempts(store: Store, process_id: str) -> int:
    with store.db.transaction(write=False) as tx:
        row = tx.one("SELECT max(attempts) AS n FROM outbox WHERE process_id = ?", (process_id,))
    return int(row["n"] or 0) if row else 0


def _delivered(store: Store, process_id: str) -> bool:
    with store.db.transaction(write=False) as tx:
        row = tx.one(
            "SELECT count(*) AS n FROM outbox WHERE process_id = ? AND delivered_at IS NULL", (process_id,)
        )
    return row is not None and int(row["n"]) == 0


def _provider_transfer(app: Any) -> Any:
    store = app.state.service.store
    found = [r for r in store.page_processes("transfer", {}, 50, 0)[0] if r.details.get("push")]
    return found[0] if found else None
