"""One database layer: every table is a numbered migration, and databases of earlier releases upgrade.

The upgrade test builds, with raw driver calls, a database exactly as the previous code left it:
the store's migration 1 recorded in ``schema_version``, and the data-plane, audit and pages tables
that used to be created on first use (``CREATE TABLE IF NOT EXISTS``, outside the numbering), all
holding rows. Opening it through :mod:`connector.database` must keep every row and every limit.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector.app import create_app
from connector.audit import GENESIS_HASH, AuditLog, seal
from connector.audit.export import public_key_verifier
from connector.config import load_config
from connector.database import MIGRATIONS, Database
from connector.dataplane.store import ACTIVE, DataPlaneStore
from connector.identity import KeyPair
from connector.pages.register_store import RegisterChoices
from connector.store import Store
from tests.connector.dsp_world import Authority, make_party

REPO_ROOT = Path(__file__).resolve().parents[2]

# The store's schema as released before the data plane, audit and pages joined the numbering
# (frozen here: a later edit of migration 1 must not make this test agree with itself).
OLD_STORE_MIGRATION_1 = """
CREATE TABLE assets (id TEXT PRIMARY KEY, title TEXT NOT NULL, dataset_json TEXT NOT NULL,
    data_kind TEXT NOT NULL, data_path TEXT NOT NULL, data_table TEXT,
    created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE policies (id TEXT PRIMARY KEY, policy_json TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE contract_definitions (id TEXT PRIMARY KEY,
    access_policy_id TEXT NOT NULL REFERENCES policies(id),
    contract_policy_id TEXT NOT NULL REFERENCES policies(id),
    asset_ids_json TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE processes (id TEXT PRIMARY KEY, kind TEXT NOT NULL, role TEXT NOT NULL, state TEXT NOT NULL,
    version INTEGER NOT NULL, provider_pid TEXT, consumer_pid TEXT, counterparty_id TEXT NOT NULL,
    counterparty_address TEXT NOT NULL, agreement_id TEXT, details_json TEXT NOT NULL, error TEXT,
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE INDEX processes_by_peer ON processes (kind, counterparty_id, consumer_pid);
CREATE INDEX processes_by_agreement ON processes (agreement_id);
CREATE TABLE agreements (id TEXT PRIMARY KEY, negotiation_id TEXT NOT NULL REFERENCES processes(id),
    provider_id TEXT NOT NULL, consumer_id TEXT NOT NULL, asset_id TEXT NOT NULL,
    agreement_json TEXT NOT NULL, terminated INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE messages (id {serial}, process_id TEXT NOT NULL, direction TEXT NOT NULL, type TEXT NOT NULL,
    body_json TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE INDEX messages_by_process ON messages (process_id);
CREATE TABLE outbox (id {serial}, process_id TEXT NOT NULL, url TEXT NOT NULL, audience TEXT NOT NULL,
    body_json TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL, claimed_by TEXT, claimed_until DOUBLE PRECISION,
    delivered_at DOUBLE PRECISION, failed_reason TEXT, created_at DOUBLE PRECISION NOT NULL);
CREATE INDEX outbox_pending ON outbox (delivered_at, next_attempt_at);
CREATE INDEX outbox_by_process ON outbox (process_id, id);
CREATE TABLE replay_guard (jti TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (1)
"""

# What the data plane, the audit log and the pages created on first use, before they migrated.
OLD_FIRST_USE_TABLES = """
CREATE TABLE IF NOT EXISTS sluis_dp_tokens (jti TEXT PRIMARY KEY, transfer_id TEXT NOT NULL,
    agreement_id TEXT NOT NULL, consumer_id TEXT NOT NULL, expires_at BIGINT NOT NULL,
    status TEXT NOT NULL, replaced_by TEXT);
CREATE INDEX IF NOT EXISTS sluis_dp_tokens_by_transfer ON sluis_dp_tokens (transfer_id);
CREATE TABLE IF NOT EXISTS sluis_dp_proofs (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS sluis_dp_reads (agreement_id TEXT PRIMARY KEY, reads BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS sluis_dp_privacy (counter TEXT PRIMARY KEY, spent BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS sluis_dp_obligations (id TEXT PRIMARY KEY, agreement_id TEXT NOT NULL,
    duty_uid TEXT NOT NULL, consumer_id TEXT NOT NULL, provider_id TEXT NOT NULL, action TEXT NOT NULL,
    description TEXT NOT NULL, due_at TEXT, status TEXT NOT NULL, uses BIGINT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, evidence TEXT, UNIQUE (agreement_id, duty_uid));
CREATE TABLE IF NOT EXISTS sluis_audit_entries (seq BIGINT PRIMARY KEY, prev_hash TEXT NOT NULL,
    body_hash TEXT NOT NULL, entry_hash TEXT NOT NULL, signature TEXT NOT NULL, signer TEXT NOT NULL,
    body TEXT NOT NULL, agreement_id TEXT, consumer_id TEXT, recorded_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sluis_audit_by_consumer ON sluis_audit_entries (consumer_id, seq);
CREATE INDEX IF NOT EXISTS sluis_audit_by_agreement ON sluis_audit_entries (agreement_id, seq);
CREATE TABLE IF NOT EXISTS sluis_pages_register (definition_id TEXT PRIMARY KEY, listed INTEGER NOT NULL)
"""

EVERY_TABLE = {
    "schema_version", "assets", "policies", "contract_definitions", "processes", "agreements",
    "messages", "outbox", "replay_guard", "sluis_dp_tokens", "sluis_dp_proofs", "sluis_dp_reads",
    "sluis_dp_privacy", "sluis_dp_obligations", "sluis_audit_entries", "sluis_pages_register",
    "sluis_dp_read_keys", "push_spools",
}
SIGNER = "did:web:provider.example#key-1"


def _raw(url: str, script: str, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Run DDL and inserts with the bare driver, as the previous release's code left them."""
    statements = [part.strip() for part in script.split(";") if part.strip()]
    if url.startswith("sqlite:///"):
        serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
        with sqlite3.connect(url[len("sqlite:///"):]) as connection:
            for statement in statements:
                connection.execute(statement.format(serial=serial))
            for sql, params in rows:
                connection.execute(sql, params)
        return
    import psycopg

    with psycopg.connect(url) as connection:
        for statement in statements:
            connection.execute(statement.format(serial="BIGSERIAL PRIMARY KEY"))
        for sql, params in rows:
            connection.execute(sql.replace("?", "%s"), params)


def _tables(database: Database) -> set[str]:
    with database.transaction(write=False) as tx:
        if database.dialect == "sqlite":
            rows = tx.all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        else:
            rows = tx.all("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
    return {str(row["name"]) for row in rows}


def _versions(database: Database) -> list[int]:
    with database.transaction(write=False) as tx:
        return [int(row["version"]) for row in tx.all("SELECT version FROM schema_version ORDER BY version")]


def _old_audit_rows(key: KeyPair) -> list[tuple[str, tuple[Any, ...]]]:
    rows, prev = [], GENESIS_HASH
    for seq in (1, 2):
        body = {"kind": "read", "decision": "permit", "agreement_id": "agr-1", "consumer_id": "did:web:c",
                "at": f"2026-01-0{seq}T00:00:00.000000+00:00"}
        entry = seal(seq, prev, body, SIGNER, key.sign)
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        rows.append((
            "INSERT INTO sluis_audit_entries (seq, prev_hash, body_hash, entry_hash, signature, signer, body,"
            " agreement_id, consumer_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, prev, entry.body_hash, entry.entry_hash, entry.signature, SIGNER, text, "agr-1",
             "did:web:c", body["at"]),
        ))
        prev = entry.entry_hash
    return rows


def test_a_database_of_the_previous_release_upgrades_and_keeps_its_rows_and_limits(
    storage_urls: Callable[[str], str],
) -> None:
    url = storage_urls("old")
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    key = KeyPair.generate()
    _raw(url, OLD_STORE_MIGRATION_1 + ";" + OLD_FIRST_USE_TABLES, [
        ("INSERT INTO policies (id, policy_json, created_at) VALUES (?, ?, ?)", ("pol-1", '{"a":1}', 1.0)),
        ("INSERT INTO sluis_dp_reads (agreement_id, reads) VALUES (?, ?)", ("agr-1", 2)),
        ("INSERT INTO sluis_dp_privacy (counter, spent) VALUES (?, ?)", ("agr-1", 400_000)),
        ("INSERT INTO sluis_dp_tokens (jti, transfer_id, agreement_id, consumer_id, expires_at, status)"
         " VALUES (?, ?, ?, ?, ?, ?)", ("jti-1", "tr-1", "agr-1", "did:web:c", 2_000_000_000, ACTIVE)),
        ("INSERT INTO sluis_pages_register (definition_id, listed) VALUES (?, ?)", ("def-1", 1)),
        *_old_audit_rows(key),
    ])

    store = Store(url)
    assert store.migrate() == len(MIGRATIONS)
    database = store.db
    assert _versions(database) == list(range(1, len(MIGRATIONS) + 1))
    assert _tables(database) == EVERY_TABLE
    assert store.get_policy("pol-1") == {"a": 1}

    plane = DataPlaneStore(database)
    assert plane.reserve_read("agr-1", 3) == 3  # counted on from the old row, not from zero
    assert plane.reserve_read("agr-1", 3) is None
    assert plane.spend_privacy("agr-1", 600_000, 1_000_000) == 1_000_000
    assert plane.spend_privacy("agr-1", 1, 1_000_000) is None
    assert plane.claim_refresh("jti-1")
    assert not plane.claim_refresh("jti-1")

    log = AuditLog(database, key, SIGNER)
    assert log.append({"kind": "read", "decision": "deny"}).seq == 3  # the old chain goes on
    report = log.verify(public_key_verifier(key.public_key))
    assert report.intact
    assert report.checked == 3

    assert RegisterChoices(database).listed() == frozenset({"def-1"})
    assert store.migrate() == len(MIGRATIONS)
    assert _versions(database) == list(range(1, len(MIGRATIONS) + 1))
    store.close()


def test_a_store_of_the_previous_release_without_a_data_plane_gains_its_tables(
    storage_urls: Callable[[str], str],
) -> None:
    url = storage_urls("control-only")
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    _raw(url, OLD_STORE_MIGRATION_1, [])
    database = Database(url)
    DataPlaneStore(database)  # what a data plane does first: migrate the handle it was given
    assert _versions(database) == list(range(1, len(MIGRATIONS) + 1))
    assert _tables(database) == EVERY_TABLE
    database.close()


def test_handles_migrating_a_fresh_database_at_once_apply_each_migration_once(
    storage_urls: Callable[[str], str],
) -> None:
    url = storage_urls("fresh")
    handles = [Database(url) for _ in range(3)]
    threads = [threading.Thread(target=handle.migrate) for handle in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _versions(handles[0]) == list(range(1, len(MIGRATIONS) + 1))
    assert _tables(handles[0]) == EVERY_TABLE
    for handle in handles:
        handle.close()


def test_no_connector_table_is_created_outside_the_numbered_migrations() -> None:
    owner = REPO_ROOT / "connector" / "database" / "migrations.py"
    strays = [
        str(path.relative_to(REPO_ROOT))
        for path in sorted((REPO_ROOT / "connector").rglob("*.py"))
        if path != owner and re.search(r"CREATE\s+(TABLE|INDEX)", path.read_text(encoding="utf-8"), re.I)
    ]
    assert not strays, f"tables or indexes created outside connector/database/migrations.py: {strays}"


def test_a_connector_opens_its_database_through_one_pool(
    tmp_path: Path, authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Store, data plane, audit log and pages share the store's handle: building the app opens
    one connection to the storage file (migrating it), not one per component."""
    path = tmp_path / "connector.db"
    party = make_party(tmp_path, "provider", authority, f"sqlite:///{path}")
    opened: list[str] = []
    connect = sqlite3.connect

    def counting(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(str(database))
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counting)
    app = create_app(load_config(party.config_path))
    assert opened.count(str(path)) == 1, opened
    assert app.state.store.db.path == path
    app.state.store.close()
