"""The store's schema, as numbered migrations applied in order (same tables on both back ends).

``{serial}`` becomes an auto-increment key and ``{blob}`` a text column suited to JSON on each
dialect; everything else is portable SQL.
"""

from __future__ import annotations

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
)

_DIALECT = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "TEXT"},
    "postgres": {"serial": "BIGSERIAL PRIMARY KEY", "blob": "TEXT"},
}


def migration_statements(index: int, dialect: str) -> list[str]:
    """The statements of migration ``index`` (0-based) for ``dialect``."""
    sql = MIGRATIONS[index].format(**_DIALECT[dialect])
    return [statement.strip() for statement in sql.split(";") if statement.strip()]
