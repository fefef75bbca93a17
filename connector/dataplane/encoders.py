"""Turn a stream of Arrow record batches into response bytes, one batch at a time.

Memory stays bounded by one batch (plus a Parquet row group's encoding buffer): nothing is
materialised whole. Arrow IPC stream is the default (zero parsing on the job's side); Parquet
and CSV are chosen with ``Accept``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from connector.dataplane.errors import DataPlaneError

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
CSV = "text/csv"
_ALIASES = {
    ARROW_STREAM: ARROW_STREAM,
    "application/vnd.apache.arrow": ARROW_STREAM,
    PARQUET: PARQUET,
    "application/x-parquet": PARQUET,
    "application/parquet": PARQUET,
    CSV: CSV,
}
SUPPORTED_MEDIA_TYPES = (ARROW_STREAM, PARQUET, CSV)


class NotAcceptable(DataPlaneError):
    status = 406
    title = "Not acceptable"


def negotiate(accept: str | None) -> str:
    """The media type to answer with: the first supported one ``Accept`` lists (default Arrow)."""
    if not accept:
        return ARROW_STREAM
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")[:32]):
        fields = [field.strip() for field in part.split(";")]
        media = fields[0].lower()
        quality = 1.0
        for parameter in fields[1:]:
            if parameter.startswith("q="):
                try:
                    quality = float(parameter[2:])
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, media))
    for _, _, media in sorted(ranked):
        if media in ("*/*", "application/*"):
            return ARROW_STREAM
        if media in _ALIASES:
            return _ALIASES[media]
    raise NotAcceptable(
        "not_acceptable", f"the data plane answers with one of {', '.join(SUPPORTED_MEDIA_TYPES)}"
    )


def check_encodable(schema: pa.Schema, media_type: str) -> None:
    """Refuse (406) a result ``media_type`` cannot carry, before any byte is sent and before the
    read is counted: each column is tried on one null value of its type (CSV has no lists,
    structs, maps, intervals or bytes; Parquet no intervals or unions)."""
    if media_type == ARROW_STREAM:
        return
    for field in schema:
        if media_type == CSV and _is_binary(field.type):
            # a null encodes, but bytes that are not UTF-8 fail mid-stream: refuse the type itself
            raise NotAcceptable(
                "not_acceptable",
                f"column {field.name!r} has type {field.type} (bytes), which {media_type} cannot carry; "
                f"ask for {ARROW_STREAM} or {PARQUET}",
            )
        sample = pa.table({field.name: pa.nulls(1, field.type)})
        try:
            for _ in encode(sample.schema, iter(sample.to_batches()), media_type):
                pass
        except (pa.ArrowException, ValueError, TypeError):
            raise NotAcceptable(
                "not_acceptable",
                f"column {field.name!r} has type {field.type}, which {media_type} cannot carry; "
                f"ask for {ARROW_STREAM} or cast the column",
            ) from None


def _is_binary(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type)
        or pa.types.is_fixed_size_binary(data_type) or pa.types.is_binary_view(data_type)
    )


class _Chunks:
    """A write-only file for pyarrow writers that hands over what was written since last time."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        if not self._parts:
            return b""
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts.clear()
        return data


# Largest piece handed to the HTTP server at once: small enough that the socket usually takes
# it whole (a piece the socket cannot take is copied into the server's write buffer), large
# enough that the per-piece overhead (a thread hop, a chunk header) stays negligible.
MAX_PIECE_BYTES = 1024 * 1024
# Metadata, continuation markers and padding are gathered into one piece up to this size.
_SMALL_BYTES = 64 * 1024


class _Pieces:
    """A pyarrow sink that keeps what it is given *without copying it*: pyarrow's IPC writer
    hands over each body buffer of a record batch as the batch's own Arrow buffer, so the
    bytes go from DuckDB's result to the socket with no serialisation copy in between."""

    def __init__(self) -> None:
        self._parts: list[memoryview] = []
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)  # an Arrow buffer exports its memory: no copy
        self._parts.append(view)
        return view.nbytes

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> Iterator[bytes | memoryview]:
        """What was written since last time: small parts gathered, large ones in slices."""
        small: list[memoryview] = []
        size = 0
        for part in self._parts:
            if part.nbytes < _SMALL_BYTES:
                small.append(part)
                size += part.nbytes
                if size >= _SMALL_BYTES:
                    yield b"".join(small)
                    small, size = [], 0
                continue
            if small:
                yield b"".join(small)
                small, size = [], 0
            flat = part.cast("B") if part.ndim != 1 or part.format != "B" else part
            for start in range(0, flat.nbytes, MAX_PIECE_BYTES):
                yield flat[start:start + MAX_PIECE_BYTES]
        if small:
            yield b"".join(small)
        self._parts.clear()


def _arrow_stream(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[bytes | memoryview]:
    """The IPC stream (schema message, one message per batch, end marker) written by pyarrow
    into a sink that keeps references to the batches' buffers: no copy of the data is made
    before the HTTP server's own framing."""
    sink = _Pieces()
    writer = pa.ipc.new_stream(sink, schema)
    yield from sink.take()
    for batch in batches:
        writer.write_batch(batch)
        yield from sink.take()
    writer.close()
    yield from sink.take()


def encode(
    schema: pa.Schema, batches: Iterator[pa.RecordBatch], media_type: str
) -> Iterator[bytes | memoryview]:
    """Yield the encoded stream: header, one chunk per batch, then the trailer."""
    if media_type == ARROW_STREAM:
        yield from _arrow_stream(schema, batches)
        return
    sink = _Chunks()
    writer: pq.ParquetWriter | pa_csv.CSVWriter
    if media_type == PARQUET:
        writer = pq.ParquetWriter(sink, schema)
    elif media_type == CSV:
        writer = pa_csv.CSVWriter(sink, schema)
    else:
        raise NotAcceptable("not_acceptable", f"cannot encode {media_type}")
    head = sink.take()
    if head:
        yield head
    for batch in batches:
        writer.write_batch(batch)
        chunk = sink.take()
        if chunk:
            yield chunk
    writer.close()
    tail = sink.take()
    if tail:
        yield tail
