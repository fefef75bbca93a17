"""One small database layer over SQLite (standard library) and PostgreSQL (psycopg 3).

The store writes its SQL once, with ``?`` placeholders; this module adapts it to the driver,
hands out one connection per transaction from a bounded pool, and turns rows into dicts.
SQLite runs in WAL mode and takes its write lock at ``BEGIN IMMEDIATE`` so two writers queue
instead of dead-locking on a lock upgrade.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

#: Connections kept open per store; FastAPI's thread pool and the outbox worker share them.
POOL_SIZE = 16
#: How long a SQLite writer waits for the lock held by another writer (another process, too).
SQLITE_BUSY_TIMEOUT_MS = 15_000
#: How long to wait for a free pooled connection before failing loudly rather than hanging.
POOL_WAIT_SECONDS = 30.0


class StoreError(Exception):
    """The storage URL or the database failed in a way the caller cannot fix by retrying."""

    code = "store-error"


def sqlite_path(url: str, relative_to: Path | None = None) -> Path:
    """``sqlite:///relative.db`` is relative to ``relative_to``; ``sqlite:////abs.db`` is absolute."""
    raw = unquote(url[len("sqlite:///") :])
    path = Path(raw)
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    return path


class Transaction:
    """The cursor of one open transaction; SQL uses ``?`` placeholders on both back ends."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self._connection = connection
        self._dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._dialect == "postgres" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = self._connection.execute(self._sql(sql), tuple(params))
        return int(cursor.rowcount)

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        cursor = self._connection.execute(self._sql(sql), tuple(params))
        row = cursor.fetchone()
        return None if row is None else dict(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self._connection.execute(self._sql(sql), tuple(params))
        return [dict(row) for row in cursor.fetchall()]


class Database:
    """A pool of connections to one database, SQLite or PostgreSQL, chosen by URL."""

    def __init__(self, url: str, relative_to: Path | None = None) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            self._path = sqlite_path(url, relative_to)
            self._path.parent.mkdir(parents=True, exist_ok=True)
        elif url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgres"
            host = urlsplit(url).hostname or ""
            if not host:
                raise StoreError(f"PostgreSQL URL {url!r} names no host")
        else:
            raise StoreError(f"storage URL {url!r} is neither sqlite:///... nor postgresql://...")
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue(maxsize=POOL_SIZE)
        self._opened = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False

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

        return psycopg.connect(self.url, autocommit=True, row_factory=dict_row)

    def _acquire(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._opened < POOL_SIZE:
                self._opened += 1
                try:
                    return self._connect()
                except Exception:
                    self._opened -= 1
                    raise
        try:
            return self._pool.get(timeout=POOL_WAIT_SECONDS)
        except queue.Empty as error:
            raise StoreError("no database connection became free in time") from error

    def _release(self, connection: Any, broken: bool) -> None:
        if broken or self._closed:
            with self._lock:
                self._opened -= 1
            # closing a broken connection may fail again; there is nothing more to do
            with contextlib.suppress(Exception):
                connection.close()
            return
        self._pool.put(connection)

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Transaction]:
        """One atomic unit: everything inside commits together or not at all.

        ``write=False`` is for a single read statement: it runs in autocommit mode and takes no
        write lock, so readers never queue behind SQLite's one writer.
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
                    yield Transaction(connection, self.dialect)
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
        while True:
            try:
                connection = self._pool.get_nowait()
            except queue.Empty:
                return
            connection.close()
