"""A hostile provider pushes a small compressed Arrow IPC stream that decodes to gigabytes.

Checking that a push reads as Arrow used to decode every batch, decompressing all of it. The
decoded size is now summed from the batches' metadata before anything is decompressed: the push
is refused 413 naming the limit, and nothing of it is kept.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from connector.push_limits import MAX_BATCH_DECODED_BYTES, MAX_DECODED_BYTES
from tests.connector.dsp_world import Authority, Party, make_party, running
from tests.connector.test_push_received import _headers, _receiving

ROWS = 2 * 1024 * 1024  # one batch of 16 MiB of zeros, a few kilobytes compressed
_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def _stream_parts() -> tuple[bytes, bytes]:
    """The schema message and one ZSTD-compressed record batch message of an IPC stream."""
    table = pa.table({"x": pa.nulls(ROWS, pa.int64()).fill_null(0)})
    options = ipc.IpcWriteOptions(compression="zstd")
    head, whole = pa.BufferOutputStream(), pa.BufferOutputStream()
    with ipc.new_stream(head, table.schema, options=options):
        pass
    with ipc.new_stream(whole, table.schema, options=options) as writer:
        writer.write_table(table)
    schema = head.getvalue().to_pybytes()[: -len(_END)]
    return schema, whole.getvalue().to_pybytes()[len(schema): -len(_END)]


@pytest.fixture
def consumer(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> Iterator[tuple[Party, str]]:
    url = storage_urls("consumer")
    party = make_party(tmp_path, "consumer", authority, url)
    with running(party):
        yield party, url


def _push(party: Party, transfer_id: str, data: bytes) -> httpx.Response:
    target = f"{party.url}/push/{transfer_id}"
    return httpx.put(target, content=data, headers=_headers(data, None), timeout=120)


def _kept(party: Party, transfer_id: str) -> list[str]:
    folder = party.root / "data" / "received" / transfer_id
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_a_stream_decoding_past_the_limit_is_refused_before_it_is_decompressed(
    consumer: tuple[Party, str],
) -> None:
    party, url = consumer
    transfer_id = _receiving(url)
    schema, batch = _stream_parts()
    copies = MAX_DECODED_BYTES // (8 * ROWS) + 1
    bomb = schema + batch * copies + _END
    assert len(bomb) < 64 * 1024 * 1024 < MAX_DECODED_BYTES // 100  # small on the wire
    refused = _push(party, transfer_id, bomb)
    assert refused.status_code == 413, refused.text
    assert refused.json()["type"].endswith("push-decodes-too-large")
    assert str(MAX_DECODED_BYTES) in refused.json()["detail"]
    assert _kept(party, transfer_id) == []
    # the same stream within the limit is taken
    small = schema + batch * 2 + _END
    assert _push(party, transfer_id, small).status_code == 201
    assert _kept(party, transfer_id) == ["data.arrows"]


def test_a_batch_claiming_a_huge_decoded_size_is_refused_unread(consumer: tuple[Party, str]) -> None:
    party, url = consumer
    transfer_id = _receiving(url)
    schema, batch = _stream_parts()
    # the compressed data buffer's first 8 bytes say how long it is decoded: claim 64 GiB
    zstd_frame = batch.find(b"\x28\xb5\x2f\xfd")
    assert zstd_frame > 8
    claimed = batch[: zstd_frame - 8] + struct.pack("<q", 64 * 1024**3) + batch[zstd_frame:]
    refused = _push(party, transfer_id, schema + claimed + _END)
    assert refused.status_code == 413, refused.text
    assert str(MAX_BATCH_DECODED_BYTES) in refused.json()["detail"]
    assert _kept(party, transfer_id) == []


def test_malformed_batch_metadata_is_unreadable_not_a_server_error(consumer: tuple[Party, str]) -> None:
    party, url = consumer
    transfer_id = _receiving(url)
    schema, batch = _stream_parts()
    # the batch message's metadata (after its 8-byte prefix) with its root offset pointing far away
    broken = batch[:8] + struct.pack("<I", 0x7FFFFFF0) + batch[12:]
    answer = _push(party, transfer_id, schema + broken + _END)
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"].endswith("push-unreadable")
    assert _kept(party, transfer_id) == []
