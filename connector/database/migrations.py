"""Every table of the connector, as numbered migrations applied in order (same on both back ends).

One list for the control plane (assets, policies, processes, agreements, messages, outbox, jti
replay guard), the data plane (tokens, proofs, read counters, privacy budgets, obligations), the
audit chain and the pages' register opt-in: one schema version says what a database holds.
A change to a table is a new migration at the end; a migration already released never changes.

``{serial}`` becomes an auto-increment key and ``{blob}`` a text column suited to JSON on each
dialect; everything else is portable SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

MIGRATIONS: tuple[str, ...] = (
    # 1: catalogue of what we offer, processes, agreements, message log, outbox, replay guard
    """
    CREATE TABLE assets (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        dataset_json {blob} NOT NULL,
        data_kind TEXT NOT NULL,
        data_path TEXT NOT NULL,
        data_table TEXT,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE policies (
        id TEXT PRIMARY KEY,
        policy_json {blob} NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE contract_definitions (
        id TEXT PRIMARY KEY,
        access_policy_id TEXT NOT NULL REFERENCES policies(id),
        contract_policy_id TEXT NOT NULL REFERENCES policies(id),
        asset_ids_json {blob} NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE processes (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        role TEXT NOT NULL,
        state TEXT NOT NULL,
        version INTEGER NOT NULL,
        provider_pid TEXT,
        consumer_pid TEXT,
        counterparty_id TEXT NOT NULL,
        counterparty_address TEXT NOT NULL,
        agreement_id TEXT,
        details_json {blob} NOT NULL,
        error TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX processes_by_peer ON processes (kind, counterparty_id, consumer_pid);
    CREATE INDEX processes_by_agreement ON processes (agreement_id);
    CREATE TABLE agreements (
        id TEXT PRIMARY KEY,
        negotiation_id TEXT NOT NULL REFERENCES processes(id),
        provider_id TEXT NOT NULL,
        consumer_id TEXT NOT NULL,
        asset_id TEXT NOT NULL,
        agreement_json {blob} NOT NULL,
        terminated INTEGER NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE messages (
        id {serial},
        process_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        type TEXT NOT NULL,
        body_json {blob} NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX messages_by_process ON messages (process_id);
    CREATE TABLE outbox (
        id {serial},
        process_id TEXT NOT NULL,
        url TEXT NOT NULL,
        audience TEXT NOT NULL,
        body_json {blob} NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        claimed_by TEXT,
        claimed_until DOUBLE PRECISION,
        delivered_at DOUBLE PRECISION,
        failed_reason TEXT,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX outbox_pending ON outbox (delivered_at, next_attempt_at);
    CREATE INDEX outbox_by_process ON outbox (process_id, id);
    CREATE TABLE replay_guard (
        jti TEXT PRIMARY KEY,
        expires_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 2: data plane, audit chain, pages' register. Earlier releases created these tables on first
    # use with exactly this DDL, outside the numbering; ``IF NOT EXISTS`` adopts such a table with
    # its rows, and creates it in any other database.
    """
    CREATE TABLE IF NOT EXISTS sluis_dp_tokens (
        jti TEXT PRIMARY KEY,
        transfer_id TEXT NOT NULL,
        agreement_id TEXT NOT NULL,
        consumer_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        status TEXT NOT NULL,
        replaced_by TEXT
    );
    CREATE INDEX IF NOT EXISTS sluis_dp_tokens_by_transfer ON sluis_dp_tokens (transfer_id);
    CREATE TABLE IF NOT EXISTS sluis_dp_proofs (
        jti TEXT PRIMARY KEY,
        expires_at BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS sluis_dp_reads (
        agreement_id TEXT PRIMARY KEY,
        reads BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS sluis_dp_privacy (
        counter TEXT PRIMARY KEY,
        spent BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS sluis_dp_obligations (
        id TEXT PRIMARY KEY,
        agreement_id TEXT NOT NULL,
        duty_uid TEXT NOT NULL,
        consumer_id TEXT NOT NULL,
        provider_id TEXT NOT NULL,
        action TEXT NOT NULL,
        description TEXT NOT NULL,
        due_at TEXT,
        status TEXT NOT NULL,
        uses BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        evidence TEXT,
        UNIQUE (agreement_id, duty_uid)
    );
    CREATE TABLE IF NOT EXISTS sluis_audit_entries (
        seq BIGINT PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        body_hash TEXT NOT NULL,
        entry_hash TEXT NOT NULL,
        signature TEXT NOT NULL,
        signer TEXT NOT NULL,
        body TEXT NOT NULL,
        agreement_id TEXT,
        consumer_id TEXT,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS sluis_audit_by_consumer ON sluis_audit_entries (consumer_id, seq);
    CREATE INDEX IF NOT EXISTS sluis_audit_by_agreement ON sluis_audit_entries (agreement_id, seq);
    CREATE TABLE IF NOT EXISTS sluis_pages_register (
        definition_id TEXT PRIMARY KEY,
        listed INTEGER NOT NULL
    );
    """,
    # 3: HTTP push - a push's read counted once however often it is re-read (read keys), and the
    # hash of what a push read, so a re-read after a restart or on another replica is the same bytes
    """
    CREATE TABLE sluis_dp_read_keys (
        read_key TEXT PRIMARY KEY,
        counter TEXT NOT NULL,
        read_number BIGINT
    );
    CREATE TABLE push_spools (
        outbox_id BIGINT PRIMARY KEY,
        transfer_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        media_type TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 4: an outbox message keeps the correlation id of its negotiation and the trace context of
    # the step that queued it, so a send after a retry or a restart still logs and traces as
    # part of that negotiation
    """
    ALTER TABLE outbox ADD COLUMN correlation_id TEXT;
    ALTER TABLE outbox ADD COLUMN traceparent TEXT
    """,
    # 6: a push's read key records when it was taken, so keys older than any retry are pruned
    # (rows of earlier releases have none and go at the first prune)
    """
    ALTER TABLE sluis_dp_read_keys ADD COLUMN created_at DOUBLE PRECISION;
    CREATE INDEX sluis_dp_read_keys_by_age ON sluis_dp_read_keys (created_at)
    """,
)

_DIALECT = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "TEXT"},
    "postgres": {"serial": "BIGSERIAL PRIMARY KEY", "blob": "TEXT"},
}


def migration_statements(index: int, dialect: str) -> list[str]:
    """The statements of migration ``index`` (0-based) for ``dialect``."""
    sql = MIGRATIONS[index].format(**_DIALECT[dialect])
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


class _Transaction(Protocol):
    """The part of :class:`connector.database.pool.Transaction` that migrating needs."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None: ...


def apply_migrations(tx: _Transaction) -> int:
    """Apply, inside the caller's write transaction, every migration the database lacks; the
    numbers applied are rows of ``schema_version``. Returns the version reached."""
    tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = tx.one("SELECT max(version) AS v FROM schema_version")
    current = int(row["v"]) if row and row["v"] is not None else 0
    for index in range(current, len(MIGRATIONS)):
        for statement in migration_statements(index, tx.dialect):
            tx.execute(statement)
        tx.execute("INSERT INTO schema_version (version) VALUES (?)", (index + 1,))
    return len(MIGRATIONS)
