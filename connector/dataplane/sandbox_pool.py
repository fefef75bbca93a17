"""Locked-down connections kept per granted file, and reused only when nothing can carry over.

Opening and closing the in-memory DuckDB of a read cost about 15 ms of CPU, more than the
query itself for a grouped aggregate over a million rows. So a read's connection, already
locked onto one granted file (``connections.lock_down``), is kept for the next read of the
*same* granted file - the same asset version, projection and row filters, hence the same
bytes - instead of being closed.

What keeps reads apart is the rule for giving a connection back. It is reused only when

* the read ran exactly **one statement, which DuckDB's own parser classifies as SELECT**
  (``Sandbox.bind`` asks it). Everything that leaves state in a connection is a statement of
  another kind: ``CREATE`` (temporary tables, views, macros, sequences, types, schemas,
  indexes), ``PREPARE``, ``SET`` / ``SET VARIABLE`` / ``USE`` (``schema`` and
  ``search_path`` are the two settings the configuration lock leaves open), ``ATTACH``,
  ``BEGIN``, ``PRAGMA``. With the SQL checker on, the engine only ever sees one SELECT
  regenerated from the checked tree; with it off (the test-only switch), any other statement
  makes the connection single-use;
* the read **finished normally**: its result was produced to the end, without an engine
  error, a cap or the watchdog (a half-consumed result is never left in a connection);
* **no transaction is open** (``BEGIN`` then ``ROLLBACK`` succeed) and the random seed is
  reset from the operating system's generator (``setseed`` is a SELECT). Both are asked of
  the engine only after a read whose SQL the checker did not regenerate (the test-only switch
  ``DataPlane.check_sql``): a checked read is one SELECT built from an allow-list that holds
  no statement opening a transaction and no function reading or setting the random state
  (``random``, ``setseed``, ``uuid``, ``USING SAMPLE`` ... are refused, tested), so after it
  there is nothing to reset, and the round trip (a third of a small read's fixed cost) is saved;

otherwise it is closed. Idle connections are bounded (per granted file and in all), expire
after ``IDLE_SECONDS``, and are dropped at once when their granted file goes (evicted,
changed, rewritten) or a transfer that used them is revoked (``discard_transfer``). A pooled
connection carries no authority: every read passes every check (token, proof, contract state,
policy, read count) *before* a connection is taken, so a revoked transfer is refused whether
or not a connection for its file is idle here.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from connector.dataplane.connections import BlankConnections, SandboxLimits, lock_down
from connector.dataplane.granted import GrantedFile

_log = logging.getLogger(__name__)


@dataclass
class _Idle:
    connection: duckdb.DuckDBPyConnection
    since: float


@dataclass
class PoolStats:
    """How connections were obtained and why they were not reused (for tests and benchmarks)."""

    opened: int = 0
    reused: int = 0
    returned: int = 0
    discarded: int = 0
    expired: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class SandboxPool:
    """Idle locked connections per granted file (by ``GrantedFile.key``)."""

    # Idle connections kept for one granted file: as many as reads of it usually overlap.
    MAX_IDLE_PER_FILE = 2
    # Idle connections kept in all: each holds a small DuckDB instance (a few MB when idle).
    MAX_IDLE = 8
    # An idle connection older than this is closed rather than reused.
    IDLE_SECONDS = 60.0
    # Transfers whose granted files are remembered for revocation (least recently reading go
    # first; a forgotten one only loses the early close: no connection carries authority).
    MAX_TRANSFERS = 10_000

    def __init__(self, limits: SandboxLimits, blanks: BlankConnections | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.blanks = blanks or BlankConnections(limits)
        self._owns_blanks = blanks is None
        self._clock = clock
        self._idle: dict[str, list[_Idle]] = {}
        self._used_by: OrderedDict[str, set[str]] = OrderedDict()  # transfer id -> keys of files it read
        self._lock = threading.Lock()
        self._closed = False
        self.stats = PoolStats()

    def take(self, granted: GrantedFile, transfer_id: str | None = None) -> duckdb.DuckDBPyConnection:
        """A connection locked onto ``granted``: an idle one if any, else a blank one locked now."""
        doomed: list[duckdb.DuckDBPyConnection] = []
        connection = None
        with self._lock:
            if transfer_id is not None:
                self._used_by.setdefault(transfer_id, set()).add(granted.key)
                self._used_by.move_to_end(transfer_id)
                while len(self._used_by) > self.MAX_TRANSFERS:
                    self._used_by.popitem(last=False)
            doomed = self._expire_locked()
            idle = self._idle.get(granted.key)
            if idle:
                connection = idle.pop().connection
                if not idle:
                    del self._idle[granted.key]
                self.stats.reused += 1
        _close_all(doomed)
        if connection is not None:
            return connection
        fresh = self.blanks.take()
        lock_down(fresh, granted)
        with self._lock:
            self.stats.opened += 1
        return fresh

    def give_back(self, granted: GrantedFile, connection: duckdb.DuckDBPyConnection,
                  unclean: str | None, reset: bool = True) -> None:
        """Keep ``connection`` for the next read of ``granted`` if the read left it clean
        (``unclean`` is None and, with ``reset``, the checks below pass); close it otherwise.
        ``reset=False`` is for a read of checked SQL only (see the module's docstring)."""
        reason = unclean or (_leftover(connection) if reset else None)
        if reason is None:
            with self._lock:
                idle = self._idle.setdefault(granted.key, [])
                total = sum(len(items) for items in self._idle.values())
                if not self._closed and len(idle) < self.MAX_IDLE_PER_FILE and total < self.MAX_IDLE:
                    idle.append(_Idle(connection, self._clock()))
                    self.stats.returned += 1
                    return
                if not idle:
                    del self._idle[granted.key]
            reason = "pool full"
        with self._lock:
            self.stats.discarded += 1
            self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        connection.close()
        self.blanks.refill()

    def discard_file(self, key: str) -> int:
        """Close the idle connections of one granted file (it was evicted, changed or rewritten)."""
        with self._lock:
            doomed = [item.connection for item in self._idle.pop(key, [])]
        _close_all(doomed)
        return len(doomed)

    def discard_transfer(self, transfer_id: str) -> int:
        """Close the idle connections of every granted file a revoked transfer read."""
        with self._lock:
            keys = self._used_by.pop(transfer_id, set())
        return sum(self.discard_file(key) for key in keys)

    def idle_count(self, key: str | None = None) -> int:
        with self._lock:
            if key is not None:
                return len(self._idle.get(key, []))
            return sum(len(items) for items in self._idle.values())

    def _expire_locked(self) -> list[duckdb.DuckDBPyConnection]:
        cutoff = self._clock() - self.IDLE_SECONDS
        doomed: list[duckdb.DuckDBPyConnection] = []
        for key in list(self._idle):
            kept = [item for item in self._idle[key] if item.since >= cutoff]
            doomed.extend(item.connection for item in self._idle[key] if item.since < cutoff)
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]
        self.stats.expired += len(doomed)
        return doomed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            doomed = [item.connection for items in self._idle.values() for item in items]
            self._idle.clear()
            self._used_by.clear()
        _close_all(doomed)
        if self._owns_blanks:
            self.blanks.close()


def _leftover(connection: duckdb.DuckDBPyConnection) -> str | None:
    """Why a connection whose read ran one SELECT still may not be reused (None: it may).
    An open transaction would carry the read's view of the catalog into the next one; the
    random seed is drawn afresh so one read cannot set or learn another's ``random()``."""
    seed = secrets.randbelow(2**52) / 2**52
    try:
        # One round trip: BEGIN fails if the read left a transaction open; the seed (client
        # state, not transactional) survives the ROLLBACK.
        connection.execute(f"BEGIN TRANSACTION; SELECT setseed({seed!r}); ROLLBACK")
    except duckdb.TransactionException:
        return "open transaction"
    except duckdb.Error:
        return "seed not reset"
    return None


def _close_all(connections: list[duckdb.DuckDBPyConnection]) -> None:
    for connection in connections:
        try:
            connection.close()
        except duckdb.Error:
            _log.warning("closing an idle DuckDB connection failed", exc_info=True)
