"""Read limits hold under concurrency on SQLite and PostgreSQL; the audit log shows tampering."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from connector.audit import AuditLog, export_log, verify_export
from connector.audit.export import public_key_verifier
from connector.database import Database
from connector.dataplane import DataPlane
from connector.dataplane.routes import build_router
from connector.jobs import JobError
from sluis.cli import main as sluis_main
from sluis.servers import serve_in_thread

from .conftest import DataSpace, research_permission

CONCURRENT_READS = 20
READ_LIMIT = 5


def _concurrent_reads(space: DataSpace, replica_url: str | None = None) -> tuple[int, list[str]]:
    """Twenty reads at once; with ``replica_url`` every other one goes to a second replica."""
    count = {"leftOperand": "count", "operator": "lteq", "rightOperand": READ_LIMIT}
    transfer = space.transfer(space.agreement(research_permission(count)))
    readers = [space.reader(transfer) for _ in range(CONCURRENT_READS)]
    if replica_url is not None:
        for reader in readers[::2]:
            reader.address.endpoint = reader.address.endpoint.replace(space.base_url, replica_url)
            refresh = reader.address.refresh_endpoint
            reader.address.refresh_endpoint = refresh.replace(space.base_url, replica_url)
    barrier = threading.Barrier(CONCURRENT_READS)
    successes: list[int] = []
    refusals: list[str] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        try:
            rows = readers[index].query("SELECT count(*) AS n FROM data").column("n").to_pylist()[0]
            with lock:
                successes.append(rows)
        except JobError as error:
            with lock:
                refusals.append(error.code)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONCURRENT_READS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return len(successes), refusals


def test_read_limit_holds_under_concurrent_reads_on_sqlite(space: DataSpace) -> None:
    made, refusals = _concurrent_reads(space)
    assert made == READ_LIMIT
    assert len(refusals) == CONCURRENT_READS - READ_LIMIT
    assert set(refusals) <= {"read_limit", "policy_denied"}


@pytest.mark.postgres
def test_read_limit_holds_under_concurrent_reads_on_two_replicas_on_postgresql(
    make_space: Callable[..., DataSpace], postgres_url: str
) -> None:
    space = make_space(storage_url=postgres_url)
    # a second data plane process image: same key, same public URL, same database
    replica = DataPlane(
        None, space.state, space.plane.key, postgres_url, provider_id=space.provider_id,
        public_url=space.base_url, data_root=space.data_path.parent.parent,
        key_resolver=space.plane.key_resolver,
    )
    app = FastAPI()
    app.include_router(build_router(replica))
    served: list[str] = []

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        served.append(request.url.path)
        return await call_next(request)

    try:
        with serve_in_thread(app) as replica_url:
            made, refusals = _concurrent_reads(space, replica_url)
    finally:
        replica.close()
    assert len(served) == CONCURRENT_READS // 2
    assert made == READ_LIMIT
    assert len(refusals) == CONCURRENT_READS - READ_LIMIT
    intact = space.plane.audit.verify(public_key_verifier(space.plane.key.public_key))
    assert intact.intact
    assert intact.checked >= CONCURRENT_READS


def _space_with_history(space: DataSpace) -> None:
    reader = space.reader(space.transfer(space.agreement(research_permission())))
    reader.read()
    reader.query("SELECT count(*) FROM data")
    with pytest.raises(JobError):
        reader.query("COPY (SELECT 1) TO 'x.csv'")


def _export(space: DataSpace, path: Path, consumer: str | None = None) -> list[dict[str, object]]:
    with path.open("w") as out:
        export_log(space.plane.audit, out, space.plane.key, space.plane.key.public_multibase,
                   space.plane.audit_signer, consumer_id=consumer)
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_every_read_and_denial_is_in_a_verifiable_chain(space: DataSpace, tmp_path: Path) -> None:
    _space_with_history(space)
    lines = _export(space, tmp_path / "audit.jsonl")
    kinds = [(line["body"]["kind"], line["body"]["decision"]) for line in lines[1:]]  # type: ignore[index]
    assert ("read", "permit") in kinds
    assert ("read", "deny") in kinds
    assert ("access-issued", "permit") in kinds
    reads = [line["body"] for line in lines[1:] if line["body"]["kind"] == "read"]  # type: ignore[index]
    assert any(body["rows"] == 1_000 and body["bytes"] > 0 and body["query_hash"] for body in reads)
    report = verify_export(tmp_path / "audit.jsonl", space.plane.key.public_multibase)
    assert report.intact, report.report.problem
    key = space.plane.key.public_multibase
    assert sluis_main(["audit", "verify", str(tmp_path / "audit.jsonl"), "--key", key]) == 0


@pytest.mark.parametrize("tamper", ["changed", "removed", "reordered", "truncated"])
def test_audit_tampering_is_detected(space: DataSpace, tmp_path: Path, tamper: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _space_with_history(space)
    lines = _export(space, tmp_path / "audit.jsonl")
    header, entries = lines[0], lines[1:]
    if tamper == "changed":
        entries[2]["body"]["rows"] = 999_999  # type: ignore[index]
    elif tamper == "removed":
        del entries[2]
    elif tamper == "reordered":
        entries[1], entries[2] = entries[2], entries[1]
    else:
        entries = entries[:-1]
    _write(tmp_path / "tampered.jsonl", [header, *entries])
    report = verify_export(tmp_path / "tampered.jsonl", space.plane.key.public_multibase)
    assert not report.intact
    assert report.report.problem is not None
    key = space.plane.key.public_multibase
    assert sluis_main(["audit", "verify", str(tmp_path / "tampered.jsonl"), "--key", key]) == 1
    printed = capsys.readouterr().out
    assert "seq" in printed


def test_tampering_in_the_database_is_detected(space: DataSpace, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _space_with_history(space)
    url = space.plane.database.url
    key = space.plane.key.public_multibase
    assert sluis_main(["audit", "verify", "--storage", url, "--key", key]) == 0
    db_path = url[len("sqlite:///"):]
    with sqlite3.connect(db_path) as db:
        body = json.loads(db.execute("SELECT body FROM sluis_audit_entries WHERE seq = 3").fetchone()[0])
        body["rows"] = 123_456
        db.execute("UPDATE sluis_audit_entries SET body = ? WHERE seq = 3", (json.dumps(body),))
    assert sluis_main(["audit", "verify", "--storage", url, "--key", key]) == 1
    assert "seq 3" in capsys.readouterr().out
    log = AuditLog(Database(url))
    assert not log.verify(public_key_verifier(space.plane.key.public_key)).intact


def test_consumer_export_redacts_other_consumers_and_still_verifies(space: DataSpace, tmp_path: Path) -> None:
    _space_with_history(space)
    bob = space.reader(space.transfer(space.agreement(research_permission(), consumer="bob"), consumer="bob"),
                       consumer="bob")
    bob.read()
    alice = space.consumers["alice"].did
    lines = _export(space, tmp_path / "alice.jsonl", consumer=alice)
    shown = [line for line in lines[1:] if "body" in line]
    hidden = [line for line in lines[1:] if line.get("redacted")]
    assert shown
    assert hidden
    assert all(line["body"]["consumer_id"] == alice for line in shown)  # type: ignore[index]
    assert verify_export(tmp_path / "alice.jsonl", space.plane.key.public_multibase).intact


def test_result_over_the_row_cap_is_aborted_not_truncated(make_space: Callable[..., DataSpace]) -> None:
    from connector.dataplane import DataPlaneLimits, SandboxLimits

    space = make_space(limits=DataPlaneLimits(sandbox=SandboxLimits(batch_rows=100), max_result_rows=250))
    reader = space.reader(space.transfer(space.agreement(research_permission())))
    assert reader.query("SELECT * FROM data LIMIT 200").num_rows == 200
    with pytest.raises(JobError) as aborted:
        reader.read()
    assert aborted.value.code == "read_interrupted"
    last = list(space.plane.audit.entries())[-1].body
    assert last is not None
    assert (last["kind"], last["status"]) == ("read", "failed")
    assert "250 rows" in str(last["reason"])


def test_push_read_keys_are_pruned_after_their_retention(space: DataSpace) -> None:
    """Every HTTP push delivery leaves a read key; without pruning the table grows for ever."""
    from connector.dataplane.store import READ_KEY_RETENTION_SECONDS, READ_KEY_SWEEP_INTERVAL_SECONDS

    store = space.plane.store
    start = 1_000_000.0
    for item in range(50):  # a week of deliveries, each counted once
        assert store.reserve_read("offer-1", None, f"push:{item}", now=start + item) == item + 1
    assert store.read_keys() == 50
    assert store.reserve_read("offer-1", None, "push:3", now=start + 60) == 4  # a retry: counted once
    later = start + READ_KEY_RETENTION_SECONDS + READ_KEY_SWEEP_INTERVAL_SECONDS + 100
    assert store.reserve_read("offer-1", None, "push:new", now=later) == 51
    assert store.read_keys() == 1  # only the new delivery's key is left
    assert store.keyed_read("push:3") is None
    assert store.reads("offer-1") == 51  # pruning keys never lowers a count
