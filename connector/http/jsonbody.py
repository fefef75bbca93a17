"""Strict JSON for request bodies: one reading of a body for every API, or a precise refusal.

``json.loads`` alone accepts things that later fail far from the parser or mean two things at
once; each is refused here, naming where:

* bytes that are not UTF-8 (and a UTF-8 byte-order mark);
* ``\\ud800``-style escapes that leave a lone surrogate in a string or key: such a string cannot
  be encoded again, so it would fail in the database or in the response, as a 500; likewise
  ``\\u0000``, which PostgreSQL cannot store in text;
* ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON, and numbers like ``1e400`` that
  become infinite as floats (no answer holding one could be rendered);
* an object with the same key twice (which one wins differs between parsers);
* nesting deeper than the caller's limit (checked without recursion).

``check_json_content_type`` accepts ``application/json``, ``application/ld+json`` and other
``+json`` types, with at most a UTF-8 ``charset``; a missing header is allowed (the body is
still parsed strictly).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from connector.http.body import BodyError

JSON_MEDIA_TYPES = ("application/json", "application/ld+json")
# Lone surrogates cannot be encoded again; NUL cannot be stored in PostgreSQL text or JSONB.
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value (iterative, so a hostile value cannot exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _no_constants(name: str) -> Any:
    raise BodyError(400, "(body)", f"{name} is not a JSON value", "invalid-json")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(400, "(body)", f"the number {text[:40]} is too large for a float", "invalid-json")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BodyError(
                400, _shown(key), f"the member {_shown(key)!r} appears twice in one object", "invalid-json"
            )
        result[key] = value
    return result


def _shown(text: str) -> str:
    return _UNSTORABLE.sub("\ufffd", text)[:80]


def _first_surrogate(value: Any) -> str | None:
    """The JSON-pointer-like path of the first string or key holding a lone surrogate."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return path or "(body)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if _UNSTORABLE.search(key):
                    return f"{path}/{_shown(key)}"
                stack.append((child, f"{path}/{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}/{index}") for index, child in enumerate(item))
    return None


def parse_json(raw: bytes, *, max_depth: int) -> Any:
    """The JSON value of ``raw``, or :class:`BodyError` (400) saying what is wrong and where."""
    if not raw.strip():
        raise BodyError(400, "(body)", "the request has no JSON body", "invalid-json")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise BodyError(400, "(body)", "the body starts with a byte-order mark", "invalid-json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError(
            400, "(body)", f"the body is not UTF-8 (byte {error.start})", "invalid-json"
        ) from None
    try:
        value = json.loads(
            text, parse_constant=_no_constants, parse_float=_finite, object_pairs_hook=_unique_keys
        )
    except RecursionError:
        raise BodyError(400, "(body)", f"JSON nests deeper than {max_depth} levels", "too-deep") from None
    except ValueError as error:
        raise BodyError(400, "(body)", f"not JSON: {error}", "invalid-json") from None
    if json_depth(value) > max_depth:
        raise BodyError(400, "(body)", f"JSON nests deeper than {max_depth} levels", "too-deep")
    where = _first_surrogate(value)
    if where is not None:
        raise BodyError(
            400,
            where,
            "holds a lone UTF-16 surrogate or U+0000, which are not accepted in text",
            "invalid-unicode",
        )
    return value


def check_json_content_type(
    header: str | None, accepted: Iterable[str] = JSON_MEDIA_TYPES, *, status: int = 415
) -> None:
    """Refuse a body declared as something not JSON (:class:`BodyError` with ``status``).

    415 is HTTP's answer; the DSP endpoints pass 400, the status DSP gives every bad message.
    """
    if header is None:
        return
    media, _, parameters = header.partition(";")
    media = media.strip().lower()
    allowed = set(accepted)
    if media not in allowed and not (media.startswith("application/") and media.endswith("+json")):
        raise BodyError(
            status,
            "Content-Type",
            f"{_shown(media) or 'an empty type'} is not JSON; send {' or '.join(sorted(allowed))}",
            "unsupported-media-type",
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise BodyError(
                status,
                "Content-Type",
                f"charset {_shown(value.strip())} is not UTF-8",
                "unsupported-media-type",
            )
