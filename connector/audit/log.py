"""The stored audit log: an append-only, hash-chained, signed table in the connector's database.

Appends are serialised (one exclusive transaction reads the head and inserts the next entry),
so concurrent reads on several replicas still produce one linear chain. Appends that arrive
while another is being written are **group-committed**: the next writer takes every entry
waiting and seals and inserts them, in arrival order, in one transaction - one commit (one
``fsync`` on PostgreSQL) for many reads. Each entry is still sealed and signed on its own, so
the chain is exactly what one-by-one appends would give, and ``append`` returns only once its
own entry is committed: a read's stream still ends after its entry is in the log. The table is ours
(``sluis_audit_entries``, migration 2 of :mod:`connector.database.migrations`), next to the
connector's own tables under the same storage URL and in the same pool.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from connector.audit.chain import GENESIS_HASH, AuditEntry, ChainReport, Verifier, seal, verify_chain
from connector.database import Database

_log = logging.getLogger(__name__)

# Entries fetched per round trip when iterating a log (memory stays flat for long logs).
PAGE_SIZE = 1000
# A body is a handful of identifiers, counts and a decision summary; a bigger one is a bug.
MAX_BODY_BYTES = 64 * 1024

_COLUMNS = "seq, prev_hash, body_hash, entry_hash, signature, signer, body"


class Signer(Protocol):
    """What signs entries: the provider's participant key (``connector.identity.KeyPair`` fits)."""

    def sign(self, message: bytes) -> bytes: ...


def _row_to_entry(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        int(row["seq"]), row["prev_hash"], row["body_hash"], row["entry_hash"], row["signature"],
        row["signer"], json.loads(row["body"]),
    )


@dataclass
class _Pending:
    """An entry waiting to be written: its body and JSON text, then its sealed entry (or why not)."""

    record: dict[str, Any]
    text: str
    entry: AuditEntry | None = None
    error: BaseException | None = None


class AuditLog:
    """Append and read the chain. ``signer_id`` names the key (a DID verification method)."""

    def __init__(self, database: Database, key: Signer | None = None, signer_id: str = "") -> None:
        self._db = database
        self._key = key
        self._signer_id = signer_id
        self._waiting: list[_Pending] = []
        self._waiting_lock = threading.Lock()
        self._writer = threading.Lock()  # one group commit at a time in this process
        database.ensure_migrated()

    def append(self, body: Mapping[str, Any]) -> AuditEntry:
        """Seal ``body`` as the next entry. ``recorded_at`` is added when the body lacks ``at``."""
        if self._key is None:
            raise RuntimeError("this AuditLog was opened read-only (no signing key)")
        record = dict(body)
        record.setdefault("at", datetime.now(UTC).isoformat(timespec="microseconds"))
        text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) > MAX_BODY_BYTES:
            raise ValueError(f"audit body larger than {MAX_BODY_BYTES} bytes")
        pending = _Pending(record, text)
        with self._waiting_lock:
            self._waiting.append(pending)
        with self._writer:
            if pending.entry is None and pending.error is None:
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                self._commit(group)
        if pending.error is not None:
            raise pending.error
        assert pending.entry is not None
        return pending.entry

    def _commit(self, group: list[_Pending]) -> None:
        """Seal and insert ``group`` in one exclusive transaction; each waiter learns its entry,
        or the error that kept the whole group out (nothing of it is written then)."""
        assert self._key is not None
        entries: list[AuditEntry] = []
        try:
            with self._db.transaction(exclusive=True) as tx:
                head = tx.one("SELECT seq, entry_hash FROM sluis_audit_entries ORDER BY seq DESC LIMIT 1")
                seq, prev = (int(head["seq"]) + 1, str(head["entry_hash"])) if head else (1, GENESIS_HASH)
                for item in group:
                    entry = seal(seq, prev, item.record, self._signer_id, self._key.sign)
                    tx.execute(
                        "INSERT INTO sluis_audit_entries (seq, prev_hash, body_hash, entry_hash, signature,"
                        " signer, body, agreement_id, consumer_id, recorded_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            entry.seq, entry.prev_hash, entry.body_hash, entry.entry_hash, entry.signature,
                            entry.signer, item.text, _text_or_none(item.record.get("agreement_id")),
                            _text_or_none(item.record.get("consumer_id")), str(item.record["at"]),
                        ),
                    )
                    entries.append(entry)
                    seq, prev = entry.seq + 1, entry.entry_hash
        except BaseException as error:
            for item in group:
                item.error = error
            raise
        for item, entry in zip(group, entries, strict=True):
            item.entry = entry
        _log.debug("audit entries appended", extra={"count": len(group), "last_seq": entries[-1].seq})

    def entries(self, after_seq: int = 0) -> Iterator[AuditEntry]:
        """Every entry with ``seq > after_seq`` in chain order, fetched page by page."""
        last = after_seq
        while True:
            with self._db.transaction(write=False) as tx:
                rows = tx.all(
                    f"SELECT {_COLUMNS} FROM sluis_audit_entries WHERE seq > ? ORDER BY seq LIMIT ?",
                    (last, PAGE_SIZE),
                )
            if not rows:
                return
            for row in rows:
                entry = _row_to_entry(row)
                last = entry.seq
                yield entry
            if len(rows) < PAGE_SIZE:
                return

    def entries_for(self, *, consumer_id: str | None = None, agreement_id: str | None = None,
                    limit: int = PAGE_SIZE) -> list[AuditEntry]:
        """The latest ``limit`` entries about one consumer and/or agreement, oldest first."""
        clauses, params = [], []
        if consumer_id is not None:
            clauses.append("consumer_id = ?")
            params.append(consumer_id)
        if agreement_id is not None:
            clauses.append("agreement_id = ?")
            params.append(agreement_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._db.transaction(write=False) as tx:
            rows = tx.all(
                f"SELECT {_COLUMNS} FROM sluis_audit_entries {where} ORDER BY seq DESC LIMIT ?",
                (*params, limit),
            )
        return [_row_to_entry(row) for row in reversed(rows)]

    def head(self) -> tuple[int, str] | None:
        with self._db.transaction(write=False) as tx:
            head = tx.one("SELECT seq, entry_hash FROM sluis_audit_entries ORDER BY seq DESC LIMIT 1")
        return (int(head["seq"]), str(head["entry_hash"])) if head else None

    def verify(self, verify_signature: Verifier) -> ChainReport:
        return verify_chain(self.entries(), verify_signature)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
