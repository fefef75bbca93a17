"""JSON Canonicalization Scheme (RFC 8785), with a fast path for the JSON we usually sign.

``rfc8785`` is the reference, written in pure Python; it took ~75 us per credential here, as much
as the Ed25519 check itself. For documents without floating-point numbers and without object keys
beyond U+D7FF, JCS output is exactly what the standard library's C encoder produces with sorted
keys, compact separators and no ASCII escaping: the string escapes coincide, integers print the
same, and code-point order equals UTF-16 order for such keys. Everything else (floats, large
integers, exotic keys, lone surrogates) goes through ``rfc8785``. Tests compare both on generated
documents.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

# I-JSON: integers beyond 2^53 - 1 are not interoperable; rfc8785 refuses them, so must we.
MAX_SAFE_INTEGER = 2**53 - 1
# Documents we sign are shallow; deeper nesting goes to the reference path (which recurses too).
MAX_FAST_DEPTH = 64
_FIRST_SURROGATE = "\ud800"


def _plain(value: Any, depth: int = 0) -> bool:
    """True when ``value`` holds nothing on which json.dumps and JCS could disagree."""
    if depth > MAX_FAST_DEPTH:
        return False
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or (key and max(key) >= _FIRST_SURROGATE):
                return False
            if not _plain(item, depth + 1):
                return False
        return True
    if isinstance(value, list):
        return all(_plain(item, depth + 1) for item in value)
    return False


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``; raises what ``rfc8785.dumps`` raises for bad input."""
    if _plain(value):
        try:
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
                "utf-8"
            )
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the reference implementation report it
    data: bytes = rfc8785.dumps(value)
    return data
