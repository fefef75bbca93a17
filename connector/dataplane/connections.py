"""DuckDB connections for consumer reads: opened ahead of time, then locked onto one file.

Opening an in-memory DuckDB costs about 12 ms of CPU here - more than a grouped aggregate over
a million rows - so a background thread keeps a few *blank* connections ready
(:class:`BlankConnections`) and :func:`lock_down` turns one into the sandbox of one granted
file. The recipe, in this order (each setting is refused once external access is off or the
configuration is locked):

1. a fresh in-memory connection with extension autoload/autoinstall off, ``threads`` and
   ``memory_limit`` set;
2. ``allowed_paths`` = the one granted file, ``temp_directory = ''`` (no spilling);
3. ``enable_external_access = false`` (no other file, no network, no extension install);
4. the view ``data`` over that file (created before the lock; it survives it);
5. ``lock_configuration = true`` (the query cannot ``SET`` its way out; only ``schema`` and
   ``search_path`` stay settable, which is why a connection that ran a ``SET`` is never reused,
   see ``sandbox_pool``).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from connector.dataplane.batch_sizing import DEFAULT_BATCH_BYTES
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
    # Two minutes: with DataPlaneLimits.max_concurrent_reads_per_consumer reads at once, one
    # consumer holds the engine for at most a few minutes; bigger work is read in slices.
    timeout_seconds: float = 120.0
    # Rows per Arrow record batch streamed to the client: bounds server memory per read (about
    # 8 MB for a 1 M-row read of three numeric columns); larger batches mean fewer messages,
    # fewer thread hand-offs and fewer system calls per byte sent.
    batch_rows: int = 512 * 1024
    # Bytes per record batch: wide rows get fewer rows per batch (``batch_sizing``), so a result
    # of hundreds of text columns is not built as half-gigabyte batches.
    batch_bytes: int = DEFAULT_BATCH_BYTES


def blank_connection(limits: SandboxLimits) -> duckdb.DuckDBPyConnection:
    """A new in-memory database with no file access granted yet and nothing in its catalog."""
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


def lock_down(connection: duckdb.DuckDBPyConnection, granted: GrantedFile) -> None:
    """Apply the recipe above to a blank connection: afterwards it can open ``granted`` only.
    The connection is closed if any step fails (a half-locked connection is never used)."""
    path = exp.Literal.string(str(granted.path)).sql("duckdb")
    try:
        connection.execute("SET allowed_paths = ?", [[str(granted.path)]])
        connection.execute("SET temp_directory = ''")
        connection.execute("SET enable_external_access = false")
        connection.execute(
            f"CREATE VIEW {exp.to_identifier(GRANTED_VIEW).sql('duckdb')} AS"
            f" SELECT * FROM read_parquet({path})"
        )
        connection.execute("SET lock_configuration = true")
    except BaseException:
        connection.close()
        raise


class BlankConnections:
    """Fresh, never-used in-memory DuckDB connections, opened ahead of time.

    A background thread keeps a few blank ones ready so a read that finds no reusable locked
    connection (``sandbox_pool``) does not wait for one to open. Blank means: no file access
    has been granted yet and no view exists; :func:`lock_down` is applied when it is taken.
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
                self._ready.put_nowait(blank_connection(self.limits))
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
            return blank_connection(self.limits)

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
