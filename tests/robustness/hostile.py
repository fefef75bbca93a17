"""Hostile payloads, a raw streaming HTTP client, and the one rule every rejection must obey.

The rule (``assert_rejected``): a 4xx status, never 5xx; an RFC 9457 problem body
(``application/problem+json`` with ``title`` and ``status``) — or, on DSP endpoints, a DSP error
message (``CatalogError`` / ``ContractNegotiationError`` / ``TransferError`` with ``code`` and
``reason``); the field at fault named in ``detail`` or ``errors`` when one is; and no traceback,
source path or internal detail anywhere in the body.
"""

from __future__ import annotations

import functools
import json
import select
import socket
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx

PROBLEM_MEDIA_TYPE = "application/problem+json"
DSP_ERROR_TYPES = frozenset({"CatalogError", "ContractNegotiationError", "TransferError"})
REPO_ROOT = str(Path(__file__).resolve().parents[2])
# Text that only leaks out of a server when it shows internals.
LEAK_MARKERS = (
    "Traceback (most recent call last)",
    '.py", line ',
    "site-packages",
    "RecursionError",
    "sqlite3.",
    "psycopg.",
    "duckdb.duckdb",
    REPO_ROOT,
)

# Sizes: above every body limit in the project (the largest is the catalogue's 10 MiB).
HUGE_BODY_BYTES = 11 * 1024 * 1024
DEEP_NESTING = 10_000
LONG_STRING_CHARS = 1_000_000
UPLOAD_CHUNK_BYTES = 256 * 1024
SOCKET_TIMEOUT_SECONDS = 30.0


@functools.cache
def http() -> httpx.Client:
    """One client for the whole suite (building a client per request costs more than the request).

    Each request has its own connection: a server may rightly close one after refusing a request
    whose body it did not read, and a reused connection would then fail on the client's side.
    """
    return httpx.Client(timeout=httpx.Timeout(60.0), headers={"Connection": "close"})


@dataclass
class Reply:
    """What came back, from httpx or the raw client (status 0: the connection closed unanswered)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    sent_bytes: int = 0
    note: str = ""

    @classmethod
    def of(cls, response: Any) -> Reply:
        return cls(
            response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content
        )

    def describe(self) -> str:
        text = self.body[:600].decode("utf-8", "replace")
        return f"HTTP {self.status} {self.headers.get('content-type', '')} {text!r} {self.note}".strip()


@dataclass
class Rejection:
    """What a correct rejection looks like for one case."""

    dsp: bool | None = False  # None: either form (a route-level 404/405 under /dsp is a problem)
    fields: Collection[str] = ()
    statuses: Collection[int] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def assert_rejected(reply: Reply, expected: Rejection, what: str) -> dict[str, Any]:
    """Assert the non-negotiable: a clean 4xx naming the field, no internals; the parsed body."""
    assert_no_leak(reply, what)
    assert 400 <= reply.status < 500, f"{what}: expected a 4xx, got {reply.describe()}"
    if expected.statuses:
        assert reply.status in expected.statuses, (
            f"{what}: expected one of {sorted(expected.statuses)}, got {reply.describe()}"
        )
    try:
        body = json.loads(reply.body)
    except ValueError:
        raise AssertionError(f"{what}: the error body is not JSON: {reply.describe()}") from None
    assert isinstance(body, dict), f"{what}: the error body is not a JSON object: {reply.describe()}"
    if expected.dsp or (expected.dsp is None and "@type" in body):
        assert_dsp_error(body, reply, what)
    else:
        assert_problem(body, reply, what)
    if expected.fields:
        named = fields_named(body)
        assert any(wanted.lower() in text for wanted in expected.fields for text in named), (
            f"{what}: the error should name one of {sorted(expected.fields)}; got {reply.describe()}"
        )
    return body


def assert_no_leak(reply: Reply, what: str) -> None:
    assert reply.status != 0, f"{what}: the server closed the connection without answering ({reply.note})"
    assert reply.status < 500, f"{what}: server error {reply.describe()}"
    text = reply.body.decode("utf-8", "replace") + " ".join(reply.headers.values())
    for marker in LEAK_MARKERS:
        assert marker not in text, f"{what}: the answer leaks internals ({marker!r}): {reply.describe()}"


def assert_problem(body: Mapping[str, Any], reply: Reply, what: str) -> None:
    media_type = reply.headers.get("content-type", "").split(";")[0].strip()
    assert media_type == PROBLEM_MEDIA_TYPE, f"{what}: not {PROBLEM_MEDIA_TYPE}: {reply.describe()}"
    assert isinstance(body.get("title"), str), f"{what}: problem without title"
    assert body["title"], f"{what}: problem with an empty title"
    assert body.get("status") == reply.status, f"{what}: problem status differs from HTTP status"


def assert_dsp_error(body: Mapping[str, Any], reply: Reply, what: str) -> None:
    assert body.get("@type") in DSP_ERROR_TYPES, f"{what}: not a DSP error message: {reply.describe()}"
    assert isinstance(body.get("code"), str), f"{what}: DSP error without code"
    assert body["code"], f"{what}: DSP error with an empty code"
    reasons = body.get("reason")
    assert isinstance(reasons, list), f"{what}: DSP error without reason"
    assert reasons, f"{what}: DSP error with no reason given"
    media_type = reply.headers.get("content-type", "").split(";")[0].strip()
    assert media_type in ("application/json", "application/ld+json"), f"{what}: DSP error as {media_type}"


def fields_named(body: Mapping[str, Any]) -> list[str]:
    """Every text of an error body that may name a field, lower-cased."""
    texts = [str(body.get("detail", "")), str(body.get("title", ""))]
    for item in body.get("errors") or []:
        if isinstance(item, Mapping):
            texts.extend(str(value) for value in item.values())
    for reason in body.get("reason") or []:
        texts.append(json.dumps(reason) if not isinstance(reason, str) else reason)
    return [text.lower() for text in texts]


# ---- payloads -------------------------------------------------------------------------------------
def deep_array(depth: int = DEEP_NESTING) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int = DEEP_NESTING) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def deep_inside(field_name: str, base: Mapping[str, Any], depth: int = DEEP_NESTING) -> bytes:
    """A plausible object whose one field nests ``depth`` levels deep."""
    text = json.dumps({**base, field_name: "__DEEP__"})
    return text.replace('"__DEEP__"', deep_array(depth).decode()).encode()


# Bodies every JSON endpoint must refuse: (case id, content, what must be named when refused).
MALFORMED_JSON: tuple[tuple[str, bytes], ...] = (
    ("invalid-json", b'{"id": "x", '),
    ("trailing-garbage", b'{"id": "x"} trailing'),
    ("number-not-object", b"42"),
    ("nan-literal", b'{"id": NaN}'),
    ("not-utf8", b'{"id": "\xff\xfe"}'),
    ("array-not-object", b'[{"id": "x"}]'),
    ("string-not-object", b'"just a string"'),
    ("null-not-object", b"null"),
    ("empty-object", b"{}"),
    ("empty-body", b""),
    ("deep-array", deep_array()),
    ("deep-object", deep_object()),
)


# ---- raw streaming client ---------------------------------------------------------------------------
def body_parts(
    prefix: bytes, filler_bytes: int, suffix: bytes, chunk: int = UPLOAD_CHUNK_BYTES
) -> Iterator[bytes]:
    yield prefix
    block = b"a" * chunk
    remaining = filler_bytes
    while remaining > 0:
        piece = block[: min(chunk, remaining)]
        remaining -= len(piece)
        yield piece
    yield suffix


def huge_json_string_body(field_name: str = "id", size: int = HUGE_BODY_BYTES) -> tuple[list[bytes], int]:
    """``{"<field>": "aaaa…"}`` of ``size`` bytes, as parts (never joined in memory by the client)."""
    prefix = f'{{"{field_name}": "'.encode()
    suffix = b'"}'
    filler = size - len(prefix) - len(suffix)
    parts = list(body_parts(prefix, filler, suffix))
    return parts, size


def stream_request(
    url: str,
    method: str,
    headers: Mapping[str, str],
    parts: Iterable[bytes],
    total: int | None,
) -> Reply:
    """Send a large body the way a careful client does: stop sending as soon as the server answers.

    ``total`` None sends ``Transfer-Encoding: chunked`` (no declared length, so the server must
    count while it streams). The server's answer is read whether or not the body was finished.
    """
    target = urlsplit(url)
    path = target.path + (f"?{target.query}" if target.query else "")
    host = target.hostname or "127.0.0.1"
    port = target.port or 80
    connection = h11.Connection(our_role=h11.CLIENT)
    request_headers = [("Host", f"{host}:{port}"), ("Connection", "close"), *headers.items()]
    if total is None:
        request_headers.append(("Transfer-Encoding", "chunked"))
    else:
        request_headers.append(("Content-Length", str(total)))
    sent = 0
    note = ""
    with socket.create_connection((host, port), timeout=SOCKET_TIMEOUT_SECONDS) as sock:
        sock.sendall(connection.send(h11.Request(method=method, target=path, headers=request_headers)))
        finished = True
        for part in parts:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                finished = False
                note = f"(the server answered after {sent} bytes)"
                break
            try:
                sock.sendall(connection.send(h11.Data(data=part)))
            except OSError as error:
                finished = False
                note = f"(sending stopped after {sent} bytes: {error.__class__.__name__})"
                break
            sent += len(part)
        if finished:
            try:
                sock.sendall(connection.send(h11.EndOfMessage()))
            except OSError:
                note = "(the server closed before the end of the body)"
        status, response_headers, body = _read_response(connection, sock)
    return Reply(status, response_headers, body, sent, note)


def _read_response(connection: h11.Connection, sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    status = 0
    headers: dict[str, str] = {}
    body = bytearray()
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError:
            return status, headers, bytes(body)
        if event is h11.NEED_DATA:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            connection.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = {name.decode().lower(): value.decode("latin-1") for name, value in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, headers, bytes(body)
