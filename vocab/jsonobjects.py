"""JSON objects that name no key twice.

Readers disagree on which of two values for one key counts (the first or the last), so a
document with a repeated key could verify with one set of terms and be read by another tool
with the other. Readers of signed material pass :func:`unique_keys` as ``object_pairs_hook``.
"""

from __future__ import annotations

from typing import Any


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: raise ``ValueError`` on a key named twice."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"the key {key!r} appears twice in one object")
        document[key] = value
    return document
