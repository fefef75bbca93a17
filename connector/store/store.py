"""The connector's persistence: assets, policies, processes, agreements, messages, outbox, jti.

Every state change is a compare-and-set on the process's ``version``: the update only applies if
nobody advanced the process since it was read, so two replicas on one PostgreSQL can never both
advance it. A state change, the message that caused it, the agreement it produced and the
messages it must send (the outbox) are written in one transaction; a crash leaves either all of
it or none. The outbox is claimed with a lease, so work a killed process had claimed is picked
up again after restart (or by another replica) once the lease runs out.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from connector.database import Database, Transaction
from connector.dataplane.contract_state import AgreementView, AssetData, TransferView
from connector.store.replay import DeferredReplay, TokenReplayed, pending_replay

#: An outbox lease: a worker that claimed a message and died releases it after this long.
OUTBOX_LEASE_SECONDS = 10.0
#: Due messages one claim looks at (and lease ids one renewal names) at most.
MAX_CLAIM_LOOKAHEAD = 256
#: Expired jti entries are purged at most this often (the table would otherwise only grow).
REPLAY_PURGE_INTERVAL_SECONDS = 60.0
#: A peer's pid longer than this in a delivery's acknowledgement is not learnt (ours are UUID URNs).
MAX_PEER_PID_CHARS = 512


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def new_pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass(frozen=True)
class AssetRecord:
    id: str
    title: str
    dataset: dict[str, Any]
    data_kind: str
    data_path: str
    data_table: str | None = None


@dataclass(frozen=True)
class ContractDefinition:
    id: str
    access_policy_id: str
    contract_policy_id: str
    asset_ids: tuple[str, ...]


@dataclass(frozen=True)
class ProcessRecord:
    """A negotiation or transfer as one side sees it; ``id`` is our own pid for it."""

    id: str
    kind: str  # "negotiation" | "transfer"
    role: str  # our role: "provider" | "consumer"
    state: str
    version: int
    counterparty_id: str
    counterparty_address: str  # DSP base (consumer's view) or callback address (provider's view)
    provider_pid: str | None = None
    consumer_pid: str | None = None
    agreement_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class AgreementRecord:
    id: str
    negotiation_id: str
    provider_id: str
    consumer_id: str
    asset_id: str
    agreement: dict[str, Any]
    terminated: bool = False


@dataclass(frozen=True)
class OutboundMessage:
    """A DSP message to deliver: where, to whom (token audience), and the body; the correlation
    id and W3C ``traceparent`` of the step that queued it (filled in by the process writer)."""

    url: str
    audience: str
    body: dict[str, Any]
    correlation_id: str | None = None
    traceparent: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    process_id: str
    url: str
    audience: str
    body: dict[str, Any]
    attempts: int
    #: Who the delivery is for (the process's counter-party): the outbox caps senders per peer.
    peer: str = ""
    correlation_id: str | None = None
    traceparent: str | None = None


@dataclass(frozen=True)
class LoggedMessage:
    direction: str
    type: str
    body: dict[str, Any]


def _process(row: Mapping[str, Any]) -> ProcessRecord:
    return ProcessRecord(
        id=row["id"],
        kind=row["kind"],
        role=row["role"],
        state=row["state"],
        version=int(row["version"]),
        counterparty_id=row["counterparty_id"],
        counterparty_address=row["counterparty_address"],
        provider_pid=row["provider_pid"],
        consumer_pid=row["consumer_pid"],
        agreement_id=row["agreement_id"],
        details=json.loads(row["details_json"]),
        error=row["error"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def _agreement(row: Mapping[str, Any]) -> AgreementRecord:
    return AgreementRecord(
        id=row["id"],
        negotiation_id=row["negotiation_id"],
        provider_id=row["provider_id"],
        consumer_id=row["consumer_id"],
        asset_id=row["asset_id"],
        agreement=json.loads(row["agreement_json"]),
        terminated=bool(row["terminated"]),
    )


class Store:
    """All persistent state of one connector; thread-safe, shareable between replicas (PostgreSQL).

    Also the data plane's :class:`~connector.dataplane.contract_state.ContractState` and the
    identity layer's ``ReplayGuard``.
    """

    def __init__(self, url: str, *, relative_to: Path | None = None, data_root: Path | None = None) -> None:
        self.db = Database(url, relative_to)
        self.data_root = data_root
        self._last_replay_purge = 0.0
        self._agreement_changes = 0

    @property
    def agreement_changes(self) -> int:
        """How often this process changed an agreement (concluded, re-documented, terminated).

        Caches of what agreements say (the public transparency register) compare it to drop
        what they built before a change made here at once; changes made by another replica
        reach them through their own refresh bound.
        """
        return self._agreement_changes

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def close(self) -> None:
        self.db.close()

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Bring the schema of every table up to date (see :mod:`connector.database.migrations`);
        safe to run from several processes at once. Returns the version."""
        return self.db.migrate()

    # -- assets, policies, contract definitions -------------------------------------------------

    def put_asset(self, asset: AssetRecord) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM assets WHERE id = ?", (asset.id,))
            tx.execute(
                "INSERT INTO assets (id, title, dataset_json, data_kind, data_path, data_table, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    asset.id,
                    asset.title,
                    _dumps(asset.dataset),
                    asset.data_kind,
                    asset.data_path,
                    asset.data_table,
                    time.time(),
                ),
            )

    def get_asset(self, asset_id: str) -> AssetRecord | None:
        with self.db.transaction(write=False) as tx:
            row = tx.one("SELECT * FROM assets WHERE id = ?", (asset_id,))
        if row is None:
            return None
        return AssetRecord(
            row["id"],
            row["title"],
            json.loads(row["dataset_json"]),
            row["data_kind"],
            row["data_path"],
            row["data_table"],
        )

    def put_policy(self, policy_id: str, policy: Mapping[str, Any]) -> None:
        with self.db.transaction() as tx:
            updated = tx.execute(
                "UPDATE policies SET policy_json = ? WHERE id = ?", (_dumps(policy), policy_id)
            )
            if not updated:
                tx.execute(
                    "INSERT INTO policies (id, policy_json, created_at) VALUES (?, ?, ?)",
                    (policy_id, _dumps(policy), time.time()),
                )

    def get_policy(self, policy_id: str) -> dict[str, Any] | None:
        with self.db.transaction(write=False) as tx:
            row = tx.one("SELECT policy_json FROM policies WHERE id = ?", (policy_id,))
        return None if row is None else dict(json.loads(row["policy_json"]))

    def put_contract_definition(self, definition: ContractDefinition) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM contract_definitions WHERE id = ?", (definition.id,))
            tx.execute(
                "INSERT INTO contract_definitions (id, access_policy_id, contract_policy_id, asset_ids_json, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    definition.id,
                    definition.access_policy_id,
                    definition.contract_policy_id,
                    _dumps(list(definition.asset_ids)),
                    time.time(),
                ),
            )

    def contract_definitions(self) -> list[ContractDefinition]:
        with self.db.transaction(write=False) as tx:
            rows = tx.all("SELECT * FROM contract_definitions ORDER BY id")
        return [
            ContractDefinition(
                r["id"],
                r["access_policy_id"],
                r["contract_policy_id"],
                tuple(json.loads(r["asset_ids_json"])),
            )
            for r in rows
        ]

    # -- processes ----------------------------------------------------------------------------

    def _log(self, tx: Transaction, process_id: str, messages: Sequence[LoggedMessage], now: float) -> None:
        for message in messages:
            tx.execute(
                "INSERT INTO messages (process_id, direction, type, body_json, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (process_id, message.direction, message.type, _dumps(message.body), now),
            )

    def _enqueue(
        self,
        tx: Transaction,
        process_id: str,
        outbox: Sequence[OutboundMessage],
        now: float,
        claim_for: str | None = None,
        claimed: list[OutboxItem] | None = None,
    ) -> None:
        """Queue ``outbox``; with ``claim_for``, lease the first message to that worker at once.

        The lease is taken only when no earlier message of the process is still pending (order
        per process is kept), so the caller can deliver it right after the commit instead of
        waiting for the worker to find it.
        """
        lease = claim_for is not None and claimed is not None and bool(outbox)
        if lease:
            earlier = tx.one(
                "SELECT id FROM outbox WHERE process_id = ? AND delivered_at IS NULL "
                "AND failed_reason IS NULL LIMIT 1",
                (process_id,),
            )
            lease = earlier is None
        for index, item in enumerate(outbox):
            body = _dumps(item.body)
            if lease and index == 0 and claimed is not None:
                row = tx.one(
                    "INSERT INTO outbox (process_id, url, audience, body_json, next_attempt_at, created_at, "
                    "correlation_id, traceparent, claimed_by, claimed_until) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        process_id, item.url, item.audience, body, now, now, item.correlation_id,
                        item.traceparent, claim_for, now + OUTBOX_LEASE_SECONDS,
                    ),
                )
                assert row is not None
                leased = OutboxItem(
                    int(row["id"]), process_id, item.url, item.audience, item.body, 0,
                    correlation_id=item.correlation_id, traceparent=item.traceparent,
                )
                claimed.append(replace(leased, peer=item.audience))
                continue
            tx.execute(
                "INSERT INTO outbox (process_id, url, audience, body_json, next_attempt_at, created_at, "
                "correlation_id, traceparent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (process_id, item.url, item.audience, body, now, now, item.correlation_id, item.traceparent),
            )

    def create_process(
        self,
        record: ProcessRecord,
        messages: Sequence[LoggedMessage] = (),
        outbox: Sequence[OutboundMessage] = (),
        agreement: AgreementRecord | None = None,
        *,
        claim_for: str | None = None,
        claimed: list[OutboxItem] | None = None,
        once_per_consumer_pid: bool = False,
    ) -> ProcessRecord:
        """Insert a new process with the message that created it and what it must send next.

        ``claim_for``/``claimed``: see :meth:`_enqueue` (the first message is leased and appended).
        ``once_per_consumer_pid``: a provider's process for a consumer's initial request - when
        that consumer already has one with this consumer pid (copies of one request handled at
        once), nothing is written and that process is returned (its id is not ``record.id``).
        The look and the insert are one transaction, serialised per consumer pid on PostgreSQL
        (SQLite has one writer at a time).
        """
        now = time.time()
        stored = replace(record, version=1, created_at=now, updated_at=now)
        with self.db.transaction() as tx:
            if once_per_consumer_pid:
                found = self._provider_process_in(tx, record)
                if found is not None:
                    return found
            tx.execute(
                "INSERT INTO processes (id, kind, role, state, version, provider_pid, consumer_pid, "
                "counterparty_id, counterparty_address, agreement_id, details_json, error, "
                "created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stored.id,
                    stored.kind,
                    stored.role,
                    stored.state,
                    stored.version,
                    stored.provider_pid,
                    stored.consumer_pid,
                    stored.counterparty_id,
                    stored.counterparty_address,
                    stored.agreement_id,
                    _dumps(stored.details),
                    stored.error,
                    now,
                    now,
                ),
            )
            if agreement is not None:
                self._put_agreement(tx, agreement, now)
            self._log(tx, stored.id, messages, now)
            self._enqueue(tx, stored.id, outbox, now, claim_for, claimed)
            pending = self._remember_pending_jti(tx, now)
        if pending is not None:
            pending.recorded = True
        if agreement is not None:
            self._agreement_changes += 1
        return stored

    def get_process(self, process_id: str, kind: str | None = None) -> ProcessRecord | None:
        with self.db.transaction(write=False) as tx:
            row = tx.one("SELECT * FROM processes WHERE id = ?", (process_id,))
        if row is None or (kind is not None and row["kind"] != kind):
            return None
        return _process(row)

    @staticmethod
    def _provider_process_in(tx: Transaction, record: ProcessRecord) -> ProcessRecord | None:
        if tx.dialect == "postgres":
            key = f"{record.kind}\n{record.counterparty_id}\n{record.consumer_pid}".encode()
            lock = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big", signed=True)
            tx.execute("SELECT pg_advisory_xact_lock(?)", (lock,))
        row = tx.one(
            "SELECT * FROM processes WHERE kind = ? AND role = 'provider' AND counterparty_id = ? "
            "AND consumer_pid = ?",
            (record.kind, record.counterparty_id, record.consumer_pid),
        )
        return None if row is None else _process(row)

    def find_provider_process(
        self, kind: str, counterparty_id: str, consumer_pid: str
    ) -> ProcessRecord | None:
        """The process a consumer already created with this pid (a re-delivered initial request)."""
        with self.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT * FROM processes WHERE kind = ? AND role = 'provider' AND counterparty_id = ? "
                "AND consumer_pid = ?",
                (kind, counterparty_id, consumer_pid),
            )
        return None if row is None else _process(row)

    def list_processes(self, kind: str) -> list[ProcessRecord]:
        with self.db.transaction(write=False) as tx:
            rows = tx.all("SELECT * FROM processes WHERE kind = ? ORDER BY created_at", (kind,))
        return [_process(row) for row in rows]

    def processes_for_agreement(self, agreement_id: str) -> list[ProcessRecord]:
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT * FROM processes WHERE kind = 'transfer' AND agreement_id = ? ORDER BY created_at",
                (agreement_id,),
            )
        return [_process(row) for row in rows]

    def advance(
        self,
        current: ProcessRecord,
        state: str,
        *,
        changes: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
        messages: Sequence[LoggedMessage] = (),
        outbox: Sequence[OutboundMessage] = (),
        agreement: AgreementRecord | None = None,
        claim_for: str | None = None,
        claimed: list[OutboxItem] | None = None,
    ) -> ProcessRecord | None:
        """Compare-and-set: move ``current`` to ``state`` only if nobody moved it since it was read.

        Returns the new record, or ``None`` when another writer won (nothing was written).
        ``changes`` may set ``provider_pid``, ``consumer_pid``, ``agreement_id``, ``error`` or
        ``counterparty_address``; ``details`` is merged into the process's details.
        """
        allowed = {"provider_pid", "consumer_pid", "agreement_id", "error", "counterparty_address"}
        changes = dict(changes or {})
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        merged = {**current.details, **(details or {})}
        updated = replace(current, state=state, version=current.version + 1, details=merged, **changes)
        now = time.time()
        with self.db.transaction() as tx:
            count = tx.execute(
                "UPDATE processes SET state = ?, version = ?, provider_pid = ?, consumer_pid = ?, "
                "agreement_id = ?, error = ?, counterparty_address = ?, details_json = ?, updated_at = ? "
                "WHERE id = ? AND version = ?",
                (
                    updated.state,
                    updated.version,
                    updated.provider_pid,
                    updated.consumer_pid,
                    updated.agreement_id,
                    updated.error,
                    updated.counterparty_address,
                    _dumps(merged),
                    now,
                    current.id,
                    current.version,
                ),
            )
            if count != 1:
                return None
            if agreement is not None:
                self._put_agreement(tx, agreement, now)
            self._log(tx, current.id, messages, now)
            self._enqueue(tx, current.id, outbox, now, claim_for, claimed)
            pending = self._remember_pending_jti(tx, now)
        if pending is not None:
            pending.recorded = True
        if agreement is not None:
            self._agreement_changes += 1  # after the commit: a rebuild now sees the agreement
        return replace(updated, updated_at=now)

    @staticmethod
    def _put_agreement(tx: Transaction, agreement: AgreementRecord, now: float) -> None:
        tx.execute(
            "INSERT INTO agreements (id, negotiation_id, provider_id, consumer_id, asset_id, agreement_json, "
            "terminated, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            # only the same negotiation's agreement is updated (a counter-signature added):
            # never another negotiation's under an id a peer chose
            "agreement_json = excluded.agreement_json "
            "WHERE agreements.negotiation_id = excluded.negotiation_id",
            (
                agreement.id,
                agreement.negotiation_id,
                agreement.provider_id,
                agreement.consumer_id,
                agreement.asset_id,
                _dumps(agreement.agreement),
                int(agreement.terminated),
                now,
            ),
        )

    def messages_of(self, process_id: str) -> list[LoggedMessage]:
        with self.db.transaction(write=False) as tx:
            rows = tx.all("SELECT * FROM messages WHERE process_id = ? ORDER BY id", (process_id,))
        return [LoggedMessage(r["direction"], r["type"], json.loads(r["body_json"])) for r in rows]

    # -- agreements -------------------------------------------------------------------------

    def get_agreement(self, agreement_id: str) -> AgreementRecord | None:
        with self.db.transaction(write=False) as tx:
            row = tx.one("SELECT * FROM agreements WHERE id = ?", (agreement_id,))
        return None if row is None else _agreement(row)

    # -- paged listings (the management API) ----------------------------------------------------

    def _page(
        self, table: str, where: Mapping[str, Any], limit: int, offset: int, search: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Rows of ``table`` matching every ``where`` column (names from code, never input) and,
        with ``search``, containing it in ``id`` (or ``title``), oldest first; and how many match."""
        clauses = [f"{column} = ?" for column in where]
        params: list[Any] = list(where.values())
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            columns = ["id", "title"] if table == "assets" else ["id"]
            clauses.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
            params.extend(pattern for _ in columns)
        condition = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.db.transaction(write=False) as tx:
            total = tx.one(f"SELECT count(*) AS n FROM {table}{condition}", tuple(params))
            rows = tx.all(
                f"SELECT * FROM {table}{condition} ORDER BY created_at, id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
        return rows, int(total["n"]) if total else 0

    def page_processes(
        self, kind: str, where: Mapping[str, Any], limit: int, offset: int, search: str | None = None
    ) -> tuple[list[ProcessRecord], int]:
        rows, total = self._page("processes", {"kind": kind, **where}, limit, offset, search)
        return [_process(row) for row in rows], total

    def page_agreements(
        self, where: Mapping[str, Any], limit: int, offset: int, search: str | None = None
    ) -> tuple[list[AgreementRecord], int]:
        rows, total = self._page("agreements", where, limit, offset, search)
        return [_agreement(row) for row in rows], total

    def page_assets(
        self, limit: int, offset: int, search: str | None = None
    ) -> tuple[list[AssetRecord], int]:
        rows, total = self._page("assets", {}, limit, offset, search)
        assets = [
            AssetRecord(
                row["id"],
                row["title"],
                json.loads(row["dataset_json"]),
                row["data_kind"],
                row["data_path"],
                row["data_table"],
            )
            for row in rows
        ]
        return assets, total

    def page_policies(
        self, limit: int, offset: int, search: str | None = None
    ) -> tuple[list[tuple[str, dict[str, Any]]], int]:
        rows, total = self._page("policies", {}, limit, offset, search)
        return [(row["id"], dict(json.loads(row["policy_json"]))) for row in rows], total

    def list_agreements(self) -> list[AgreementRecord]:
        with self.db.transaction(write=False) as tx:
            rows = tx.all("SELECT * FROM agreements ORDER BY created_at")
        return [_agreement(row) for row in rows]

    def update_agreement_document(self, agreement_id: str, document: Mapping[str, Any]) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE agreements SET agreement_json = ? WHERE id = ?", (_dumps(document), agreement_id)
            )
        self._agreement_changes += 1

    def terminate_agreement(self, agreement_id: str) -> bool:
        """Mark an agreement terminated; True if it was in force until now."""
        with self.db.transaction() as tx:
            ended = (
                tx.execute(
                    "UPDATE agreements SET terminated = 1 WHERE id = ? AND terminated = 0", (agreement_id,)
                )
                == 1
            )
        if ended:
            self._agreement_changes += 1
        return ended

    # -- outbox -----------------------------------------------------------------------------

    def claim_outbox(
        self,
        worker: str,
        limit: int = 32,
        now: float | None = None,
        *,
        per_peer: int | None = None,
        busy: Mapping[str, int] | None = None,
    ) -> list[OutboxItem]:
        """Lease the oldest due message of each process (per-process order is kept).

        ``per_peer`` caps how many messages one peer (the process's counter-party) may hold
        leased by this worker, counting ``busy`` (what the worker already sends per peer): a
        peer at its cap is left out of the query, so a peer with thousands of due messages
        cannot fill every sender while other peers wait.
        """
        now = time.time() if now is None else now
        busy = dict(busy or {})
        full = sorted(peer for peer, n in busy.items() if per_peer is not None and n >= per_peer)
        exclude = f" AND COALESCE(pr.counterparty_id, o.audience) NOT IN ({', '.join('?' * len(full))})"
        due_sql = (
            "SELECT o.*, COALESCE(pr.counterparty_id, o.audience) AS peer FROM outbox o "
            "LEFT JOIN processes pr ON pr.id = o.process_id "
            "WHERE o.delivered_at IS NULL AND o.failed_reason IS NULL "
            "AND o.next_attempt_at <= ? AND (o.claimed_until IS NULL OR o.claimed_until < ?) "
            "AND o.id = (SELECT min(p.id) FROM outbox p WHERE p.process_id = o.process_id "
            "AND p.delivered_at IS NULL AND p.failed_reason IS NULL)"
            + (exclude if full else "")
            + " ORDER BY o.id LIMIT ?"
        )
        # look before taking the write lock: most passes find nothing to do
        with self.db.transaction(write=False) as tx:
            if tx.one(due_sql, (now, now, *full, 1)) is None:
                return []
        # with a cap, look further than ``limit`` rows: the first ones may all be one peer's
        fetch = limit if per_peer is None else min(limit * 4, MAX_CLAIM_LOOKAHEAD)
        with self.db.transaction() as tx:
            rows = tx.all(due_sql, (now, now, *full, fetch))
            claimed: list[OutboxItem] = []
            for row in rows:
                if len(claimed) >= limit:
                    break
                peer = str(row["peer"])
                if per_peer is not None and busy.get(peer, 0) >= per_peer:
                    continue
                won = tx.execute(
                    "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ? "
                    "AND (claimed_until IS NULL OR claimed_until < ?)",
                    (worker, now + OUTBOX_LEASE_SECONDS, row["id"], now),
                )
                if won == 1:
                    busy[peer] = busy.get(peer, 0) + 1
                    claimed.append(
                        OutboxItem(
                            int(row["id"]),
                            row["process_id"],
                            row["url"],
                            row["audience"],
                            json.loads(row["body_json"]),
                            int(row["attempts"]),
                            peer,
                            correlation_id=row["correlation_id"],
                            traceparent=row["traceparent"],
                        )
                    )
        return claimed

    def renew_outbox_leases(self, worker: str, item_ids: Sequence[int], now: float | None = None) -> set[int]:
        """Extend this worker's leases on ``item_ids`` (still its own and undelivered) by a full
        lease; the ids it still holds. A sender whose message outlives one lease (a large push,
        a slow peer) keeps it this way, so no other worker takes it up and sends it again."""
        if not item_ids:
            return set()
        now = time.time() if now is None else now
        held: set[int] = set()
        with self.db.transaction() as tx:
            for start in range(0, len(item_ids), MAX_CLAIM_LOOKAHEAD):
                chunk = list(item_ids[start : start + MAX_CLAIM_LOOKAHEAD])
                marks = ", ".join("?" * len(chunk))
                rows = tx.all(
                    f"UPDATE outbox SET claimed_until = ? WHERE claimed_by = ? AND id IN ({marks}) "
                    "AND delivered_at IS NULL AND failed_reason IS NULL AND claimed_until IS NOT NULL "
                    "RETURNING id",
                    (now + OUTBOX_LEASE_SECONDS, worker, *chunk),
                )
                held.update(int(row["id"]) for row in rows)
        return held

    def _settle(self, tx: Transaction, sql: str, params: tuple[Any, ...], worker: str | None) -> bool:
        """Record an outcome; with ``worker``, only while that worker still holds the lease (a
        worker whose lease ran out and was taken up by another records nothing: fencing)."""
        if worker is not None:
            sql += " AND claimed_by = ? AND delivered_at IS NULL AND failed_reason IS NULL"
            params = (*params, worker)
        return tx.execute(sql, params) == 1

    def outbox_delivered(
        self,
        item_id: int,
        response: LoggedMessage | None = None,
        *,
        worker: str | None = None,
        ack: Mapping[str, Any] | None = None,
    ) -> bool:
        """Mark a message delivered (fenced to ``worker``'s lease, see :meth:`_settle`); with the
        peer's ``ack`` (its ``ContractNegotiation`` or ``TransferProcess`` answer) also learn the
        peer's pid for the process, if still unknown, in the same transaction - one write per
        delivery instead of two."""
        return self.outbox_delivered_next(item_id, None, worker=worker, ack=ack)[0]

    def outbox_delivered_next(
        self,
        item_id: int,
        process_id: str | None,
        *,
        worker: str | None = None,
        ack: Mapping[str, Any] | None = None,
    ) -> tuple[bool, bool]:
        """:meth:`outbox_delivered`, and (given the item's ``process_id``) whether another message
        of that process is still pending: a message queued behind this one is the outbox worker's
        to send, and only then does the sender wake it.

        The pending message is looked for after the commit, not inside the transaction: a step
        queueing a message behind this one while it is being marked delivered (concurrent
        transactions on PostgreSQL) does not lease its message - this one is still pending for
        it - and would not be seen inside; after the commit it is seen, or it was queued after
        this delivery and leased at its own commit, or found by the worker it woke."""
        now = time.time()
        with self.db.transaction() as tx:
            settled = self._settle(
                tx,
                "UPDATE outbox SET delivered_at = ?, claimed_until = NULL WHERE id = ?",
                (now, item_id),
                worker,
            )
            if settled and ack is not None:
                if process_id is None:
                    row = tx.one("SELECT process_id FROM outbox WHERE id = ?", (item_id,))
                    process_id = None if row is None else str(row["process_id"])
                if process_id is not None:
                    self._learn_peer_pid(tx, process_id, ack, now)
        if not settled or process_id is None:
            return settled, False
        with self.db.transaction(write=False) as tx:
            pending = tx.one(
                "SELECT id FROM outbox WHERE process_id = ? AND delivered_at IS NULL "
                "AND failed_reason IS NULL LIMIT 1",
                (process_id,),
            )
        return settled, pending is not None

    @staticmethod
    def _learn_peer_pid(tx: Transaction, process_id: str, ack: Mapping[str, Any], now: float) -> None:
        """Set the peer's pid named in ``ack`` where the process does not know it yet; the version
        moves, so a compare-and-set planned from the older row plans again (it would otherwise
        write the pid back to NULL)."""
        peers = (("consumer", "provider_pid", "providerPid"), ("provider", "consumer_pid", "consumerPid"))
        for role, column, member in peers:
            value = ack.get(member)
            if not isinstance(value, str) or not value or len(value) > MAX_PEER_PID_CHARS:
                continue
            tx.execute(
                f"UPDATE processes SET {column} = ?, version = version + 1, updated_at = ? "
                f"WHERE id = ? AND role = ? AND {column} IS NULL",
                (value, now, process_id, role),
            )

    def outbox_replace_body(self, item_id: int, body: Mapping[str, Any]) -> None:
        """Replace what a settled message is kept as (a credential it carried, once sent, goes)."""
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET body_json = ? WHERE id = ? "
                "AND (delivered_at IS NOT NULL OR failed_reason IS NOT NULL)",
                (_dumps(body), item_id),
            )

    def outbox_retry(
        self, item_id: int, attempts: int, next_attempt_at: float, reason: str, *, worker: str | None = None
    ) -> bool:
        with self.db.transaction() as tx:
            return self._settle(
                tx,
                "UPDATE outbox SET attempts = ?, next_attempt_at = ?, claimed_until = NULL WHERE id = ?",
                (attempts, next_attempt_at, item_id),
                worker,
            )

    def outbox_failed(self, item_id: int, reason: str, *, worker: str | None = None) -> bool:
        with self.db.transaction() as tx:
            return self._settle(
                tx,
                "UPDATE outbox SET failed_reason = ?, claimed_until = NULL WHERE id = ?",
                (reason[:1000], item_id),
                worker,
            )

    def outbox_pending(self) -> int:
        with self.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT count(*) AS n FROM outbox WHERE delivered_at IS NULL AND failed_reason IS NULL"
            )
        return int(row["n"]) if row else 0

    def process_counts(self) -> list[tuple[str, str, str, int]]:
        """``(kind, role, state, count)`` of every process (for metrics)."""
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT kind, role, state, count(*) AS n FROM processes GROUP BY kind, role, state"
            )
        return [(row["kind"], row["role"], row["state"], int(row["n"])) for row in rows]

    def outbox_counts(self) -> dict[str, float]:
        """Outbox figures for metrics: pending, retrying (pending after a failed attempt), failed,
        delivered, and the attempts spent on messages not yet delivered (retries so far)."""
        with self.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT "
                "sum(CASE WHEN delivered_at IS NULL AND failed_reason IS NULL THEN 1 ELSE 0 END) AS pending, "
                "sum(CASE WHEN delivered_at IS NULL AND failed_reason IS NULL AND attempts > 0 "
                "THEN 1 ELSE 0 END) AS retrying, "
                "sum(CASE WHEN failed_reason IS NOT NULL THEN 1 ELSE 0 END) AS failed, "
                "sum(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END) AS delivered, "
                "sum(attempts) AS attempts, min(CASE WHEN delivered_at IS NULL AND failed_reason IS NULL "
                "AND (claimed_until IS NULL OR claimed_until < ?) THEN next_attempt_at END) AS oldest_due "
                "FROM outbox",
                (time.time(),),
            )
        names = ("pending", "retrying", "failed", "delivered", "attempts", "oldest_due")
        return {name: float(row[name] or 0) if row else 0.0 for name in names}

    def next_outbox_due(self) -> float | None:
        with self.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT min(next_attempt_at) AS t FROM outbox WHERE delivered_at IS NULL "
                "AND failed_reason IS NULL AND (claimed_until IS NULL OR claimed_until < ?)",
                (time.time(),),
            )
        return None if row is None or row["t"] is None else float(row["t"])

    # -- replay guard (identity's ReplayGuard protocol) -----------------------------------------

    def check_and_remember(self, jti: str, expires_at: datetime | float | int) -> bool:
        """True the first time a token id is seen; False for a replay. Shared by all replicas."""
        expiry = expires_at.timestamp() if isinstance(expires_at, datetime) else float(expires_at)
        with self.db.transaction() as tx:
            return self._remember_jti(tx, jti, expiry, time.time())

    def _remember_jti(self, tx: Transaction, jti: str, expiry: float, now: float) -> bool:
        if now - self._last_replay_purge > REPLAY_PURGE_INTERVAL_SECONDS:
            self._last_replay_purge = now
            tx.execute("DELETE FROM replay_guard WHERE expires_at < ?", (now,))
        return (
            tx.execute(
                "INSERT INTO replay_guard (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
                (jti, expiry),
            )
            == 1
        )

    def _remember_pending_jti(self, tx: Transaction, now: float) -> DeferredReplay | None:
        """Record the token id of the request this write belongs to (see :mod:`connector.store.replay`)
        in the write's own transaction; a replay rolls the write back."""
        pending = pending_replay()
        if pending is None or pending.jti is None:
            return None
        if not self._remember_jti(tx, pending.jti, pending.expires_at, now):
            raise TokenReplayed(f"the token id {pending.jti} was already used")
        return pending

    # -- the data plane's ContractState ---------------------------------------------------------

    def transfer(self, transfer_id: str) -> TransferView | None:
        record = self.get_process(transfer_id, "transfer")
        if record is None or record.role != "provider":
            return None
        details = record.details
        return TransferView(
            id=record.id,
            state=record.state,
            agreement_id=record.agreement_id or "",
            consumer_id=record.counterparty_id,
            provider_id=str(details.get("provider_id", "")),
            asset_id=str(details.get("asset_id", "")),
            job_id=details.get("job_id"),
            purpose=details.get("purpose"),
            compute_site=details.get("compute_site"),
            correlation_id=details.get("correlation_id"),
        )

    def agreement(self, agreement_id: str) -> AgreementView | None:
        record = self.get_agreement(agreement_id)
        if record is None:
            return None
        return AgreementView(
            id=record.id,
            policy=record.agreement,
            terminated=record.terminated,
            consumer_id=record.consumer_id,
            provider_id=record.provider_id,
            asset_id=record.asset_id,
        )

    def asset_data(self, asset_id: str) -> AssetData | None:
        asset = self.get_asset(asset_id)
        if asset is None:
            return None
        path = Path(asset.data_path)
        if not path.is_absolute() and self.data_root is not None:
            path = self.data_root / path
        return AssetData(kind=asset.data_kind, path=str(path), table=asset.data_table)
