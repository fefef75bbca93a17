"""The Arrow stream hands the batches' own buffers to the server (no serialisation copy), in
pieces the socket can take, and decodes to exactly the batches sent - dictionaries included."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from connector.dataplane.encoders import ARROW_STREAM, MAX_PIECE_BYTES, encode


def _table(rows: int) -> pa.Table:
    return pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "region": pa.array([("NH", "ZH", "UT")[i % 3] for i in range(rows)]).dictionary_encode(),
        "note": pa.array([f"row-{i}" if i % 7 else None for i in range(rows)]),
    })


def test_the_stream_decodes_to_the_batches_sent() -> None:
    table = _table(300_000)
    batches = table.to_batches(max_chunksize=100_000)
    pieces = list(encode(table.schema, iter(batches), ARROW_STREAM))
    sizes = [len(piece) if isinstance(piece, bytes) else piece.nbytes for piece in pieces]
    assert max(sizes) <= MAX_PIECE_BYTES
    decoded = pa.ipc.open_stream(b"".join(pieces)).read_all()
    assert decoded.equals(table)


def test_the_stream_carries_the_batches_own_buffers() -> None:
    table = _table(200_000)
    batch = table.to_batches()[0]
    ids = batch.column(0).buffers()[1]
    pieces = [piece for piece in encode(table.schema, iter([batch]), ARROW_STREAM)
              if isinstance(piece, memoryview)]
    addresses = {pa.py_buffer(piece).address for piece in pieces}
    assert ids.address in addresses  # the first slice of the id column is the column's memory


def test_a_stream_cut_short_has_no_end_marker() -> None:
    table = _table(1_000)

    def failing() -> Iterator[pa.RecordBatch]:
        yield table.to_batches()[0]
        raise RuntimeError("the engine failed")

    pieces: list[bytes] = []
    try:
        for piece in encode(table.schema, failing(), ARROW_STREAM):
            pieces.append(bytes(piece))
    except RuntimeError:
        pass
    assert not b"".join(pieces).endswith(b"\xff\xff\xff\xff\x00\x00\x00\x00")
