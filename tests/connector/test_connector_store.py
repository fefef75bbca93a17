"""The connector store on SQLite and PostgreSQL: CAS transitions, outbox, replay guard, views."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.database import MIGRATIONS
from connector.store import (
    AgreementRecord,
    AssetRecord,
    LoggedMessage,
    OutboundMessage,
    OutboxItem,
    ProcessRecord,
    Store,
    new_pid,
)
from tests.connector.dsp_world import wait_until


@pytest.fixture
def store(storage_urls: Callable[[str], str], tmp_path: Path) -> Store:
    created = Store(storage_urls("store"), data_root=tmp_path / "data")
    created.migrate()
    return created


def _negotiation(state: str = "REQUESTED", **details: object) -> ProcessRecord:
    pid = new_pid()
    return ProcessRecord(
        id=pid,
        kind="negotiation",
        role="provider",
        state=state,
        version=0,
        counterparty_id="did:web:c",
        counterparty_address="http://127.0.0.1:1/dsp",
        provider_pid=pid,
        consumer_pid="urn:uuid:c",
        details=dict(details),
    )


def test_migrations_are_idempotent(store: Store) -> None:
    assert store.migrate() == store.migrate() == len(MIGRATIONS)


def test_a_stale_writer_cannot_advance_a_process(store: Store) -> None:
    created = store.create_process(_negotiation(), [LoggedMessage("in", "ContractRequestMessage", {"a": 1})])
    first = store.advance(
        created, "AGREED", messages=[LoggedMessage("out", "ContractAgreementMessage", {"b": 2})]
    )
    assert first is not None
    assert first.version == created.version + 1
    assert store.advance(created, "OFFERED") is None  # read before the first advance: refused
    current = store.get_process(created.id)
    assert current is not None
    assert current.state == "AGREED"
    assert [m.type for m in store.messages_of(created.id)] == [
        "ContractRequestMessage",
        "ContractAgreementMessage",
    ]


def test_state_change_and_outbox_and_agreement_commit_together(store: Store) -> None:
    created = store.create_process(_negotiation(dataset_id="ds"))
    agreement = AgreementRecord(
        "urn:agreement:1", created.id, "did:web:p", "did:web:c", "ds", {"@id": "urn:agreement:1"}
    )
    updated = store.advance(
        created,
        "AGREED",
        changes={"agreement_id": agreement.id},
        agreement=agreement,
        outbox=[
            OutboundMessage("http://127.0.0.1:1/dsp/x", "did:web:c", {"@type": "ContractAgreementMessage"})
        ],
    )
    assert updated is not None
    assert updated.agreement_id == agreement.id
    assert store.get_agreement(agreement.id) == agreement
    assert store.outbox_pending() == 1
    # a failing transaction leaves nothing behind
    with pytest.raises(ValueError, match="cannot change"):
        store.advance(updated, "VERIFIED", changes={"state": "oops"})
    again = store.get_process(created.id)
    assert again is not None
    assert again.state == "AGREED"


def test_outbox_keeps_per_process_order_and_leases_are_exclusive(store: Store) -> None:
    created = store.create_process(
        _negotiation(),
        outbox=[
            OutboundMessage("http://127.0.0.1:1/one", "did:web:c", {"n": 1}),
            OutboundMessage("http://127.0.0.1:1/two", "did:web:c", {"n": 2}),
        ],
    )
    claimed = store.claim_outbox("worker-a")
    assert [item.body["n"] for item in claimed] == [1]
    assert store.claim_outbox("worker-b") == []  # leased, and the second waits for the first
    store.outbox_delivered(claimed[0].id)
    second = store.claim_outbox("worker-b")
    assert [item.body["n"] for item in second] == [2]
    assert second[0].process_id == created.id
    store.outbox_retry(second[0].id, 1, time.time() + 60, "unreachable")
    assert store.claim_outbox("worker-a") == []  # not due yet
    assert [i.body["n"] for i in store.claim_outbox("worker-a", now=time.time() + 61)] == [2]


def test_a_new_message_is_leased_in_its_own_transaction_and_order_still_holds(store: Store) -> None:
    leased: list[OutboxItem] = []
    created = store.create_process(
        _negotiation(),
        outbox=[
            OutboundMessage("http://127.0.0.1:1/one", "did:web:c", {"n": 1}),
            OutboundMessage("http://127.0.0.1:1/two", "did:web:c", {"n": 2}),
        ],
        claim_for="worker-a",
        claimed=leased,
    )
    assert [item.body["n"] for item in leased] == [1]  # the first, ready to deliver after commit
    assert store.claim_outbox("worker-b") == []  # nobody else gets it, and the second waits
    # a later transition queues a third message: not leased while earlier ones are pending
    more: list[OutboxItem] = []
    advanced = store.advance(
        created,
        "AGREED",
        outbox=[OutboundMessage("http://127.0.0.1:1/three", "did:web:c", {"n": 3})],
        claim_for="worker-a",
        claimed=more,
    )
    assert advanced is not None
    assert more == []
    store.outbox_delivered(leased[0].id)
    assert [item.body["n"] for item in store.claim_outbox("worker-b")] == [2]
    # after a lease runs out (the worker died) the recovery path claims the message again
    assert [i.body["n"] for i in store.claim_outbox("worker-c", now=time.time() + 3600)] == [2]


def test_a_killed_workers_lease_expires(store: Store) -> None:
    store.create_process(
        _negotiation(), outbox=[OutboundMessage("http://127.0.0.1:1/x", "did:web:c", {"n": 1})]
    )
    assert store.claim_outbox("dead-worker")
    assert store.claim_outbox("other", now=time.time() + 1) == []
    assert store.claim_outbox("other", now=time.time() + 3600)


def test_replay_guard_accepts_a_jti_once(store: Store) -> None:
    expiry = datetime.now(UTC) + timedelta(minutes=5)
    assert store.check_and_remember("jti-1", expiry) is True
    assert store.check_and_remember("jti-1", expiry) is False
    assert store.check_and_remember("jti-2", expiry) is True


def test_contract_state_views_for_the_data_plane(store: Store, tmp_path: Path) -> None:
    store.put_asset(AssetRecord("ds", "Cohort", {}, "csv", "cohort.csv"))
    asset = store.asset_data("ds")
    assert asset is not None
    assert asset.path == str(tmp_path / "data" / "cohort.csv")
    assert asset.kind == "csv"
    negotiation = store.create_process(_negotiation())
    agreement = AgreementRecord(
        "urn:a", negotiation.id, "did:web:p", "did:web:c", "ds", {"@type": "Agreement"}
    )
    store.advance(negotiation, "AGREED", agreement=agreement)
    transfer = store.create_process(
        ProcessRecord(
            id="urn:t",
            kind="transfer",
            role="provider",
            state="STARTED",
            version=0,
            counterparty_id="did:web:c",
            counterparty_address="http://127.0.0.1:1/dsp",
            agreement_id="urn:a",
            details={
                "asset_id": "ds",
                "provider_id": "did:web:p",
                "job_id": "job",
                "purpose": "p",
                "compute_site": "s",
            },
        )
    )
    view = store.transfer(transfer.id)
    assert view is not None
    assert (view.state, view.job_id, view.consumer_id) == ("STARTED", "job", "did:web:c")
    assert store.transfer("urn:unknown") is None
    before = store.agreement("urn:a")
    assert before is not None
    assert not before.terminated
    assert store.terminate_agreement("urn:a")
    assert not store.terminate_agreement("urn:a")
    after = store.agreement("urn:a")
    assert after is not None
    assert after.terminated


_RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from connector.store import Store
    url, ids, go, ready = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    store = Store(url)
    records = [store.get_process(i) for i in ids]
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
    won = [r.id for r in records if store.advance(r, "AGREED") is not None]
    print(json.dumps(won))
    """
)


def test_two_processes_never_both_advance_the_same_process(store: Store, tmp_path: Path) -> None:
    records = [store.create_process(_negotiation()) for _ in range(40)]
    ids = json.dumps([r.id for r in records])
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(2)]
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, store.db.url, ids, str(go), str(flag)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    # both racers have read every process at the same version before either may write
    wait_until(lambda: all(flag.exists() for flag in ready), "both racers to read the processes")
    go.touch()
    wins = [json.loads(racer.communicate(timeout=120)[0]) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    assert sorted(wins[0] + wins[1]) == sorted(r.id for r in records), "every process advanced exactly once"
    assert not set(wins[0]) & set(wins[1])
    for record in records:
        current = store.get_process(record.id)
        assert current is not None
        assert current.version == record.version + 1
