"""The data plane's own tables, in the connector's database (same storage URL, same pool).

Their schema is migration 2 of :mod:`connector.database.migrations`.

* ``sluis_dp_tokens``: every access token issued, and whether it is still usable. Refresh is a
  compare-and-set from ``active`` to ``refreshed`` (a replayed refresh finds nothing to update);
  revocation flips every token of a transfer to ``revoked``.
* ``sluis_dp_proofs``: proof-of-possession ids seen, so each proof is used once, on any replica.
* ``sluis_dp_reads``: reads per counter key (``read_rules.read_counter``: a consumer and offer,
  or one agreement; the column keeps its historical name ``agreement_id``). A read is reserved
  with ``UPDATE ... SET reads = reads + 1 WHERE agreement_id = ? AND reads < ? RETURNING reads``:
  one statement, so twenty concurrent reads on several replicas can never exceed the limit.
* ``sluis_dp_read_keys``: the read number each HTTP push delivery's read got (its key), so a
  retried delivery is counted once. Keys are kept ``READ_KEY_RETENTION_SECONDS`` (a week; a
  push is retried for minutes) and pruned at most once a minute, so the table holds at most
  the push deliveries of that week. A delivery retried after its key went is counted again:
  the safe side of a read limit.
* ``sluis_dp_privacy``: differential-privacy budget spent per counter key, in millionths of
  epsilon (exact integers), spent the same way: one compare-and-set statement.
* ``sluis_dp_obligations``: duties of the agreement (delete within N days, notify on use, ...)
  with their due dates and state, shown to both sides.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.database import Database

ACTIVE, REFRESHED, REVOKED = "active", "refreshed", "revoked"
# Expired proof ids are swept at most this often (each sweep is one DELETE).
PROOF_SWEEP_INTERVAL_SECONDS = 60.0
# How long a push's read key is kept, and how often old ones are pruned (one DELETE each time).
READ_KEY_RETENTION_SECONDS = 7 * 24 * 3600.0
READ_KEY_SWEEP_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class Obligation:
    """One duty the consumer owes under an agreement, as both sides see it."""

    id: str
    agreement_id: str
    duty_uid: str
    consumer_id: str
    provider_id: str
    action: str
    description: str
    due_at: str | None
    status: str  # pending | fulfilled | recorded (notify-on-use: every use is recorded)
    uses: int
    created_at: str
    updated_at: str
    evidence: str | None

    def to_json(self, now: datetime) -> dict[str, Any]:
        overdue = (
            self.status == "pending" and self.due_at is not None
            and datetime.fromisoformat(self.due_at) < now
        )
        return {
            "id": self.id, "agreement_id": self.agreement_id, "duty": self.duty_uid,
            "consumer_id": self.consumer_id, "provider_id": self.provider_id, "action": self.action,
            "description": self.description, "due_at": self.due_at,
            "status": "overdue" if overdue else self.status, "uses": self.uses,
            "created_at": self.created_at, "updated_at": self.updated_at, "evidence": self.evidence,
        }


_OBLIGATION_COLUMNS = (
    "id, agreement_id, duty_uid, consumer_id, provider_id, action, description, due_at, status, uses,"
    " created_at, updated_at, evidence"
)


def _obligation(row: dict[str, Any]) -> Obligation:
    return Obligation(**{**row, "uses": int(row["uses"])})


class DataPlaneStore:
    """All data-plane state that must be shared by replicas lives behind this class."""

    def __init__(self, database: Database) -> None:
        self.db = database
        database.ensure_migrated()
        self._last_sweep = 0.0
        self._last_key_sweep = 0.0

    # --- tokens -------------------------------------------------------------------------------
    def record_token(self, jti: str, transfer_id: str, agreement_id: str, consumer_id: str,
                     expires_at: int) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO sluis_dp_tokens (jti, transfer_id, agreement_id, consumer_id, expires_at,"
                " status) VALUES (?, ?, ?, ?, ?, ?)",
                (jti, transfer_id, agreement_id, consumer_id, expires_at, ACTIVE),
            )

    def token_status(self, jti: str) -> str | None:
        with self.db.transaction(write=False) as tx:
            rows = tx.all("SELECT status FROM sluis_dp_tokens WHERE jti = ?", (jti,))
        return str(rows[0]["status"]) if rows else None

    def claim_refresh(self, jti: str) -> bool:
        """Compare-and-set ``active`` -> ``refreshed``; False when already refreshed or revoked."""
        with self.db.transaction() as tx:
            rows = tx.all(
                "UPDATE sluis_dp_tokens SET status = ? WHERE jti = ? AND status = ? RETURNING jti",
                (REFRESHED, jti, ACTIVE),
            )
        return bool(rows)

    def link_refresh(self, old_jti: str, new_jti: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE sluis_dp_tokens SET replaced_by = ? WHERE jti = ?", (new_jti, old_jti))

    def revoke_transfer(self, transfer_id: str) -> int:
        with self.db.transaction() as tx:
            rows = tx.all(
                "UPDATE sluis_dp_tokens SET status = ? WHERE transfer_id = ? AND status = ? RETURNING jti",
                (REVOKED, transfer_id, ACTIVE),
            )
        return len(rows)

    # --- proofs -------------------------------------------------------------------------------
    def remember_proof(self, jti: str, expires_at: int) -> bool:
        """Record a proof id; False if it was seen before (a replayed request)."""
        return self.remember_proof_and_status(jti, expires_at, None)[0]

    def remember_proof_and_status(self, jti: str, expires_at: int,
                                  token_jti: str | None) -> tuple[bool, str | None]:
        """Record a proof id (False if it was seen before: a replayed request) and, when the
        proof is fresh and ``token_jti`` is given, read that token's status - in one transaction,
        as every read does both."""
        now = time.time()
        with self.db.transaction() as tx:
            if now - self._last_sweep > PROOF_SWEEP_INTERVAL_SECONDS:
                self._last_sweep = now
                tx.execute("DELETE FROM sluis_dp_proofs WHERE expires_at < ?", (int(now),))
            rows = tx.all(
                "INSERT INTO sluis_dp_proofs (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING"
                " RETURNING jti",
                (jti, expires_at),
            )
            if not rows or token_jti is None:
                return bool(rows), None
            status = tx.all("SELECT status FROM sluis_dp_tokens WHERE jti = ?", (token_jti,))
        return True, str(status[0]["status"]) if status else None

    # --- read counters ------------------------------------------------------------------------
    def reads(self, agreement_id: str) -> int:
        with self.db.transaction(write=False) as tx:
            rows = tx.all("SELECT reads FROM sluis_dp_reads WHERE agreement_id = ?", (agreement_id,))
        return int(rows[0]["reads"]) if rows else 0

    def read_keys(self) -> int:
        """How many push read keys are kept (for tests and operators)."""
        with self.db.transaction(write=False) as tx:
            row = tx.one("SELECT count(*) AS n FROM sluis_dp_read_keys")
        return int(row["n"]) if row is not None else 0

    def keyed_read(self, key: str) -> int | None:
        """The number a read counted under ``key`` got, if one was (see :meth:`reserve_read`)."""
        with self.db.transaction(write=False) as tx:
            row = tx.one("SELECT read_number FROM sluis_dp_read_keys WHERE read_key = ?", (key,))
        return int(row["read_number"]) if row is not None and row["read_number"] is not None else None

    def reserve_read(self, agreement_id: str, limit: int | None, key: str | None = None,
                     now: float | None = None) -> int | None:
        """Count one more read, atomically; ``None`` when ``limit`` reads were already made.

        With ``key`` (one HTTP push), the read is counted the first time only: a retried or
        restarted push reads again under the same key and gets the number its first read got.
        Keys older than ``READ_KEY_RETENTION_SECONDS`` are pruned on the way (at most once a
        minute).
        """
        moment = time.time() if now is None else now
        with self.db.transaction() as tx:
            if key is not None and moment - self._last_key_sweep > READ_KEY_SWEEP_INTERVAL_SECONDS:
                self._last_key_sweep = moment
                tx.execute(
                    "DELETE FROM sluis_dp_read_keys WHERE created_at IS NULL OR created_at < ?",
                    (moment - READ_KEY_RETENTION_SECONDS,),
                )
            taken = key is not None and tx.execute(
                "INSERT INTO sluis_dp_read_keys (read_key, counter, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (read_key) DO NOTHING",
                (key, agreement_id, moment),
            ) == 0
            if taken:
                known = tx.one("SELECT read_number FROM sluis_dp_read_keys WHERE read_key = ?", (key,))
                if known is not None and known["read_number"] is not None:
                    return int(known["read_number"])
            tx.execute(
                "INSERT INTO sluis_dp_reads (agreement_id, reads) VALUES (?, 0)"
                " ON CONFLICT (agreement_id) DO NOTHING",
                (agreement_id,),
            )
            if limit is None:
                rows = tx.all(
                    "UPDATE sluis_dp_reads SET reads = reads + 1 WHERE agreement_id = ? RETURNING reads",
                    (agreement_id,),
                )
            else:
                rows = tx.all(
                    "UPDATE sluis_dp_reads SET reads = reads + 1 WHERE agreement_id = ? AND reads < ?"
                    " RETURNING reads",
                    (agreement_id, limit),
                )
            if key is not None:
                if rows:
                    tx.execute(
                        "UPDATE sluis_dp_read_keys SET read_number = ? WHERE read_key = ?",
                        (int(rows[0]["reads"]), key),
                    )
                else:
                    tx.execute("DELETE FROM sluis_dp_read_keys WHERE read_key = ?", (key,))
        return int(rows[0]["reads"]) if rows else None

    # --- differential-privacy budget ---------------------------------------------------------
    def privacy_spent(self, counter: str) -> int:
        """Budget spent under ``counter`` (millionths of epsilon)."""
        with self.db.transaction(write=False) as tx:
            rows = tx.all("SELECT spent FROM sluis_dp_privacy WHERE counter = ?", (counter,))
        return int(rows[0]["spent"]) if rows else 0

    def spend_privacy(self, counter: str, amount: int, budget: int) -> int | None:
        """Spend ``amount`` if the total stays within ``budget``, atomically; the new total, or
        ``None`` when it would not."""
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO sluis_dp_privacy (counter, spent) VALUES (?, 0)"
                " ON CONFLICT (counter) DO NOTHING",
                (counter,),
            )
            rows = tx.all(
                "UPDATE sluis_dp_privacy SET spent = spent + ? WHERE counter = ? AND spent + ? <= ?"
                " RETURNING spent",
                (amount, counter, amount, budget),
            )
        return int(rows[0]["spent"]) if rows else None

    # --- obligations --------------------------------------------------------------------------
    def track_obligation(self, agreement_id: str, duty_uid: str, consumer_id: str, provider_id: str,
                         action: str, description: str, due_at: datetime | None, per_use: bool,
                         now: datetime) -> None:
        """Create the obligation on first use; count every use (notify-on-use duties)."""
        stamp = now.astimezone(UTC).isoformat(timespec="seconds")
        due = due_at.astimezone(UTC).isoformat(timespec="seconds") if due_at else None
        status = "recorded" if per_use else "pending"
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO sluis_dp_obligations ({_OBLIGATION_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, NULL) ON CONFLICT (agreement_id, duty_uid) DO NOTHING",
                (str(uuid.uuid4()), agreement_id, duty_uid, consumer_id, provider_id, action, description,
                 due, status, stamp, stamp),
            )
            tx.execute(
                "UPDATE sluis_dp_obligations SET uses = uses + 1, updated_at = ?"
                " WHERE agreement_id = ? AND duty_uid = ?",
                (stamp, agreement_id, duty_uid),
            )

    def obligations(
        self, agreement_id: str | None = None, consumer_id: str | None = None
    ) -> list[Obligation]:
        clauses, params = [], []
        if agreement_id is not None:
            clauses.append("agreement_id = ?")
            params.append(agreement_id)
        if consumer_id is not None:
            clauses.append("consumer_id = ?")
            params.append(consumer_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                f"SELECT {_OBLIGATION_COLUMNS} FROM sluis_dp_obligations{where} ORDER BY created_at, id",
                params,
            )
        return [_obligation(row) for row in rows]

    def fulfil_obligation(self, obligation_id: str, agreement_id: str, evidence: str, now: datetime) -> bool:
        stamp = now.astimezone(UTC).isoformat(timespec="seconds")
        with self.db.transaction() as tx:
            rows = tx.all(
                "UPDATE sluis_dp_obligations SET status = 'fulfilled', evidence = ?, updated_at = ?"
                " WHERE id = ? AND agreement_id = ? AND status = 'pending' RETURNING id",
                (json.dumps({"note": evidence}), stamp, obligation_id, agreement_id),
            )
        return bool(rows)
