"""One locked-down DuckDB connection per read, over a view that holds only what is granted.

The recipe, in this order (each setting is refused once external access is off or the
configuration is locked, so the order matters):

1. a fresh in-memory connection with extension autoload/autoinstall off, ``threads`` and
   ``memory_limit`` set;
2. ``allowed_directories`` = the asset's folder only, ``temp_directory = ''`` (no spilling);
3. ``enable_external_access = false`` (no other file, no network, no extension install);
4. ``lock_configuration = true`` (the query cannot ``SET`` its way out);
5. the granted view: only permitted columns, only rows the row filters allow;
6. a watchdog that calls ``interrupt()`` when the read runs too long.

Two traps measured on DuckDB: ``allowed_directories`` also grants *write* access (keep data
folders read-only to the server process; we never run anything but a checked SELECT), and a raw
``read_parquet('<the asset file>')`` bypasses the view (``sql_guard`` refuses table functions).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from connector.dataplane.contract_state import AssetData
from connector.dataplane.errors import AccessDenied, BadQuery, DataPlaneError, ResultTooLarge
from connector.dataplane.sql_guard import GRANTED_VIEW

_log = logging.getLogger(__name__)

SOURCE_CATALOG = "asset_source"
ASSET_KINDS = frozenset({"parquet", "csv", "duckdb"})


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


class RowFilterLike(Protocol):
    """A row restriction from the agreement (``policies.RowFilter``): ``column operator value``."""

    @property
    def column(self) -> str: ...

    @property
    def operator(self) -> str: ...

    @property
    def value(self) -> object: ...


def _literal(value: object) -> exp.Expr:
    plain = getattr(value, "value", value)  # a policies Value wraps the lexical form
    if isinstance(plain, bool):
        return exp.Boolean(this=plain)
    if isinstance(plain, int | float):
        return exp.Literal.number(plain)
    if isinstance(plain, datetime | date):
        return exp.Literal.string(plain.isoformat())
    if isinstance(plain, str):
        return exp.Literal.string(plain)
    raise AccessDenied("row_filter_value", f"row filter value {plain!r} has a type we cannot apply")


def _values(value: object) -> list[object]:
    if isinstance(value, list | tuple | frozenset | set):
        return list(value)
    return [value]


_COMPARISONS: dict[str, type[exp.Expr]] = {
    "eq": exp.EQ, "neq": exp.NEQ, "lt": exp.LT, "lteq": exp.LTE, "gt": exp.GT, "gteq": exp.GTE,
}


def row_filter_condition(row_filter: RowFilterLike, source_columns: Sequence[str]) -> exp.Expr:
    """SQL for one row filter; an operator or column we cannot apply refuses the read (fail closed)."""
    by_lower = {name.lower(): name for name in source_columns}
    name = by_lower.get(row_filter.column.lower())
    if name is None:
        raise AccessDenied(
            "row_filter_column",
            f"the agreement filters rows on column {row_filter.column!r}, which the asset does not have",
        )
    column = exp.column(name, quoted=True)
    operator = row_filter.operator.rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    values = _values(row_filter.value)
    if operator in _COMPARISONS:
        if len(values) != 1:
            raise AccessDenied("row_filter_value", f"row filter {operator} on {name!r} needs one value")
        return _COMPARISONS[operator](this=column, expression=_literal(values[0]))
    if operator in ("isAnyOf", "isPartOf"):
        return exp.In(this=column, expressions=[_literal(v) for v in values])
    if operator == "isNoneOf":
        return exp.Not(this=exp.In(this=column, expressions=[_literal(v) for v in values]))
    raise AccessDenied(
        "row_filter_operator", f"the data plane cannot enforce row filter operator {operator!r} on {name!r}"
    )


def _source_relation(asset: AssetData) -> exp.Expr:
    path = exp.Literal.string(asset.path)
    if asset.kind == "parquet":
        return exp.Anonymous(this="read_parquet", expressions=[path])
    if asset.kind == "csv":
        return exp.Anonymous(
            this="read_csv",
            expressions=[path, exp.EQ(this=exp.column("header"), expression=exp.Boolean(this=True))],
        )
    if asset.kind == "duckdb":
        table = asset.table or ""
        return exp.table_(table, db="main", catalog=SOURCE_CATALOG, quoted=True)
    raise DataPlaneError("asset_kind", f"asset kind {asset.kind!r} is not one of {sorted(ASSET_KINDS)}")


def view_sql(
    asset: AssetData, columns: Sequence[str], filters: Sequence[RowFilterLike], source_columns: Sequence[str]
) -> str:
    """``CREATE VIEW data AS SELECT <granted columns> FROM <source> WHERE <row filters>``."""
    if not columns:
        raise AccessDenied("no_columns", "the agreement grants no column of this asset")
    select = exp.select(*(exp.column(name, quoted=True) for name in columns)).from_(_source_relation(asset))
    for row_filter in filters:
        select = select.where(row_filter_condition(row_filter, source_columns), copy=False)
    view = exp.to_identifier(GRANTED_VIEW)
    return f"CREATE VIEW {view.sql('duckdb')} AS {select.sql('duckdb')}"


def _check_asset(asset: AssetData, data_root: Path | None) -> Path:
    if asset.kind not in ASSET_KINDS:
        raise DataPlaneError("asset_kind", f"asset kind {asset.kind!r} is not one of {sorted(ASSET_KINDS)}")
    if asset.kind == "duckdb" and not asset.table:
        raise DataPlaneError("asset_table", "a duckdb asset must name its table")
    path = Path(asset.path)
    if not path.is_absolute():
        raise DataPlaneError("asset_path", "the asset's data path must be absolute")
    resolved = path.resolve()
    if data_root is not None and not resolved.is_relative_to(data_root.resolve()):
        raise AccessDenied("asset_path", "the asset's data lies outside the connector's data root")
    if not resolved.is_file():
        raise DataPlaneError("asset_missing", "the asset's data file is missing on the provider")
    return resolved


def _blank_connection(limits: SandboxLimits) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(
        ":memory:",
        config={
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "threads": limits.threads,
            "memory_limit": limits.memory_limit,
        },
    )


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
        try:
            connection = self._ready.get_nowait()
        except queue.Empty:
            connection = _blank_connection(self.limits)
        self._wanted.set()
        return connection

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

    def __init__(self, asset: AssetData, limits: SandboxLimits, data_root: Path | None = None,
                 connections: BlankConnections | None = None) -> None:
        self.asset = asset
        self.limits = limits
        path = _check_asset(asset, data_root)
        self._asset = AssetData(asset.kind, str(path), asset.table)
        folder = str(path.parent).rstrip(os.sep) + os.sep
        self._connection = connections.take() if connections is not None else _blank_connection(limits)
        self._source_columns: list[str] | None = None
        self._timer: threading.Timer | None = None
        self.interrupted = False
        try:
            self._connection.execute("SET allowed_directories = ?", [[folder]])
            self._connection.execute("SET temp_directory = ''")
            self._connection.execute("SET enable_external_access = false")
            if asset.kind == "duckdb":
                self._connection.execute(
                    f"ATTACH {exp.Literal.string(str(path)).sql('duckdb')} AS {SOURCE_CATALOG} (READ_ONLY)"
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

    def source_columns(self) -> list[str]:
        """The columns the asset's data has (before any restriction); Parquet from its footer."""
        if self._source_columns is None:
            if self._asset.kind == "parquet":
                try:
                    self._source_columns = list(pq.read_schema(self._asset.path).names)
                except (OSError, pa.ArrowInvalid) as error:
                    reason = f"the asset's Parquet file is unreadable: {error}"
                    raise DataPlaneError("asset_unreadable", reason) from None
            else:
                relation = exp.select(exp.Star()).from_(_source_relation(self._asset)).sql("duckdb")
                rows = self._run(lambda: self._connection.execute(f"DESCRIBE {relation}").fetchall())
                self._source_columns = [str(row[0]) for row in rows]
        return list(self._source_columns)

    def create_view(self, columns: Sequence[str], filters: Sequence[RowFilterLike],
                    source_columns: Sequence[str]) -> None:
        sql = view_sql(self._asset, columns, filters, source_columns)
        self._run(lambda: self._connection.execute(sql))

    def stream(self, sql: str) -> pa.RecordBatchReader:
        """Start the (already checked and regenerated) query; batches are produced on demand."""
        return self._run(lambda: self._connection.sql(sql).to_arrow_reader(self.limits.batch_rows))

    def batches(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        """Iterate ``reader``, translating DuckDB failures into data-plane errors."""
        iterator = iter(reader)
        while True:
            try:
                batch = self._run(lambda: next(iterator, None))
            except DataPlaneError:
                raise
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
        except duckdb.PermissionException as error:
            raise AccessDenied("sandbox", f"the sandbox refused an operation: {_short(error)}") from None
        except (duckdb.BinderException, duckdb.ParserException, duckdb.CatalogException,
                duckdb.ConversionException, duckdb.InvalidInputException, duckdb.TypeMismatchException,
                duckdb.NotImplementedException, duckdb.OutOfRangeException) as error:
            raise BadQuery("query_failed", f"the query failed: {_short(error)}") from None
        except duckdb.Error as error:
            if self.interrupted:
                raise ResultTooLarge("read_timeout", "the read took too long and was stopped") from None
            raise DataPlaneError("query_failed", f"the query failed: {_short(error)}") from None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._connection.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:300]
