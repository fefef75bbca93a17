"""The granted relation of a read, materialised once as its own Parquet file.

Isolation by construction: the connection that runs a consumer's SQL can open exactly one
file, and that file holds only what the agreement grants - the permitted columns and the rows
the row filters allow. Nothing else exists for that connection to name, however the SQL is
written: not the asset's file, not its folder, not another asset.

A granted file is written by the provider's own SQL (no consumer text in it) into a private
folder of its own (``0700``, one file per folder), keyed by the asset *version* (path, size,
modification time, inode), the projection and the row filters: grants with the same projection
over the same version share one file; a changed asset gets a new one. Files are read-only
(``0444``) and their identity is re-checked before each use: a file that changed since it was
written is thrown away and written again (a consumer connection may write to the one path it
may read - DuckDB's ``allowed_paths`` grants writing too - and the SQL checker refuses ``COPY``;
this check is the second line). The cache is bounded (entries and bytes) and evicts the least
recently used file that no read holds.

The whole view (a read with no SQL) needs no engine: it is the granted relation as it is. It
is served from a second copy of the same rows, an Arrow IPC file written from the granted
Parquet file on the first whole-view read (``whole_view``) in a private folder of its own
(``<key>.stream``, ``0700``, file ``0444``) that no consumer connection may open, and read
through a memory map: its record batches *are* the bytes of the Arrow stream a read sends, so
nothing is decoded or copied before the socket (decoding Parquet was two thirds of a whole-view
read's CPU). It lives and goes with its granted file, counts towards the cache's byte bound,
and its identity is re-checked before each use like the Parquet file's.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from connector.dataplane.batch_sizing import DEFAULT_BATCH_BYTES
from connector.dataplane.contract_state import AssetData
from connector.dataplane.errors import AccessDenied, DataPlaneError

_log = logging.getLogger(__name__)

SOURCE_CATALOG = "asset_source"
ASSET_KINDS = frozenset({"parquet", "csv", "duckdb"})
GRANTED_FILE = "granted.parquet"
STREAM_FILE = "granted.arrow"
# Rows per record batch of the whole view's Arrow copy. The bytes go out as they are over HTTP,
# where the size hardly matters; an Arrow Flight client receives each batch as one gRPC message,
# and reassembling 64 Ki-row messages cost it a quarter less CPU than 512 Ki-row ones here.
STREAM_BATCH_ROWS = 64 * 1024
# Granted SELECTs and asset schemas remembered (pure functions of their inputs; few grants).
_MAX_REMEMBERED = 512
_SELECTS: OrderedDict[tuple[object, ...], str] = OrderedDict()
_SELECTS_LOCK = threading.Lock()


class RowFilterLike(Protocol):
    """A row restriction from the agreement (``policies.RowFilter``): ``column operator value``."""

    @property
    def column(self) -> str: ...

    @property
    def operator(self) -> str: ...

    @property
    def value(self) -> object: ...


@dataclass(frozen=True)
class GrantedFile:
    """One materialised grant: the only file a consumer connection may open."""

    path: Path
    columns: tuple[str, ...]
    key: str


@dataclass(frozen=True)
class _Entry:
    granted: GrantedFile
    identity: tuple[int, int, int]  # size, mtime_ns, inode when written


def _literal(value: object) -> exp.Expr:
    from datetime import date, datetime

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
    "eq": exp.EQ,
    "neq": exp.NEQ,
    "lt": exp.LT,
    "lteq": exp.LTE,
    "gt": exp.GT,
    "gteq": exp.GTE,
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
        return exp.table_(asset.table or "", db="main", catalog=SOURCE_CATALOG, quoted=True)
    raise DataPlaneError("asset_kind", f"asset kind {asset.kind!r} is not one of {sorted(ASSET_KINDS)}")


def granted_select(
    asset: AssetData, columns: Sequence[str], filters: Sequence[RowFilterLike], source_columns: Sequence[str]
) -> str:
    """``SELECT <granted columns> FROM <source> WHERE <row filters>`` (provider SQL only).
    Remembered by its inputs: every read of a grant asks for the same text."""
    key = (asset.kind, asset.path, asset.table, tuple(columns), tuple(source_columns),
           tuple((f.column, f.operator, repr(f.value)) for f in filters))
    with _SELECTS_LOCK:
        known = _SELECTS.get(key)
    if known is not None:
        return known
    if not columns:
        raise AccessDenied("no_columns", "the agreement grants no column of this asset")
    select = exp.select(*(exp.column(name, quoted=True) for name in columns)).from_(_source_relation(asset))
    for row_filter in filters:
        select = select.where(row_filter_condition(row_filter, source_columns), copy=False)
    text = select.sql("duckdb")
    with _SELECTS_LOCK:
        _SELECTS[key] = text
        while len(_SELECTS) > _MAX_REMEMBERED:
            _SELECTS.popitem(last=False)
    return text


def check_asset(asset: AssetData, data_root: Path | None) -> AssetData:
    """The asset with its path resolved; refused when outside the data root or missing."""
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
    return AssetData(asset.kind, str(resolved), asset.table)


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _provider_connection(readable: Sequence[str], writable: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """A connection for the provider's own SQL, still confined to the files it needs."""
    connection = duckdb.connect(
        ":memory:",
        config={
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "threads": 2,
        },
    )
    try:
        connection.execute("SET allowed_paths = ?", [[*readable, *writable]])
        connection.execute("SET enable_external_access = false")
    except BaseException:
        connection.close()
        raise
    return connection


@contextmanager
def _source(asset: AssetData, writable: Sequence[str] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
    readable = [asset.path] + ([asset.path + ".wal"] if asset.kind == "duckdb" else [])
    connection = _provider_connection(readable, writable)
    try:
        if asset.kind == "duckdb":
            connection.execute(
                f"ATTACH {exp.Literal.string(asset.path).sql('duckdb')} AS {SOURCE_CATALOG} (READ_ONLY)"
            )
        yield connection
    finally:
        connection.close()


@dataclass
class WholeView:
    """The whole granted relation from its Arrow IPC copy, mapped into memory.

    ``batches`` are its record batches (views of the map: no copy, no decoding), for Arrow
    Flight and for the encoders. ``stream`` is the same data as an Arrow IPC *stream*, ready to
    send: an IPC file holds, between its 8-byte magic and its footer, exactly the bytes the
    stream writer produces (schema, batches, end marker), so an HTTP read sends that slice as it
    is, with a ``Content-Length``. A batch's buffers keep the mapping alive after ``close``."""

    schema: pa.Schema
    rows: int
    stream: memoryview
    batches: Generator[pa.RecordBatch]
    mapped: pa.MemoryMappedFile

    def close(self) -> None:
        self.batches.close()
        with contextlib.suppress(BufferError):  # a slice still being sent: the view goes with it
            self.stream.release()
        self.mapped.close()


# An Arrow IPC file ends with its footer, the footer's length (int32) and the 6-byte magic.
_IPC_MAGIC = b"ARROW1"
_IPC_TRAILER = 4 + len(_IPC_MAGIC)
# ... and its stream part with the end-of-stream marker (continuation, then a zero length).
_IPC_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def _mapped_view(path: Path, rows: int) -> WholeView:
    try:
        mapped = pa.memory_map(str(path))
        reader = pa.ipc.open_file(mapped)
        whole = memoryview(mapped.read_buffer())
        footer = int.from_bytes(whole[-_IPC_TRAILER:-len(_IPC_MAGIC)], "little", signed=True)
        end = len(whole) - _IPC_TRAILER - footer
        if (bytes(whole[:len(_IPC_MAGIC)]) != _IPC_MAGIC or not 16 <= end <= len(whole)
                or bytes(whole[end - 8:end]) != _IPC_END):
            raise pa.ArrowInvalid("not an Arrow IPC file whose stream ends with the end marker")
    except (OSError, pa.ArrowException, ValueError):
        _log.exception("granted stream file unreadable")
        raise DataPlaneError("asset_unreadable", "the granted data could not be read") from None

    def batches() -> Generator[pa.RecordBatch]:
        try:
            for index in range(reader.num_record_batches):
                yield reader.get_batch(index)
        except (OSError, pa.ArrowException):
            _log.exception("granted stream file unreadable while streaming")
            raise DataPlaneError("asset_unreadable", "the granted data could not be read") from None

    stream = whole[8:end]
    whole.release()
    return WholeView(reader.schema, rows, stream, batches(), mapped)


class GrantedFiles:
    """Materialises granted relations into a private folder and hands out their paths."""

    # Distinct grants kept on disk; each costs a file the size of the granted data.
    MAX_ENTRIES = 64

    def __init__(self, root: Path | None = None, max_bytes: int = 16 * 1024**3) -> None:
        self._owned = root is None
        self.root = Path(tempfile.mkdtemp(prefix="sluis-granted-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._in_use: dict[str, int] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._columns: OrderedDict[tuple[object, ...], tuple[str, ...]] = OrderedDict()
        # Arrow IPC copies of granted files, for whole-view reads: key -> (path, identity).
        self._streams: dict[str, tuple[Path, tuple[int, int, int], int]] = {}
        # Told the key of every granted file that goes (evicted, changed, rewritten, closed), so
        # whoever keeps connections open on it (``sandbox_pool``) drops them at once.
        self.on_drop: Callable[[str], object] | None = None
        if self._owned:  # a temporary folder of ours goes with the process even without close()
            atexit.register(shutil.rmtree, self.root, True)

    # --- facts about the asset ----------------------------------------------------------------
    def source_columns(self, asset: AssetData) -> list[str]:
        """The columns the asset's data has (before any restriction); remembered per asset
        *version* (path, size, modification time, inode), so a changed file is read again."""
        try:
            version = (asset.kind, asset.path, asset.table, *_identity(Path(asset.path)))
        except OSError:
            raise DataPlaneError("asset_missing", "the asset's data file is missing") from None
        with self._lock:
            known = self._columns.get(version)
        if known is not None:
            return list(known)
        columns = self._read_columns(asset)
        with self._lock:
            self._columns[version] = tuple(columns)
            while len(self._columns) > _MAX_REMEMBERED:
                self._columns.popitem(last=False)
        return columns

    def _read_columns(self, asset: AssetData) -> list[str]:
        if asset.kind == "parquet":
            try:
                return list(pq.read_schema(asset.path).names)
            except (OSError, pa.ArrowInvalid):
                _log.exception("unreadable Parquet asset")
                raise DataPlaneError("asset_unreadable", "the asset's Parquet file is unreadable") from None
        relation = exp.select(exp.Star()).from_(_source_relation(asset)).sql("duckdb")
        try:
            with _source(asset) as connection:
                return [str(row[0]) for row in connection.execute(f"DESCRIBE {relation}").fetchall()]
        except duckdb.Error:
            _log.exception("unreadable asset")
            raise DataPlaneError("asset_unreadable", "the asset's data is unreadable") from None

    # --- the granted files --------------------------------------------------------------------
    @contextmanager
    def granted(
        self,
        asset: AssetData,
        columns: Sequence[str],
        filters: Sequence[RowFilterLike],
        source_columns: Sequence[str],
    ) -> Iterator[GrantedFile]:
        """The granted file for this grant, held (not evicted) while the ``with`` block runs."""
        select = granted_select(asset, columns, filters, source_columns)
        key = self._key(asset, select)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
            self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            with key_lock:
                entry = self._valid(key)
                if entry is None:
                    entry = self._write(key, asset, select, tuple(columns))
            yield entry.granted
        finally:
            with self._lock:
                self._in_use[key] -= 1
                if not self._in_use[key]:
                    del self._in_use[key]
            self._evict()

    def whole_view(self, granted: GrantedFile, batch_rows: int = STREAM_BATCH_ROWS) -> WholeView:
        """The granted relation as it is, from its Arrow IPC copy (written now if there is none
        or it changed). Call inside :meth:`granted`, which holds the file; close it when done."""
        key = granted.key
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            known = self._valid_stream(key)
            if known is None:
                known = self._write_stream(granted, batch_rows)
        return _mapped_view(*known)

    def _valid_stream(self, key: str) -> tuple[Path, int] | None:
        with self._lock:
            known = self._streams.get(key)
        if known is None:
            return None
        path, identity, rows = known
        try:
            current = _identity(path)
        except OSError:
            current = None
        if current == identity:
            return path, rows
        _log.warning("granted stream file changed after it was written; writing it again", extra={"key": key})
        with self._lock:
            self._streams.pop(key, None)
        shutil.rmtree(path.parent, ignore_errors=True)
        return None

    def _write_stream(self, granted: GrantedFile, batch_rows: int) -> tuple[Path, int]:
        folder = self.root / f"{granted.key}.stream"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700)
        partial = folder / f".{uuid.uuid4().hex}.partial"
        target = folder / STREAM_FILE
        rows = 0
        try:
            parquet = pq.ParquetFile(granted.path)
            try:
                rows_per_batch = _rows_per_batch(parquet.metadata, batch_rows)
                with pa.OSFile(str(partial), "wb") as sink, \
                        pa.ipc.new_file(sink, parquet.schema_arrow) as writer:
                    for batch in parquet.iter_batches(batch_size=rows_per_batch, use_threads=True):
                        writer.write_batch(batch)
                        rows += batch.num_rows
            finally:
                parquet.close()
        except (OSError, pa.ArrowException):
            shutil.rmtree(folder, ignore_errors=True)
            _log.exception("could not write the granted stream file")
            raise DataPlaneError("asset_unreadable", "the granted data could not be prepared") from None
        os.chmod(partial, 0o444)
        os.replace(partial, target)
        with self._lock:
            self._streams[granted.key] = (target, _identity(target), rows)
        return target, rows

    def _remove(self, key: str, entry: _Entry) -> None:
        """Delete a granted file and its stream copy (the caller has dropped the entry)."""
        with self._lock:
            self._streams.pop(key, None)
        shutil.rmtree(entry.granted.path.parent, ignore_errors=True)
        shutil.rmtree(self.root / f"{key}.stream", ignore_errors=True)

    def _key(self, asset: AssetData, select: str) -> str:
        size, mtime, inode = _identity(Path(asset.path))
        document = [asset.kind, asset.path, asset.table, size, mtime, inode, select]
        return hashlib.sha256(json.dumps(document).encode()).hexdigest()[:40]

    def _valid(self, key: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            return None
        try:
            current = _identity(entry.granted.path)
        except OSError:
            current = None
        if current != entry.identity:
            _log.warning("granted file changed after it was written; writing it again", extra={"key": key})
            with self._lock:
                self._entries.pop(key, None)
            self._dropped(key)
            self._remove(key, entry)
            return None
        return entry

    def _dropped(self, key: str) -> None:
        if self.on_drop is not None:
            self.on_drop(key)

    def _write(self, key: str, asset: AssetData, select: str, columns: tuple[str, ...]) -> _Entry:
        folder = self.root / key
        self._dropped(key)  # nothing may stay open on a file about to be replaced
        with self._lock:
            self._streams.pop(key, None)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(self.root / f"{key}.stream", ignore_errors=True)
        folder.mkdir(mode=0o700)
        partial = folder / f".{uuid.uuid4().hex}.partial"
        target = folder / GRANTED_FILE
        copy = (
            f"COPY ({select}) TO {exp.Literal.string(str(partial)).sql('duckdb')}"
            " (FORMAT parquet, COMPRESSION uncompressed, USE_TMP_FILE false)"
        )
        try:
            with _source(asset, writable=[str(partial)]) as connection:
                connection.execute(copy)
        except duckdb.Error:
            shutil.rmtree(folder, ignore_errors=True)
            _log.exception("could not materialise the granted relation")
            raise DataPlaneError("asset_unreadable", "the granted data could not be prepared") from None
        os.chmod(partial, 0o444)
        os.replace(partial, target)
        entry = _Entry(GrantedFile(target, columns, key), _identity(target))
        with self._lock:
            self._entries[key] = entry
        return entry

    def _evict(self) -> None:
        doomed: list[_Entry] = []
        with self._lock:
            total = sum(entry.identity[0] for entry in self._entries.values())
            total += sum(identity[0] for _, identity, _ in self._streams.values())
            for key in list(self._entries):
                if len(self._entries) <= self.MAX_ENTRIES and total <= self.max_bytes:
                    break
                if key in self._in_use:
                    continue
                entry = self._entries.pop(key)
                self._key_locks.pop(key, None)
                total -= entry.identity[0]
                stream = self._streams.get(key)
                total -= stream[1][0] if stream is not None else 0
                doomed.append(entry)
        for entry in doomed:
            self._dropped(entry.granted.key)
            self._remove(entry.granted.key, entry)

    def close(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            self._dropped(entry.granted.key)
            self._remove(entry.granted.key, entry)
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)


def _rows_per_batch(metadata: pq.FileMetaData, batch_rows: int) -> int:
    """``batch_rows``, or fewer when the granted rows are wide: a batch of the Arrow copy holds
    about ``DEFAULT_BATCH_BYTES`` at most, by the file's own (uncompressed) bytes per row."""
    groups = [metadata.row_group(index) for index in range(metadata.num_row_groups)]
    decoded = sum(max(int(group.total_byte_size), 0) for group in groups)
    per_row = max(1, decoded // max(int(metadata.num_rows), 1))
    return max(1, min(batch_rows, DEFAULT_BATCH_BYTES // per_row))

