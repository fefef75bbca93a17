"""One locked-down DuckDB connection per read, able to open one file: the granted relation.

The consumer's SQL runs in a connection that can reach nothing but the granted rows and
columns of one asset (``granted.GrantedFile``), whatever the SQL says. The recipe, in this
order (each setting is refused once external access is off or the configuration is locked):

1. a fresh in-memory connection with extension autoload/autoinstall off, ``threads`` and
   ``memory_limit`` set;
2. ``allowed_paths`` = the one granted file, ``temp_directory = ''`` (no spilling);
3. ``enable_external_access = false`` (no other file, no network, no extension install);
4. the view ``data`` over that file (created before the lock; it survives it);
5. ``lock_configuration = true`` (the query cannot ``SET`` its way out);
6. a watchdog that calls ``interrupt()`` when the read runs too long.

What such a connection can show about itself - its settings, its one view, its databases -
names only the granted file, in a private folder of its own: no asset path, no other file.
Engine errors are never shown to the consumer (a conversion error quotes cell values): the
consumer gets a generic reason, the provider's log the detail.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from connector.dataplane.errors import BadQuery, ResultTooLarge
from connector.dataplane.granted import GrantedFile
from connector.dataplane.sql_guard import GRANTED_VIEW

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one read (named here so operators can tune them in one place)."""

    # DuckDB memory per read; with temp_directory='' a query needing more fails instead of spilling.
    # Times DataPlaneLimits.max_concurrent_reads, this bounds the data plane's DuckDB memory.
    memory_limit: str = "1GB"
    # Threads per read: reads run concurrently, so each gets a small share of the machine.
    threads: int = 2
    # Wall-clock budget of one read (query plus streaming) before the watchdog interrupts it.
    timeout_seconds: float = 600.0
    # Rows per Arrow record batch streamed to the client: bounds server memory per read.
    batch_rows: int = 128 * 1024


def _blank_connection(limits: SandboxLimits) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(
        ":memory:",
        config={
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "threads": limits.threads,
            "memory_limit": limits.memory_limit,
        },
    )
    # A new database does part of its set-up on its first statement: do it ahead of the read.
    connection.execute("SELECT 1").fetchall()
    return connection


class BlankConnections:
    """Fresh, never-used in-memory DuckDB connections, opened ahead of time.

    Opening a DuckDB database costs tens of milliseconds; a background thread keeps a few
    blank ones ready so a read does not wait for it. Each connection serves exactly one read
    and is closed after it (nothing carries over between reads). Blank means: no file access
    has been granted yet and no view exists; the sandbox recipe is applied when it is taken.
    """

    # Connections kept ready: enough for a burst of concurrent reads, cheap when idle.
    READY = 4

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self._ready: queue.Queue[duckdb.DuckDBPyConnection] = queue.Queue(maxsize=self.READY)
        self._wanted = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._fill, name="duckdb-prewarm", daemon=True)
        self._thread.start()
        # Apps that never call close() still release their ready connections at exit.
        atexit.register(self.close)

    def _fill(self) -> None:
        while not self._closed:
            if self._ready.full():
                self._wanted.wait(timeout=1.0)
                self._wanted.clear()
                continue
            try:
                self._ready.put_nowait(_blank_connection(self.limits))
            except queue.Full:
                continue
            except duckdb.Error:
                _log.exception("could not open a DuckDB connection ahead of time")
                self._wanted.wait(timeout=1.0)

    def take(self) -> duckdb.DuckDBPyConnection:
        """A blank connection; the pool is topped up once a read ends (``refill``), so opening
        the next one does not compete with the read that just started."""
        try:
            return self._ready.get_nowait()
        except queue.Empty:
            return _blank_connection(self.limits)

    def refill(self) -> None:
        self._wanted.set()

    def wait_full(self, timeout: float) -> bool:
        """Whether the pool is full within ``timeout`` seconds (for measurements)."""
        deadline = time.monotonic() + timeout
        while not self._ready.full():
            if time.monotonic() > deadline:
                return False
            self._wanted.set()
            time.sleep(0.005)
        return True

    def close(self) -> None:
        self._closed = True
        self._wanted.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        while True:
            try:
                self._ready.get_nowait().close()
            except queue.Empty:
                return


class Sandbox:
    """A locked-down connection for one read. Use as a context manager; it closes itself."""

    def __init__(self, granted: GrantedFile, limits: SandboxLimits,
                 connections: BlankConnections | None = None) -> None:
        self.granted = granted
        self.limits = limits
        self._connections = connections
        self._connection = connections.take() if connections is not None else _blank_connection(limits)
        self._timer: threading.Timer | None = None
        self.interrupted = False
        path = exp.Literal.string(str(granted.path)).sql("duckdb")
        try:
            self._connection.execute("SET allowed_paths = ?", [[str(granted.path)]])
            self._connection.execute("SET temp_directory = ''")
            self._connection.execute("SET enable_external_access = false")
            self._connection.execute(
                f"CREATE VIEW {exp.to_identifier(GRANTED_VIEW).sql('duckdb')} AS"
                f" SELECT * FROM read_parquet({path})"
            )
            self._connection.execute("SET lock_configuration = true")
        except BaseException:
            self._connection.close()
            raise
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        def fire() -> None:
            self.interrupted = True
            _log.warning("read interrupted by the watchdog", extra={"timeout": self.limits.timeout_seconds})
            self._connection.interrupt()

        self._timer = threading.Timer(self.limits.timeout_seconds, fire)
        self._timer.daemon = True
        self._timer.start()

    def bind(self, sql: str) -> duckdb.DuckDBPyRelation:
        """Parse and bind the query (no data is read yet): its result types are known after this."""
        relation: duckdb.DuckDBPyRelation = self._run(lambda: self._connection.sql(sql))
        if relation is None:
            raise BadQuery("query_failed", "the query returns no result")
        return relation

    def result_schema(self, relation: duckdb.DuckDBPyRelation) -> pa.Schema:
        """The Arrow schema of the result, from a ``LIMIT 0`` run (no row is produced)."""
        schema: pa.Schema = self._run(lambda: relation.limit(0).to_arrow_table().schema)
        return schema

    def stream(self, relation: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
        """Start the bound query; batches are produced on demand."""
        return self._run(lambda: relation.to_arrow_reader(self.limits.batch_rows))

    def batches(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        """Iterate ``reader``, translating DuckDB failures into data-plane errors."""
        iterator = iter(reader)
        while True:
            batch = self._run(lambda: next(iterator, None))
            if batch is None:
                return
            yield batch

    def _run(self, action: Any) -> Any:
        try:
            return action()
        except duckdb.InterruptException:
            raise ResultTooLarge(
                "read_timeout", f"the read took longer than {self.limits.timeout_seconds:g} s and was stopped"
            ) from None
        except duckdb.OutOfMemoryException:
            raise ResultTooLarge(
                "read_memory", f"the query needs more than the {self.limits.memory_limit} a read may use"
            ) from None
        # DuckDB's Arrow reader reports an engine failure met while producing a batch as OSError
        except (duckdb.Error, pa.ArrowException, OSError) as error:
            if self.interrupted:
                raise ResultTooLarge("read_timeout", "the read took too long and was stopped") from None
            # The engine's message can quote cell values (a failed cast names the value): it goes
            # to the provider's log only; the consumer learns that the query failed, and its class.
            _log.warning("query failed in the engine: %s", _short(error), extra={"granted": self.granted.key})
            raise BadQuery("query_failed", f"the query failed in the engine ({_category(error)}); "
                           "the provider's log has the detail") from None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._connection.close()
        if self._connections is not None:
            self._connections.refill()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_CATEGORIES: tuple[tuple[type[Exception], str], ...] = (
    (duckdb.ParserException, "syntax"),
    (duckdb.BinderException, "unknown name or wrong type"),
    (duckdb.CatalogException, "unknown name"),
    (duckdb.PermissionException, "not permitted"),
    (duckdb.ConversionException, "value conversion"),
    (duckdb.InvalidInputException, "invalid input"),
    (duckdb.OutOfRangeException, "value out of range"),
    (duckdb.NotImplementedException, "not supported"),
)


def _category(error: Exception) -> str:
    """A fixed label for the class of an engine error (never its message)."""
    for kind, label in _CATEGORIES:
        if isinstance(error, kind):
            return label
    return "error"


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
