"""A thin SQL handle over the connector's storage URL: SQLite (WAL) or PostgreSQL.

The audit log and the data plane keep their own tables in the *same* database as the connector
(one storage URL, one backup), so that several connector replicas on one PostgreSQL share read
counters, token states and one audit chain. SQL is written once with ``?`` placeholders and
translated for psycopg. Connections are pooled per handle; every unit of work is one
transaction (``with db.transaction() as tx``), committed on success and rolled back on error.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from connector.audit.errors import AuditError

# How long a SQLite writer waits for the lock before failing: concurrent reads each append an
# audit entry and bump a counter, and twenty of them queue behind one another for milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Idle connections kept per handle; more concurrent work opens short-lived extra connections.
POOL_SIZE = 16

Row = tuple[Any, ...]


class Transaction(Protocol):
    """What a unit of work can do: run statements and read their rows."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class _SqliteTransaction:
    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._connection.execute(sql, tuple(params))
        rows = cursor.fetchall() if cursor.description is not None else []
        return [tuple(row) for row in rows]


class _PostgresTransaction:
    dialect = "postgresql"

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), tuple(params))
            rows = cursor.fetchall() if cursor.description is not None else []
        return [tuple(row) for row in rows]


def sqlite_path(url: str, base_dir: Path | None = None) -> str:
    """The file a ``sqlite:///...`` URL names: ``sqlite:////abs/file.db`` is absolute,
    ``sqlite:///file.db`` is relative to ``base_dir`` (the config file's folder) or the cwd."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise AuditError("bad_storage_url", f"a SQLite URL looks like sqlite:///file.db, got {url!r}")
    path = unquote(url[len(prefix) :])
    if path in ("", ":memory:"):
        raise AuditError("bad_storage_url", "an in-memory SQLite database cannot be shared; give a file")
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = (base_dir or Path.cwd()) / candidate
    return str(candidate)


class Database:
    """One storage URL (``sqlite:///file.db`` or ``postgresql://...``) with a small connection pool."""

    def __init__(self, url: str, base_dir: Path | None = None) -> None:
        scheme = urlsplit(url).scheme
        if scheme == "sqlite":
            self.dialect = "sqlite"
            self._target = sqlite_path(url, base_dir)
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            self._target = url
        else:
            raise AuditError(
                "bad_storage_url", f"storage URL must start with sqlite:/// or postgresql://, got {scheme!r}"
            )
        self.url = url
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue(maxsize=POOL_SIZE)
        self._schema_lock = threading.Lock()
        self._schemas: set[str] = set()

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            connection = sqlite3.connect(
                self._target, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA synchronous=NORMAL")
            return connection
        import psycopg

        try:
            return psycopg.connect(self._target, autocommit=False)
        except psycopg.Error as error:
            raise AuditError("storage_unavailable", f"cannot connect to PostgreSQL: {error}") from None

    def _acquire(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            return self._connect()

    def _release(self, connection: Any) -> None:
        try:
            self._pool.put_nowait(connection)
        except queue.Full:
            connection.close()

    @contextmanager
    def transaction(self, exclusive: bool = False) -> Iterator[Transaction]:
        """One transaction. ``exclusive`` serialises writers (SQLite ``BEGIN IMMEDIATE``;
        a PostgreSQL transaction-scoped advisory lock), for read-modify-write sequences such as
        appending to a hash chain."""
        connection = self._acquire()
        broken = False
        try:
            if self.dialect == "sqlite":
                connection.execute("BEGIN IMMEDIATE" if exclusive else "BEGIN")
                tx: Transaction = _SqliteTransaction(connection)
            else:
                tx = _PostgresTransaction(connection)
                if exclusive:
                    tx.execute("SELECT pg_advisory_xact_lock(?)", (EXCLUSIVE_LOCK_KEY,))
            try:
                yield tx
            except BaseException:
                self._finish(connection, commit=False)
                raise
            self._finish(connection, commit=True)
        except BaseException:
            broken = not self._healthy(connection)
            raise
        finally:
            if broken:
                connection.close()
            else:
                self._release(connection)

    def _finish(self, connection: Any, commit: bool) -> None:
        if self.dialect == "postgresql":
            if commit:
                connection.commit()
            else:
                connection.rollback()
        else:
            connection.execute("COMMIT" if commit else "ROLLBACK")

    def _healthy(self, connection: Any) -> bool:
        try:
            if self.dialect == "sqlite":
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                return True
            if connection.closed:
                return False
            connection.rollback()
        except Exception:
            return False
        return True

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None:
        """Create tables once per handle (``CREATE ... IF NOT EXISTS``; safe across replicas)."""
        with self._schema_lock:
            if name in self._schemas:
                return
            with self.transaction(exclusive=True) as tx:
                for statement in statements:
                    tx.execute(statement)
            self._schemas.add(name)

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return


# One well-known key for the advisory lock that serialises audit-chain appends on PostgreSQL.
EXCLUSIVE_LOCK_KEY = 0x51_75_15_A0
