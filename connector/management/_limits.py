"""Limits on what the management API reads: body size (before parsing) and JSON nesting depth."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.http import json_depth, problem_response

#: Largest management request body. An asset's DCAT description or an ODRL policy is a few KiB;
#: 2 MiB leaves room for rich descriptions while keeping a hostile upload from filling memory.
MAX_MANAGEMENT_BODY_BYTES = 2 * 1024 * 1024
#: Deepest JSON accepted inside a management body. Stored descriptions and policies end up in
#: DSP messages, which peers refuse past 32 levels; 24 leaves room for the message around them.
MAX_STORED_JSON_DEPTH = 24


def check_depth(value: dict[str, Any]) -> dict[str, Any]:
    """A pydantic field validator: refuse JSON nested deeper than :data:`MAX_STORED_JSON_DEPTH`."""
    depth = json_depth(value)
    if depth > MAX_STORED_JSON_DEPTH:
        raise ValueError(f"nests {depth} levels deep, more than the limit of {MAX_STORED_JSON_DEPTH}")
    return value


class BodySizeLimit:
    """ASGI middleware: a body over ``max_bytes`` under ``prefix`` is refused with 413.

    Checked on Content-Length before anything is read, and again while a chunked body streams in.
    """

    def __init__(self, app: ASGIApp, prefix: str, max_bytes: int = MAX_MANAGEMENT_BODY_BYTES) -> None:
        self.app = app
        self.prefix = prefix
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = problem_response(
                413,
                "Request body too large",
                f"the body is {int(declared)} bytes; the limit is {self.max_bytes}",
                code="body-too-large",
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, f"the body is larger than the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)
