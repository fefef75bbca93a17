"""The harvest ledger: sources, runs, and which source holds which dataset (SQLite, WAL).

The catalogue store keeps one record per dataset IRI; the ledger keeps the *origins*: one row
per (source, dataset IRI) with the digest of what that source last served, when it was
harvested and how it was trusted. That pair is a harvested record's identity: the same dataset
reached through two sources is one record in search with two origins, and it disappears only
when no origin lists it any more (each source's version itself is in a named graph of the
store, :mod:`catalogue.harvest._versions`). Runs keep their cursor (the pages still to fetch), the pages
already visited and the datasets already seen, so an interrupted run resumes where it stopped
and a complete listing knows what the source no longer holds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogue.harvest._machine import RunState

LEDGER_FILE = "harvest.sqlite"
#: Per-record rejections kept per run (the counts stay exact; the list is for reading).
MAX_REJECTIONS_KEPT = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS source (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    kind TEXT NOT NULL,
    did TEXT,
    publishers TEXT NOT NULL DEFAULT '[]',
    incremental INTEGER NOT NULL DEFAULT 0,
    interval_seconds INTEGER,
    created TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    watermark TEXT,
    last_run INTEGER
);
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    incremental INTEGER NOT NULL DEFAULT 0,
    cursor TEXT NOT NULL DEFAULT '[]',
    started TEXT NOT NULL,
    finished TEXT,
    newest TEXT,
    complete INTEGER NOT NULL DEFAULT 1,
    counts TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    continues INTEGER
);
CREATE INDEX IF NOT EXISTS run_by_source ON run(source, id);
CREATE TABLE IF NOT EXISTS run_page (
    run INTEGER NOT NULL, url TEXT NOT NULL, PRIMARY KEY (run, url)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_seen (
    run INTEGER NOT NULL, dataset TEXT NOT NULL, PRIMARY KEY (run, dataset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_rejection (run INTEGER NOT NULL, item TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS origin (
    source TEXT NOT NULL,
    dataset TEXT NOT NULL,
    record_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    harvested TEXT NOT NULL,
    trust TEXT NOT NULL,
    PRIMARY KEY (source, dataset)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS origin_by_record ON origin(record_id);
CREATE TABLE IF NOT EXISTS page_state (
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    next_url TEXT,
    links TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (source, url)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    source TEXT NOT NULL,
    dataset TEXT NOT NULL,
    reason TEXT NOT NULL,
    harvested TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (source, dataset)
) WITHOUT ROWID;
"""

#: Columns added after the first release of the ledger: (table, column, declaration).
_ADDED_COLUMNS = (
    ("run", "continues", "INTEGER"),
    ("origin", "page", "TEXT"),
    ("quarantine", "page", "TEXT"),
)

COUNTERS = (
    "pages",
    "bytes",
    "seen",
    "stored",
    "unchanged",
    "deleted",
    "quarantined",
    "rejected",
    "not_modified",
)


@dataclass(frozen=True)
class Source:
    id: str
    url: str
    kind: str
    """``dcat`` (an RDF endpoint or dump, Hydra-paged or not) or ``dsp`` (a connector's catalog)."""
    did: str | None = None
    """The source's identity; the source is trusted when the node's configuration trusts it."""
    publishers: tuple[str, ...] = ()
    """When not empty, the only publishers whose records this source may bring."""
    incremental: bool = False
    """Ask for changes only (``modified_since``) once a complete run has a watermark."""
    interval_seconds: int | None = None

    @property
    def iri(self) -> str:
        return f"urn:sluis:source:{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "kind": self.kind,
            "did": self.did,
            "publishers": list(self.publishers),
            "incremental": self.incremental,
            "interval_seconds": self.interval_seconds,
        }


@dataclass
class Run:
    id: int
    source: str
    state: RunState
    incremental: bool
    cursor: list[str]
    started: str
    finished: str | None = None
    newest: str | None = None
    complete: bool = True
    """False once a file of a listing could not be read: such a run never sweeps."""
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    continues: int | None = None
    """The capped run whose listing this one carries on (its cursor, visited pages and seen
    datasets moved here), so a source larger than one run's caps is still listed completely."""

    def count(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": str(self.state),
            "incremental": self.incremental,
            "started": self.started,
            "finished": self.finished,
            "counts": {name: self.counts.get(name, 0) for name in COUNTERS},
            "error": self.error,
            "continues": self.continues,
        }


@dataclass(frozen=True)
class PageState:
    """What a page was when last read in full: its validators and where it led."""

    etag: str | None
    last_modified: str | None
    next_url: str | None
    links: tuple[str, ...]


@dataclass(frozen=True)
class Origin:
    source: str
    dataset: str
    record_id: str
    digest: str
    harvested: str
    trust: str


class Ledger:
    """The ledger in one SQLite file; one writer at a time, a read connection per thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = self._connect()
        self._connection.executescript(_SCHEMA)
        self._migrate()
        self._lock = threading.RLock()
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _migrate(self) -> None:
        """Add the columns a ledger written by an earlier release lacks (additive only)."""
        for table, column, declaration in _ADDED_COLUMNS:
            present = {row[1] for row in self._connection.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self._connection.execute("CREATE INDEX IF NOT EXISTS origin_by_page ON origin(source, page)")

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    # ---- sources ----------------------------------------------------------------------------
    def put_source(self, source: Source, created: str) -> bool:
        """Add or update a source's settings (its harvest state is kept); True when it was new."""
        with self.transaction() as db:
            existed = db.execute("SELECT 1 FROM source WHERE id = ?", (source.id,)).fetchone() is not None
            db.execute(
                "INSERT INTO source(id, url, kind, did, publishers, incremental, interval_seconds, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET url = excluded.url, "
                "kind = excluded.kind, did = excluded.did, publishers = excluded.publishers, "
                "incremental = excluded.incremental, interval_seconds = excluded.interval_seconds",
                (
                    source.id,
                    source.url,
                    source.kind,
                    source.did,
                    json.dumps(list(source.publishers)),
                    int(source.incremental),
                    source.interval_seconds,
                    created,
                ),
            )
        return not existed

    def source(self, source_id: str) -> Source | None:
        row = (
            self._reader()
            .execute(
                "SELECT id, url, kind, did, publishers, incremental, interval_seconds FROM source "
                "WHERE id = ?",
                (source_id,),
            )
            .fetchone()
        )
        return None if row is None else _source(row)

    def sources(self) -> list[Source]:
        rows = (
            self._reader()
            .execute(
                "SELECT id, url, kind, did, publishers, incremental, interval_seconds FROM source ORDER BY id"
            )
            .fetchall()
        )
        return [_source(row) for row in rows]

    def sync_state(self, source_id: str) -> tuple[str | None, str | None, str | None]:
        """(ETag, Last-Modified, watermark) of the source's last complete run."""
        row = (
            self._reader()
            .execute("SELECT etag, last_modified, watermark FROM source WHERE id = ?", (source_id,))
            .fetchone()
        )
        return (None, None, None) if row is None else (row[0], row[1], row[2])

    def set_sync_state(
        self, source_id: str, *, etag: str | None, last_modified: str | None, watermark: str | None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE source SET etag = ?, last_modified = ?, watermark = coalesce(?, watermark) "
                "WHERE id = ?",
                (etag, last_modified, watermark, source_id),
            )

    # ---- runs -------------------------------------------------------------------------------
    def open_run(self, source_id: str) -> Run | None:
        """The source's unfinished run (a process stopped during it), if any."""
        row = (
            self._reader()
            .execute(
                "SELECT id FROM run WHERE source = ? AND state IN (?, ?, ?, ?) ORDER BY id DESC LIMIT 1",
                (source_id, RunState.PENDING, RunState.LISTING, RunState.SWEEPING, RunState.INTERRUPTED),
            )
            .fetchone()
        )
        return None if row is None else self.run(int(row[0]))

    def new_run(
        self,
        source_id: str,
        started: str,
        cursor: Sequence[str],
        incremental: bool,
        *,
        continues: Run | None = None,
    ) -> Run:
        """A new run; ``continues``: a capped run whose listing it takes over, scratch included."""
        complete = True if continues is None else continues.complete
        newest = None if continues is None else continues.newest
        with self.transaction() as db:
            cursor_row = db.execute(
                "INSERT INTO run(source, state, incremental, cursor, started, complete, newest, continues) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    source_id,
                    RunState.PENDING,
                    int(incremental),
                    json.dumps(list(cursor)),
                    started,
                    int(complete),
                    newest,
                    None if continues is None else continues.id,
                ),
            )
            run_id = int(cursor_row.lastrowid or 0)
            if continues is not None:
                db.execute("UPDATE run_seen SET run = ? WHERE run = ?", (run_id, continues.id))
                db.execute("UPDATE run_page SET run = ? WHERE run = ?", (run_id, continues.id))
                db.execute("UPDATE run SET cursor = '[]' WHERE id = ?", (continues.id,))
            db.execute("UPDATE source SET last_run = ? WHERE id = ?", (run_id, source_id))
        found = self.run(run_id)
        assert found is not None
        return found

    def run(self, run_id: int) -> Run | None:
        row = (
            self._reader()
            .execute(
                "SELECT id, source, state, incremental, cursor, started, finished, newest, complete, counts, "
                "error, continues "
                "FROM run WHERE id = ?",
                (run_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Run(
            int(row[0]),
            row[1],
            RunState(row[2]),
            bool(row[3]),
            list(json.loads(row[4])),
            row[5],
            row[6],
            row[7],
            bool(row[8]),
            dict(json.loads(row[9])),
            row[10],
            None if row[11] is None else int(row[11]),
        )

    def last_run(self, source_id: str) -> Run | None:
        row = self._reader().execute("SELECT last_run FROM source WHERE id = ?", (source_id,)).fetchone()
        return None if row is None or row[0] is None else self.run(int(row[0]))

    def save_run(self, run: Run, db: sqlite3.Connection | None = None) -> None:
        values = (
            str(run.state),
            json.dumps(run.cursor),
            run.finished,
            run.newest,
            int(run.complete),
            json.dumps(run.counts, sort_keys=True),
            run.error,
            run.id,
        )
        sql = (
            "UPDATE run SET state = ?, cursor = ?, finished = ?, newest = ?, complete = ?, counts = ?, "
            "error = ? WHERE id = ?"
        )
        if db is not None:
            db.execute(sql, values)
            return
        with self.transaction() as own:
            own.execute(sql, values)

    def visited(self, run_id: int, url: str) -> bool:
        return (
            self._reader()
            .execute("SELECT 1 FROM run_page WHERE run = ? AND url = ?", (run_id, url))
            .fetchone()
            is not None
        )

    def visited_count(self, run_id: int) -> int:
        """Pages visited by the run's listing (carried over from the runs it continues)."""
        row = self._reader().execute("SELECT count(*) FROM run_page WHERE run = ?", (run_id,)).fetchone()
        return int(row[0])

    def mark_visited(self, db: sqlite3.Connection, run_id: int, url: str) -> None:
        db.execute("INSERT OR IGNORE INTO run_page(run, url) VALUES (?, ?)", (run_id, url))

    def mark_seen(self, db: sqlite3.Connection, run_id: int, datasets: Iterable[str]) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO run_seen(run, dataset) VALUES (?, ?)", [(run_id, d) for d in datasets]
        )

    def reject(self, db: sqlite3.Connection, run: Run, item: str, reason: str) -> None:
        run.count("rejected")
        if run.counts["rejected"] <= MAX_REJECTIONS_KEPT:
            db.execute(
                "INSERT INTO run_rejection(run, item, reason) VALUES (?, ?, ?)", (run.id, item, reason[:2000])
            )

    def rejections(self, run_id: int, limit: int = 100) -> list[dict[str, str]]:
        rows = (
            self._reader()
            .execute(
                "SELECT item, reason FROM run_rejection WHERE run = ? ORDER BY rowid LIMIT ?", (run_id, limit)
            )
            .fetchall()
        )
        return [{"item": row[0], "reason": row[1]} for row in rows]

    def unseen(self, run_id: int, source_id: str) -> list[Origin]:
        """Origins of the source that its (complete) run did not list: the source dropped them."""
        rows = (
            self._reader()
            .execute(
                "SELECT source, dataset, record_id, digest, harvested, trust FROM origin o WHERE source = ? "
                "AND NOT EXISTS (SELECT 1 FROM run_seen s WHERE s.run = ? AND s.dataset = o.dataset)",
                (source_id, run_id),
            )
            .fetchall()
        )
        return [Origin(*row) for row in rows]

    def drop_unseen_quarantine(self, db: sqlite3.Connection, run_id: int, source_id: str) -> None:
        db.execute(
            "DELETE FROM quarantine WHERE source = ? AND NOT EXISTS "
            "(SELECT 1 FROM run_seen s WHERE s.run = ? AND s.dataset = quarantine.dataset)",
            (source_id, run_id),
        )

    def forget_run_scratch(self, run_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM run_seen WHERE run = ?", (run_id,))
            db.execute("DELETE FROM run_page WHERE run = ?", (run_id,))

    # ---- pages: conditional requests -----------------------------------------------------------
    def page_state(self, source_id: str, url: str) -> PageState | None:
        row = (
            self._reader()
            .execute(
                "SELECT etag, last_modified, next_url, links FROM page_state WHERE source = ? AND url = ?",
                (source_id, url),
            )
            .fetchone()
        )
        return None if row is None else PageState(row[0], row[1], row[2], tuple(json.loads(row[3])))

    def put_page_state(
        self, db: sqlite3.Connection, source_id: str, url: str, state: PageState | None
    ) -> None:
        """Keep a page's validators (None: it gave none, so any kept ones are stale)."""
        if state is None:
            db.execute("DELETE FROM page_state WHERE source = ? AND url = ?", (source_id, url))
            return
        db.execute(
            "INSERT INTO page_state(source, url, etag, last_modified, next_url, links) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(source, url) DO UPDATE SET etag = excluded.etag, "
            "last_modified = excluded.last_modified, next_url = excluded.next_url, links = excluded.links",
            (source_id, url, state.etag, state.last_modified, state.next_url, json.dumps(list(state.links))),
        )

    def note_page(self, db: sqlite3.Connection, source_id: str, url: str, datasets: Sequence[str]) -> None:
        """The page a source last listed these datasets on (what a 304 for it stands for)."""
        for start in range(0, len(datasets), 500):
            chunk = list(datasets[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for table in ("origin", "quarantine"):
                db.execute(
                    f"UPDATE {table} SET page = ? WHERE source = ? AND dataset IN ({marks})",
                    (url, source_id, *chunk),
                )

    def seen_on_page(self, db: sqlite3.Connection, run_id: int, source_id: str, url: str, now: str) -> int:
        """A page answered 304: what it listed last time is seen again (and its harvest time
        refreshed); the number of those datasets."""
        db.execute(
            "INSERT OR IGNORE INTO run_seen(run, dataset) SELECT ?, dataset FROM origin "
            "WHERE source = ? AND page = ?",
            (run_id, source_id, url),
        )
        db.execute(
            "INSERT OR IGNORE INTO run_seen(run, dataset) SELECT ?, dataset FROM quarantine "
            "WHERE source = ? AND page = ?",
            (run_id, source_id, url),
        )
        touched = db.execute(
            "UPDATE origin SET harvested = ? WHERE source = ? AND page = ?", (now, source_id, url)
        )
        return int(touched.rowcount)

    def drop_unvisited_pages(self, db: sqlite3.Connection, run_id: int, source_id: str) -> None:
        """After a complete listing: pages it did not reach are no longer part of the source."""
        db.execute(
            "DELETE FROM page_state WHERE source = ? AND NOT EXISTS "
            "(SELECT 1 FROM run_page p WHERE p.run = ? AND p.url = page_state.url)",
            (source_id, run_id),
        )

    # ---- origins and quarantine ---------------------------------------------------------------
    def origins_of_source(self, source_id: str, datasets: Sequence[str]) -> dict[str, Origin]:
        found: dict[str, Origin] = {}
        reader = self._reader()
        for start in range(0, len(datasets), 500):
            chunk = list(datasets[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for row in reader.execute(
                "SELECT source, dataset, record_id, digest, harvested, trust FROM origin "
                f"WHERE source = ? AND dataset IN ({marks})",
                (source_id, *chunk),
            ):
                found[row[1]] = Origin(*row)
        return found

    def origins(self, record_ids: Sequence[str]) -> dict[str, list[Origin]]:
        found: dict[str, list[Origin]] = {}
        if not record_ids:
            return found
        marks = ",".join("?" * len(record_ids))
        for row in self._reader().execute(
            "SELECT source, dataset, record_id, digest, harvested, trust FROM origin "
            f"WHERE record_id IN ({marks}) ORDER BY harvested",
            tuple(record_ids),
        ):
            found.setdefault(row[2], []).append(Origin(*row))
        return found

    def count_origins(self, record_id: str) -> int:
        row = (
            self._reader().execute("SELECT count(*) FROM origin WHERE record_id = ?", (record_id,)).fetchone()
        )
        return int(row[0])

    def put_origins(self, db: sqlite3.Connection, origins: Iterable[Origin]) -> None:
        db.executemany(
            "INSERT INTO origin(source, dataset, record_id, digest, harvested, trust) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(source, dataset) DO UPDATE SET record_id = excluded.record_id, "
            "digest = excluded.digest, "
            "harvested = excluded.harvested, trust = excluded.trust",
            [(o.source, o.dataset, o.record_id, o.digest, o.harvested, o.trust) for o in origins],
        )
        db.executemany(
            "DELETE FROM quarantine WHERE source = ? AND dataset = ?",
            [(o.source, o.dataset) for o in origins],
        )

    def touch_origins(
        self, db: sqlite3.Connection, source_id: str, datasets: Iterable[str], harvested: str
    ) -> None:
        db.executemany(
            "UPDATE origin SET harvested = ? WHERE source = ? AND dataset = ?",
            [(harvested, source_id, dataset) for dataset in datasets],
        )

    def drop_origin(self, db: sqlite3.Connection, source_id: str, dataset: str) -> None:
        db.execute("DELETE FROM origin WHERE source = ? AND dataset = ?", (source_id, dataset))

    def quarantine(
        self, db: sqlite3.Connection, source_id: str, dataset: str, reason: str, harvested: str, digest: str
    ) -> None:
        db.execute(
            "INSERT INTO quarantine(source, dataset, reason, harvested, digest) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(source, dataset) DO UPDATE SET reason = excluded.reason, "
            "harvested = excluded.harvested, digest = excluded.digest",
            (source_id, dataset, reason[:2000], harvested, digest),
        )

    def quarantined(self, source_id: str, limit: int = 100) -> list[dict[str, str]]:
        rows = (
            self._reader()
            .execute(
                "SELECT dataset, reason, harvested FROM quarantine WHERE source = ? ORDER BY dataset LIMIT ?",
                (source_id, limit),
            )
            .fetchall()
        )
        return [{"dataset": row[0], "reason": row[1], "harvested": row[2]} for row in rows]

    def source_counts(self, source_id: str) -> dict[str, int]:
        reader = self._reader()
        held = reader.execute("SELECT count(*) FROM origin WHERE source = ?", (source_id,)).fetchone()[0]
        trusted = reader.execute(
            "SELECT count(*) FROM origin WHERE source = ? AND trust = 'trusted'", (source_id,)
        ).fetchone()[0]
        quarantined = reader.execute(
            "SELECT count(*) FROM quarantine WHERE source = ?", (source_id,)
        ).fetchone()[0]
        return {"records": int(held), "trusted": int(trusted), "quarantined": int(quarantined)}


def _source(row: Sequence[Any]) -> Source:
    return Source(
        row[0],
        row[1],
        row[2],
        row[3],
        tuple(json.loads(row[4])),
        bool(row[5]),
        None if row[6] is None else int(row[6]),
    )
