"""The locked-down DuckDB connection one read runs in, able to open one file: the granted relation.

The consumer's SQL runs in a connection that can reach nothing but the granted rows and
columns of one asset (``granted.GrantedFile``), whatever the SQL says: the recipe is
``connections.lock_down``. The connection comes from ``sandbox_pool`` (an idle one locked onto
the same file, or a blank one locked now) and goes back to it when the read ends; whether it
may be reused is decided here, from what the read ran and how it ended.

What such a connection can show about itself - its settings, its one view, its databases -
names only the granted file, in a private folder of its own: no asset path, no other file.
Engine errors are never shown to the consumer (a conversion error quotes cell values): the
consumer gets a generic reason, the provider's log the detail. A watchdog calls
``interrupt()`` when the read runs too long.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

from connector.dataplane.connections import BlankConnections, SandboxLimits, blank_connection
from connector.dataplane.errors import BadQuery, ResultTooLarge
from connector.dataplane.granted import GrantedFile
from connector.dataplane.sandbox_pool import SandboxPool
from connector.watchdog import Watchdog

__all__ = ["BlankConnections", "Sandbox", "SandboxLimits", "SandboxPool", "blank_connection"]

_log = logging.getLogger(__name__)

# Why a connection is not reusable before its query has run to the end.
_UNFINISHED = "no query finished"


class Sandbox:
    """A locked-down connection for one read. Use as a context manager; it gives itself back."""

    def __init__(self, granted: GrantedFile, limits: SandboxLimits, pool: SandboxPool, watchdog: Watchdog,
                 transfer_id: str | None = None) -> None:
        self.granted = granted
        self.limits = limits
        self._pool = pool
        self._connection = pool.take(granted, transfer_id)
        # Why the connection may not serve another read; None only once a single SELECT ran
        # to its end (see ``sandbox_pool`` for the rule).
        self._unclean: str | None = _UNFINISHED
        self._closed = False
        self._guard = threading.Lock()  # the watchdog never interrupts a connection given back
        self.interrupted = False
        self._alarm = watchdog.arm(limits.timeout_seconds, self._time_out)

    def _time_out(self) -> None:
        with self._guard:
            if self._closed:
                return
            self.interrupted = True
            _log.warning("read interrupted by the watchdog", extra={"timeout": self.limits.timeout_seconds})
            self._connection.interrupt()

    def bind(self, sql: str) -> duckdb.DuckDBPyRelation:
        """Parse and bind the query (no data is read yet): its result types are known after this."""
        statements = self._run(lambda: self._connection.extract_statements(sql))
        single_select = len(statements) == 1 and statements[0].type == duckdb.StatementType.SELECT
        self._unclean = _UNFINISHED if single_select else "not a single SELECT"
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
                if self._unclean == _UNFINISHED and not self.interrupted:
                    self._unclean = None  # one SELECT, produced to its end
                return
            yield batch

    def _run(self, action: Any) -> Any:
        try:
            return self._translated(action)
        except BaseException:
            self._unclean = "failed"  # whatever failed, the connection is not trusted again
            raise

    def _translated(self, action: Any) -> Any:
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
        """End the read: stop the watchdog, then give the connection back (it is reused only
        if the read left it clean) - once."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
        self._alarm.cancel()
        unclean = "interrupted" if self.interrupted else self._unclean
        self._pool.give_back(self.granted, self._connection, unclean)

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
