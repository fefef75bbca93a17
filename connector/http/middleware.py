"""ASGI middleware that gives every JSON API the strict reading of :mod:`connector.http.jsonbody`.

Routes that take a pydantic model let FastAPI parse the body, and ``json.loads`` accepts a key
given twice, ``NaN`` and lone surrogates; a ``dict[str, Any]`` field then stores them, and the
surrogate fails later, far away, when a response holding it is rendered (a 500 on another
endpoint, possibly another participant's). This middleware reads JSON bodies under the given
path prefixes once, within a byte limit, refuses them with a problem naming the field, and
hands the unchanged bytes on to the route. The DSP routes read their bodies themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from urllib.parse import unquote_to_bytes

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.http.body import BodyError
from connector.http.jsonbody import parse_json
from connector.http.problems import FieldError, problem_response

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return True  # parsed as JSON by the route anyway
    media = content_type.split(b";", 1)[0].strip().lower()
    return media in (b"application/json", b"application/ld+json") or media.endswith(b"+json")


class StrictJsonBodies:
    """Refuse JSON bodies under ``prefixes`` that are not one strict reading of JSON (400)."""

    def __init__(self, app: ASGIApp, prefixes: Sequence[str], max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if (
            scope["type"] != "http"
            or scope.get("method") not in _WITH_BODY
            or not path.startswith(self.prefixes)
            or not _is_json(dict(scope.get("headers") or []).get(b"content-type"))
        ):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # the client went away; let the app see it
                return
            body.extend(message.get("body", b""))
            if len(body) > self.max_bytes:
                response = problem_response(
                    413,
                    "Request body too large",
                    f"the body is larger than the limit of {self.max_bytes} bytes",
                    code="body-too-large",
                )
                await response(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if bytes(body).strip():
            try:
                parse_json(bytes(body), max_depth=self.max_depth)
            except BodyError as error:
                response = problem_response(
                    error.status,
                    "Invalid JSON body",
                    f"{error.field}: {error.reason}",
                    code=error.code,
                    errors=[FieldError(error.field, error.reason)],
                )
                await response(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


Credentials = Callable[[Mapping[bytes, bytes]], bool]


class AuthenticateFirst:
    """Answer requests under ``prefix`` (and matching ``pattern``, when given) that carry no
    acceptable credential with ``refusal`` (a 401) before any byte of their body is read.

    Installed outside :class:`StrictJsonBodies`, so an outsider learns nothing about how bodies
    are read (which malformation is caught, and where) before proving who it is. The routes
    still check the credential themselves; this only moves the first check earlier.
    ``accepts`` sees the request headers (lower-case names) and must not keep state: a check
    that consumes something (a single-use proof) belongs in the route.
    """

    def __init__(
        self,
        app: ASGIApp,
        prefix: str,
        accepts: Credentials,
        refusal: Callable[[], Response],
        methods: Collection[str] | None = None,
        pattern: str | None = None,
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.pattern = None if pattern is None else re.compile(pattern)
        self.accepts = accepts
        self.refusal = refusal
        self.methods = None if methods is None else frozenset(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if (
            scope["type"] == "http"
            and (path == self.prefix or path.startswith(self.prefix + "/"))
            and (self.methods is None or scope.get("method") in self.methods)
            and (self.pattern is None or self.pattern.fullmatch(path) is not None)
            and not self.accepts(dict(scope.get("headers") or []))
        ):
            await self.refusal()(scope, receive, send)
            return
        await self.app(scope, receive, send)


UrlRefusal = Callable[[str, int, str], Response]


def _problem_refusal(path: str, status: int, reason: str) -> Response:
    title = "Not found" if status == 404 else "Invalid URL"
    return problem_response(status, title, reason, code="invalid-url", errors=[FieldError("(url)", reason)])


class RefuseUnstorableUrls:
    """Answer a request whose path or query string holds U+0000 before any route runs: 404 for
    a path (it names nothing), 400 for a query string.

    Ids and filters in URLs are looked up in the database, and PostgreSQL cannot hold U+0000 in
    text: the driver refuses such a parameter with an error every route would have to expect
    (a 500 otherwise). No record can hold one (bodies with it are refused), so such a path names
    nothing; it is answered here once for every route. ``answer`` builds the response for a
    path, status and reason (the DSP endpoints answer in their own error format, pages as pages).
    """

    def __init__(self, app: ASGIApp, answer: UrlRefusal | None = None) -> None:
        self.app = app
        self.answer = answer or _problem_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = str(scope.get("path", ""))
            query = bytes(scope.get("query_string", b""))
            refusal = None
            if "\x00" in path:
                refusal = 404, "the URL's path holds U+0000, which no id can hold"
            elif b"\x00" in unquote_to_bytes(query):
                refusal = 400, "the URL's query string holds U+0000, which no value can hold"
            if refusal is not None:
                response = self.answer(path.replace("\x00", "%00"), *refusal)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HeadAsGet:
    """ASGI middleware: a HEAD is answered like the GET of the same URL, without the body.

    HTTP requires HEAD wherever GET is served (RFC 9110 §9.3.2). FastAPI routes declared for GET
    do not answer HEAD (Starlette's own routes do), so every GET route - ``/metrics``, the
    health checks, the pages, the APIs - answered 405. The request goes through every inner
    layer as a GET: the same authentication, the same status, headers and ``Content-Length``;
    no body byte is sent. Only paths under ``prefix`` are served this way (all by default).
    """

    def __init__(self, app: ASGIApp, prefix: str = "") -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "HEAD" or not (
            not self.prefix or path == self.prefix or path.startswith(self.prefix + "/")
        ):
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)
