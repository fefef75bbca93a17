"""Read a DSP request body within limits: size while streaming, then JSON nesting depth."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from vocab.dsp import MAX_MESSAGE_DEPTH

#: Largest DSP message accepted. Real messages are a few KiB; an agreement with many rules and
#: two proofs stays far below this. Checked on Content-Length and again while streaming.
MAX_DSP_BODY_BYTES = 256 * 1024


class BodyError(Exception):
    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


async def read_body_bytes(request: Request, max_bytes: int = MAX_DSP_BODY_BYTES) -> bytes:
    """The raw body, refused (413) once it passes ``max_bytes`` - declared or while streaming."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyError(413, "(body)", f"the body is {declared} bytes, more than the limit of {max_bytes}")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > max_bytes:
            raise BodyError(413, "(body)", f"the body is larger than the limit of {max_bytes} bytes")
    return bytes(raw)


def parse_json_body(raw: bytes) -> Any:
    """JSON of a body read by :func:`read_body_bytes`, within the nesting limit."""
    if not raw.strip():
        raise BodyError(400, "(body)", "the request has no JSON body")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BodyError(400, "(body)", f"JSON nests deeper than {MAX_MESSAGE_DEPTH} levels") from None
    except ValueError as error:
        raise BodyError(400, "(body)", f"not JSON: {error}") from None
    if _too_deep(value, MAX_MESSAGE_DEPTH):
        raise BodyError(400, "(body)", f"JSON nests deeper than {MAX_MESSAGE_DEPTH} levels")
    return value


async def read_json_body(request: Request, max_bytes: int = MAX_DSP_BODY_BYTES) -> Any:
    return parse_json_body(await read_body_bytes(request, max_bytes))
