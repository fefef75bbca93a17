"""What a pushed file may decode to, found from its metadata before anything is decompressed.

A push is bounded in bytes as it arrives, but its Arrow IPC record batches may be compressed
(LZ4 frame or ZSTD, per buffer), and a few kilobytes of compressed zeros decode to gigabytes:
checking that the stream reads would then decompress all of it (a decompression bomb). Each
compressed IPC buffer starts with its decoded length (8 bytes, little-endian; -1 when the
buffer was left uncompressed), and each batch's metadata lists its buffers and rows. This module
reads those from the message metadata (a FlatBuffers ``Message``, read here with bounds checks on
every offset) and sums them *before* a batch is decoded, so an over-limit stream is refused
having decompressed nothing. A Parquet file is checked against what its footer declares (rows,
row groups, uncompressed bytes); its pages are not decoded here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

#: Bytes a pushed file may decode to in all (no more than the largest push taken uncompressed).
MAX_DECODED_BYTES: Final = 8 * 1024**3
#: Bytes one record batch (or Parquet row group) may decode to: what checking it holds in memory.
MAX_BATCH_DECODED_BYTES: Final = 1024**3
#: Rows a pushed file may hold in all.
MAX_ROWS: Final = 2**32
#: Record batches (or row groups) a pushed file may hold.
MAX_BATCHES: Final = 1_000_000

# FlatBuffers ``MessageHeader`` union tags (Arrow's Message.fbs).
_DICTIONARY_BATCH: Final = 2
_RECORD_BATCH: Final = 3


class OverLimit(ValueError):
    """The file decodes to more than a limit allows; the message names the limit."""


@dataclass(frozen=True)
class Limits:
    decoded_bytes: int = MAX_DECODED_BYTES
    batch_decoded_bytes: int = MAX_BATCH_DECODED_BYTES
    rows: int = MAX_ROWS
    batches: int = MAX_BATCHES


class _Table:
    """A FlatBuffers table in ``data`` at ``position``; every read is bounds-checked."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position
        self.vtable = position - _unpack("<i", data, position)

    def _field(self, index: int) -> int | None:
        size = _unpack("<H", self.data, self.vtable)
        if 4 + 2 * index + 2 > size:
            return None
        offset = _unpack("<H", self.data, self.vtable + 4 + 2 * index)
        return None if offset == 0 else self.position + offset

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        return default if at is None else _unpack(fmt, self.data, at)

    def table(self, index: int) -> _Table | None:
        at = self._field(index)
        return None if at is None else _Table(self.data, at + _unpack("<I", self.data, at))

    def structs(self, index: int, size: int) -> list[int]:
        """Positions of the elements of a vector of ``size``-byte structs."""
        at = self._field(index)
        if at is None:
            return []
        start = at + _unpack("<I", self.data, at)
        count = _unpack("<I", self.data, start)
        if start + 4 + count * size > len(self.data):
            raise ValueError("a vector runs past the message metadata")
        return [start + 4 + i * size for i in range(count)]


def _unpack(fmt: str, data: bytes, at: int) -> int:
    if at < 0 or at + struct.calcsize(fmt) > len(data):
        raise ValueError("an offset points outside the message metadata")
    value: int = struct.unpack_from(fmt, data, at)[0]
    return value


def _batch_size(metadata: bytes, body: pa.Buffer | None) -> tuple[int, int] | None:
    """Rows and decoded bytes of a record or dictionary batch message (``None`` for others)."""
    message = _Table(metadata, _unpack("<I", metadata, 0))
    kind = message.scalar(1, "<B")
    header = message.table(2)
    if header is None or kind not in (_RECORD_BATCH, _DICTIONARY_BATCH):
        return None
    batch = header if kind == _RECORD_BATCH else header.table(1)
    if batch is None:
        return None
    rows = batch.scalar(0, "<q")
    compressed = batch.table(3) is not None
    raw = b"" if body is None else memoryview(body).cast("B")
    decoded = 0
    for element in batch.structs(2, 16):
        offset, length = struct.unpack_from("<qq", metadata, element)
        if offset < 0 or length < 0 or offset + length > len(raw):
            raise ValueError("a buffer lies outside the message body")
        if compressed and length >= 8:
            declared = struct.unpack_from("<q", raw, offset)[0]
            decoded += length - 8 if declared == -1 else max(declared, 0)
        else:
            decoded += length
    return rows, decoded


def check_arrow_stream(path: Path, limits: Limits = Limits()) -> None:
    """Raise :class:`OverLimit` when the IPC stream at ``path`` decodes past ``limits``
    (``ValueError``/``ArrowException`` when its messages are malformed); nothing is decompressed."""
    total_rows = total_bytes = batches = 0
    with pa.memory_map(str(path)) as source:
        reader = ipc.MessageReader.open_stream(source)
        while True:
            try:
                message = reader.read_next_message()
            except StopIteration:
                return
            size = _batch_size(message.metadata.to_pybytes(), message.body)
            if size is None:
                continue
            rows, decoded = size
            batches += 1
            total_rows += max(rows, 0)
            total_bytes += decoded
            if decoded > limits.batch_decoded_bytes:
                raise OverLimit(f"a record batch decodes to {decoded} bytes; at most"
                                f" {limits.batch_decoded_bytes} per batch")
            _check_totals(total_bytes, total_rows, batches, limits)


def check_parquet(path: Path, limits: Limits = Limits()) -> None:
    """Raise :class:`OverLimit` when the Parquet footer at ``path`` declares more than ``limits``."""
    metadata = pq.read_metadata(path)
    total = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        size = sum(max(group.column(c).total_uncompressed_size, 0) for c in range(group.num_columns))
        if size > limits.batch_decoded_bytes:
            raise OverLimit(f"a row group decodes to {size} bytes; at most {limits.batch_decoded_bytes}"
                            " per row group")
        total += size
        if total > limits.decoded_bytes:
            break
    _check_totals(total, metadata.num_rows, metadata.num_row_groups, limits)


def _check_totals(decoded: int, rows: int, batches: int, limits: Limits) -> None:
    if decoded > limits.decoded_bytes:
        raise OverLimit(f"the data decodes to more than {limits.decoded_bytes} bytes")
    if rows > limits.rows:
        raise OverLimit(f"the data holds more than {limits.rows} rows")
    if batches > limits.batches:
        raise OverLimit(f"the data holds more than {limits.batches} batches")
