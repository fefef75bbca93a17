"""The consumer's side of a push: a delivery repeated under its Idempotency-Key is taken once,
the received file is fetched (hash-checked, management token only) and deleted through the
management API, and not served once the agreement's delete duty fell due."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from connector.protocol import Role, TransferState
from connector.store import AgreementRecord, ProcessRecord, Store, new_pid
from policies import to_dsp_json
from policies.templates import delete_after
from sluis.cli import main
from tests.connector.dsp_world import Authority, Party, make_party, running

PUSH = "HttpData-PUSH"
SECRET = "the-transfers-own-secret"


def _arrow(values: list[int]) -> bytes:
    sink = pa.BufferOutputStream()
    table = pa.table({"age": values})
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _headers(data: bytes, key: str | None) -> dict[str, str]:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    headers = {
        "Authorization": f"Bearer {SECRET}",
        "Content-Type": "application/vnd.apache.arrow.stream",
        "Content-Digest": f"sha-256=:{digest}:",
    }
    if key is not None:
        headers["Idempotency-Key"] = f'"{key}"'
    return headers


def _receiving(storage_url: str, policy: dict[str, Any] | None = None) -> str:
    """A consumer-side push transfer in STARTED under an agreement with ``policy``."""
    store = Store(storage_url)
    try:
        negotiation, agreement_id, pid = new_pid(), new_pid(), new_pid()
        agreement = AgreementRecord(
            agreement_id, negotiation, "did:web:provider.example", "did:web:consumer.example",
            "urn:x:cohort",
            policy or {"@id": agreement_id, "@type": "Agreement", "permission": [{"action": "use"}]},
        )
        store.create_process(
            ProcessRecord(
                id=negotiation, kind="negotiation", role=Role.CONSUMER, state="FINALIZED", version=0,
                counterparty_id="did:web:provider.example", counterparty_address="https://provider.example/dsp",
                consumer_pid=negotiation, agreement_id=agreement_id,
            ),
            agreement=agreement,
        )
        store.create_process(
            ProcessRecord(
                id=pid, kind="transfer", role=Role.CONSUMER, state=TransferState.STARTED, version=0,
                counterparty_id="did:web:provider.example", counterparty_address="https://provider.example/dsp",
                consumer_pid=pid, provider_pid="provider-pid", agreement_id=agreement_id,
                details={"format": PUSH, "push_secret_sha256": hashlib.sha256(SECRET.encode()).hexdigest()},
            )
        )
        return pid
    finally:
        store.close()


def _complete(storage_url: str, transfer_id: str) -> None:
    store = Store(storage_url)
    try:
        record = store.get_process(transfer_id, "transfer")
        assert record is not None
        assert store.advance(record, TransferState.COMPLETED) is not None
    finally:
        store.close()


@pytest.fixture
def consumer(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> Iterator[tuple[Party, str]]:
    url = storage_urls("consumer")
    party = make_party(tmp_path, "consumer", authority, url)
    with running(party):
        yield party, url


def test_a_repeated_delivery_is_taken_once_and_the_job_fetches_and_deletes_it(
    consumer: tuple[Party, str],
) -> None:
    party, url = consumer
    transfer_id = _receiving(url)
    target = f"{party.url}/push/{transfer_id}"
    data = _arrow([34, 51])
    first = httpx.put(target, content=data, headers=_headers(data, "delivery-1"), timeout=30)
    assert first.status_code == 201, first.text
    stored = party.root / "data" / "received" / transfer_id / "data.arrows"
    written = stored.stat().st_mtime_ns
    again = httpx.put(target, content=data, headers=_headers(data, "delivery-1"), timeout=30)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert stored.stat().st_mtime_ns == written  # the file was left as it was
    other = _arrow([99])
    reused = httpx.put(target, content=other, headers=_headers(other, "delivery-1"), timeout=30)
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["field"] == "Idempotency-Key"
    malformed = httpx.put(target, content=data, headers=_headers(data, "a b\x01"), timeout=30)
    assert malformed.status_code == 400
    assert stored.read_bytes() == data
    _complete(url, transfer_id)
    late = httpx.put(target, content=data, headers=_headers(data, "delivery-1"), timeout=30)
    assert late.status_code == 200, late.text  # a repeat after completion is still answered
    fresh = httpx.put(target, content=data, headers=_headers(data, "delivery-2"), timeout=30)
    assert fresh.status_code == 409  # a new delivery is not taken once the transfer completed

    fetch = f"{party.url}/management/received/{transfer_id}"
    cli = ["--url", party.url, "--token", party.token]
    assert httpx.get(fetch, timeout=30).status_code == 401
    assert httpx.get(fetch, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
    with party.management() as api:
        got = api.get(f"/received/{transfer_id}")
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-digest"] == _headers(data, None)["Content-Digest"]
        assert got.headers["content-type"] == "application/vnd.apache.arrow.stream"
        for unknown in ("urn:uuid:unknown", "..%2F..%2Fconnector.toml", "x" * 300):
            missing = api.get(f"/received/{unknown}")
            assert missing.status_code == 404, (unknown, missing.text)
    saved = party.root / "saved.arrows"
    assert main(["connector", "transfers", "received", transfer_id, "--out", str(saved), *cli]) == 0
    assert saved.read_bytes() == data
    assert main(["connector", "transfers", "delete-received", transfer_id, *cli]) == 0
    assert not stored.exists()
    with party.management() as api:
        gone = api.get(f"/received/{transfer_id}")
        assert gone.status_code == 410
        assert gone.json()["type"] == "received-deleted"
        shown = api.get(f"/transfers/{transfer_id}").json()
    assert shown["received"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert shown["received"]["deleted_at"]


def test_received_data_is_not_served_once_the_agreements_delete_duty_fell_due(
    consumer: tuple[Party, str],
) -> None:
    party, url = consumer
    policy = {
        **to_dsp_json(delete_after("urn:x:delete-now", 0)),
        "@type": "Agreement",
        "assigner": "did:web:provider.example",
        "assignee": "did:web:consumer.example",
        "target": "urn:x:cohort",
    }
    transfer_id = _receiving(url, policy)
    data = _arrow([34])
    target = f"{party.url}/push/{transfer_id}"
    put = httpx.put(target, content=data, headers=_headers(data, "d-1"), timeout=30)
    assert put.status_code == 201, put.text
    with party.management() as api:
        due = api.get(f"/received/{transfer_id}")
        assert due.status_code == 410
        assert due.json()["type"] == "received-deleted"
    assert not (party.root / "data" / "received" / transfer_id / "data.arrows").exists()
