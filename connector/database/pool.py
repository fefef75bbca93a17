"""The connector's one database handle over SQLite (standard library) and PostgreSQL (psycopg 3).

Store, data plane, audit log and pages write their SQL once, with ``?`` placeholders; this module
adapts it to the driver, hands out one connection per unit of work from one bounded pool, and
turns rows into dicts keyed by column name. Every table lives in the same database (one storage
URL, one backup), so several replicas on one PostgreSQL share processes, read counters, token
states and one audit chain.

Units of work, all through :meth:`Database.transaction`:

* ``transaction(write=False)``: one read statement in autocommit mode; takes no lock, so
  readers never queue behind SQLite's one writer.
* ``transaction()``: an atomic write. SQLite takes its write lock at ``BEGIN IMMEDIATE`` (two
  writers queue instead of dead-locking on a lock upgrade, and a compare-and-set read inside the
  transaction sees the row it then updates); PostgreSQL runs a plain ``BEGIN``, so
  compare-and-set statements (``UPDATE ... WHERE version = ?``) decide between replicas.
* ``transaction(exclusive=True)``: a write that is also serialised against every other
  exclusive write on every replica (a PostgreSQL transaction-scoped advisory lock; SQLite's write
  lock already does it), for read-modify-write sequences such as appending to a hash chain.

The schema is :mod:`connector.database.migrations`, applied by :meth:`Database.migrate`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from connector.database.migrations import MIGRATIONS, apply_migrations

#: Connections kept open per database; FastAPI's thread pool, the outbox worker and the data
#: plane's reads share them.
POOL_SIZE = 16
#: How long a SQLite writer waits for the lock held by another writer (another process, too):
#: concurrent reads each append an audit entry and bump a counter, and queue behind one another.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: How long to wait for a free pooled connection before failing loudly rather than hanging.
POOL_WAIT_SECONDS = 30.0
#: The advisory lock that serialises exclusive writers (audit-chain appends) on PostgreSQL.
EXCLUSIVE_LOCK_KEY = 0x51_75_15_A0
#: The advisory lock that lets one of several replicas starting together migrate the schema.
MIGRATION_LOCK_KEY = 0x51_75_15


class StoreError(Exception):
    """The storage URL or the database failed in a way the caller cannot fix by retrying."""

    code = "store-error"


def sqlite_path(url: str, relative_to: Path | None = None) -> Path:
    """``sqlite:///relative.db`` is relative to ``relative_to`` (else the working directory);
    ``sqlite:////abs.db`` is absolute. An in-memory database cannot be shared, so it is refused."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise StoreError(f"a SQLite URL looks like sqlite:///file.db, got {url!r}")
    raw = unquote(url[len(prefix) :])
    if raw in ("", ":memory:"):
        raise StoreError("an in-memory SQLite database cannot be shared; give a file")
    path = Path(raw)
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    return path


class Transaction:
    """The cursor of one unit of work; SQL uses ``?`` placeholders on both back ends."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self._connection = connection
        self.dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgres" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        cursor = self._connection.execute(self._sql(sql), tuple(params))
        return int(cursor.rowcount)

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row (or ``None``); also for ``... RETURNING`` statements."""
        cursor = self._connection.execute(self._sql(sql), tuple(params))
        row = cursor.fetchone()
        return None if row is None else dict(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row; also for ``... RETURNING`` statements."""
        cursor = self._connection.execute(self._sql(sql), tuple(params))
        return [dict(row) for row in cursor.fetchall()]


class Database:
    """A pool of connections to one database, SQLite or PostgreSQL, chosen by URL."""

    def __init__(self, url: str, relative_to: Path | None = None) -> None:
        self.url = url
        scheme = urlsplit(url).scheme
        if scheme == "sqlite":
            self.dialect = "sqlite"
            self._path = sqlite_path(url, relative_to)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # The database holds credentials (push destinations' authorization, access tokens,
            # data addresses): readable by its owner only. SQLite gives its -wal and -shm files
            # the database file's mode, so creating the file first is enough.
            os.close(os.open(self._path, os.O_CREAT | os.O_WRONLY, 0o600))
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgres"
            host = urlsplit(url).hostname or ""
            if not host:
                raise StoreError(f"PostgreSQL URL {url!r} names no host")
        else:
            raise StoreError(f"storage URL {url!r} is neither sqlite:///... nor postgresql://...")
        # idle connections, last in first out (a warm one first); one lock guards them and the
        # count, and a unit of work waits on ``_free`` only when every connection is out
        self._idle: list[Any] = []
        self._opened = 0
        self._waiting = 0
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._write_lock = threading.Lock()
        self._migrate_lock = threading.Lock()
        self._migrated = False
        self._closed = False

    @property
    def path(self) -> Path | None:
        """The SQLite file, or ``None`` on PostgreSQL."""
        return self._path if self.dialect == "sqlite" else None

    # -- schema ---------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Apply the numbered migrations not yet applied; safe from several processes at once.

        Returns the schema version."""
        with self._migrate_lock:
            self._apply_migrations()
            self._migrated = True
        return len(MIGRATIONS)

    def ensure_migrated(self) -> None:
        """Migrate once per handle: what every component opening the database calls first."""
        with self._migrate_lock:
            if not self._migrated:
                self._apply_migrations()
                self._migrated = True

    def _apply_migrations(self) -> None:
        with self.transaction() as tx:
            if self.dialect == "postgres":
                # replicas starting together: one migrates, the others wait and find it done
                tx.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK_KEY,))
            apply_migrations(tx)

    # -- connections ----------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            connection = sqlite3.connect(
                self._path,
                isolation_level=None,
                check_same_thread=False,
                timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            )
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            return connection
        import psycopg
        from psycopg.rows import dict_row

        try:
            return psycopg.connect(self.url, autocommit=True, row_factory=dict_row)
        except psycopg.OperationalError as error:
            raise StoreError(f"cannot connect to PostgreSQL: {error}") from None

    def _acquire(self) -> Any:
        deadline: float | None = None
        with self._free:
            while not self._idle:
                if self._opened < POOL_SIZE:
                    self._opened += 1
                    break
                now = time.monotonic()
                deadline = now + POOL_WAIT_SECONDS if deadline is None else deadline
                if now >= deadline:
                    raise StoreError("no database connection became free in time")
                self._waiting += 1
                try:
                    self._free.wait(deadline - now)
                finally:
                    self._waiting -= 1
            else:
                return self._idle.pop()
        try:  # a new connection, opened outside the lock
            return self._connect()
        except BaseException:
            self._give_up_one()
            raise

    def _give_up_one(self) -> None:
        """One connection fewer is open: a unit of work waiting may open one in its place."""
        with self._free:
            self._opened -= 1
            if self._waiting:
                self._free.notify()

    def _release(self, connection: Any, broken: bool) -> None:
        if broken or self._closed:
            self._give_up_one()
            # closing a broken connection may fail again; there is nothing more to do
            with contextlib.suppress(Exception):
                connection.close()
            return
        with self._free:
            self._idle.append(connection)
            if self._waiting:
                self._free.notify()

    @contextmanager
    def transaction(self, write: bool = True, *, exclusive: bool = False) -> Iterator[Transaction]:
        """One atomic unit: everything inside commits together or not at all.

        ``write=False`` is for a single read statement: it runs in autocommit mode and takes no
        write lock. ``exclusive=True`` also serialises this write against every other exclusive
        write, on every replica (see the module docstring).
        """
        connection = self._acquire()
        broken = False
        try:
            if not write:
                yield Transaction(connection, self.dialect)
                return
            # SQLite has one writer at a time; writers of this process queue on a Python lock
            # (an immediate hand-over) instead of SQLite's busy handler, which sleeps in steps of
            # up to 100 ms. Other processes still meet the file lock and the busy timeout.
            with self._write_lock if self.dialect == "sqlite" else contextlib.nullcontext():
                connection.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
                try:
                    tx = Transaction(connection, self.dialect)
                    if exclusive and self.dialect == "postgres":
                        tx.execute("SELECT pg_advisory_xact_lock(?)", (EXCLUSIVE_LOCK_KEY,))
                    yield tx
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
        except (sqlite3.OperationalError, OSError):
            broken = True
            raise
        except Exception as error:
            broken = type(error).__module__.startswith("psycopg") and bool(
                getattr(connection, "closed", False)
            )
            raise
        finally:
            self._release(connection, broken)

    def close(self) -> None:
        self._closed = True
        with self._free:
            idle, self._idle = self._idle, []
            self._opened -= len(idle)
        for connection in idle:
            connection.close()
