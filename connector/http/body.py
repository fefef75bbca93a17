"""Read a request body within a byte limit: on ``Content-Length`` first, then while streaming.

A declared length over the limit is refused before a byte is read; an undeclared (chunked) body
is counted as it arrives. ``drain_bytes`` lets a server keep reading (and discarding) a little
past the limit so a client still sending gets the 413 instead of a reset connection; beyond it
the connection is abandoned.
"""

from __future__ import annotations

from fastapi import Request


class BodyError(Exception):
    """The body cannot be used: ``status`` (400, 413, 415), the field at fault and why."""

    def __init__(self, status: int, field: str, reason: str, code: str = "invalid-body") -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason
        self.code = code


async def read_body_bytes(request: Request, max_bytes: int, *, drain_bytes: int = 0) -> bytes:
    """The raw body, refused (413) once it passes ``max_bytes``; a bad length header is a 400."""
    declared = request.headers.get("content-length")
    too_large = False
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyError(400, "Content-Length", "Content-Length is not a number", "bad-length")
        too_large = int(declared) > max_bytes
    if too_large and not drain_bytes:
        raise BodyError(
            413,
            "(body)",
            f"the body is {declared} bytes, more than the limit of {max_bytes}",
            "body-too-large",
        )
    raw = bytearray()
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > max_bytes:
            too_large = True
            raw.clear()
        if too_large:
            if not drain_bytes or seen > max_bytes + drain_bytes:
                break
            continue
        raw.extend(chunk)
    if too_large:
        raise BodyError(
            413, "(body)", f"the body is larger than the limit of {max_bytes} bytes", "body-too-large"
        )
    return bytes(raw)
