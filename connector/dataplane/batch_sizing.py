"""How many rows one result batch holds: bounded by bytes, not only by rows.

A fixed row count per batch is a memory bound only for narrow rows. ``SELECT note AS a1, ...,
note AS a300 FROM data`` makes rows a thousand times wider than three numbers, and 512 Ki rows
of them are a batch of over half a gigabyte, built outside DuckDB's memory limit - times the
reads running at once. So the engine is asked for as many rows as fit a byte target by the
result's types: exactly, when every column has a fixed width; when some have not (text, blobs,
lists), for at most one engine vector (2,048 rows), sent as it is - joining such batches up to
the target copied every byte once more, which cost more than sending them apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

#: Bytes one result batch is aimed at.
DEFAULT_BATCH_BYTES: Final = 16 * 1024 * 1024
#: Rows DuckDB produces per vector: the most an engine batch of variable-width rows holds.
ENGINE_VECTOR_ROWS: Final = 2048
#: The guess for a variable-width value (its offset and a short text), before any is measured.
VARIABLE_VALUE_GUESS: Final = 24

_FIXED: Final = {
    "BOOLEAN": 1, "TINYINT": 1, "UTINYINT": 1, "SMALLINT": 2, "USMALLINT": 2, "INTEGER": 4,
    "UINTEGER": 4, "BIGINT": 8, "UBIGINT": 8, "HUGEINT": 16, "UHUGEINT": 16, "FLOAT": 4,
    "DOUBLE": 8, "DATE": 4, "TIME": 8, "INTERVAL": 16,
}


def _width(type_name: str) -> int | None:
    """Bytes of one value of a DuckDB type in Arrow (``None``: it varies)."""
    name = type_name.upper()
    if name.startswith("DECIMAL"):
        return 16
    if name.startswith("TIMESTAMP"):
        return 8
    return _FIXED.get(name)


def engine_batch_rows(types: Iterable[object], max_rows: int, target_bytes: int) -> int:
    """Rows to ask the engine for per batch, for a result of DuckDB ``types``."""
    fixed, variable = 0, 0
    for type_ in types:
        width = _width(str(type_))
        if width is None:
            variable += 1
        else:
            fixed += width + 1  # and its validity bit, rounded up
    per_row = max(fixed + variable * VARIABLE_VALUE_GUESS, 1)
    rows = target_bytes // per_row
    if variable:
        rows = min(rows, ENGINE_VECTOR_ROWS)
    return max(1, min(rows, max_rows))
