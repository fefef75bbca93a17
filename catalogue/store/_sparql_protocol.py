"""Frames between the node and its SPARQL workers: a 4-byte big-endian length, then the bytes.

Shared by both sides (:mod:`catalogue.store.sparql`, :mod:`catalogue.store._sparql_worker`) and
importing nothing, so the worker starts without loading the rest of the store package.
"""

from __future__ import annotations

import struct
from typing import IO, Final

FRAME_HEADER: Final = struct.Struct(">I")
MAX_REQUEST_BYTES: Final = 8 * 1024 * 1024
"""Largest request frame a worker reads (the query is limited far below this)."""
SPARQL_RESULTS_JSON: Final = "application/sparql-results+json"
N_TRIPLES: Final = "application/n-triples"


def write_frame(out: IO[bytes], data: bytes) -> None:
    out.write(FRAME_HEADER.pack(len(data)) + data)
    out.flush()


def read_frame(source: IO[bytes], limit: int) -> bytes | None:
    """One frame from ``source``; None at the end of input."""
    header = source.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    (size,) = FRAME_HEADER.unpack(header)
    if size > limit:
        raise ValueError(f"frame of {size} bytes is over the limit of {limit}")
    data = source.read(size)
    if len(data) < size:
        return None
    return data
