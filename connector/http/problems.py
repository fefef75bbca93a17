"""RFC 9457 problem details for every HTTP API of Sluis, and the one exception mapping.

Bad input must come back as a 4xx whose body names the field and the reason, never a 500 with
a traceback. ``install_problem_handlers`` maps FastAPI's request-validation errors, HTTP
exceptions and :class:`ProblemError` to ``application/problem+json``; an unexpected exception
becomes a 500 problem without internals (and is logged with its traceback server-side), except
when a database or store the server depends on did not answer: that is a 503 with
``Retry-After``, because the same request may succeed once the dependency is back, and load
balancers and clients treat the two differently.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount, compile_path

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: Seconds a client is asked to wait after a 503 for an unavailable dependency.
RETRY_AFTER_SECONDS = 5

#: Says whether an exception means "a dependency did not answer" (503) rather than a defect (500).
UnavailablePredicate = Callable[[BaseException], bool]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with the input: where (a JSON pointer-like path or a field name) and why."""

    field: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass
class ProblemError(Exception):
    """Raise from a route to answer with a problem body."""

    status: int
    title: str
    detail: str = ""
    code: str = "about:blank"
    errors: Sequence[FieldError] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail or self.title)


def problem_body(
    status: int,
    title: str,
    detail: str = "",
    code: str = "about:blank",
    errors: Sequence[FieldError] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = [error.as_json() for error in errors]
    if extra:
        body.update(extra)
    return body


class SafeJSONResponse(JSONResponse):
    """A JSON response that cannot fail to render.

    Strings in an answer sometimes echo input (an id, a reason); one holding a lone surrogate
    cannot be encoded as UTF-8, and a response that fails to render is a 500 or a reset
    connection. Such a body is written with ASCII escapes instead, which is the same JSON.
    """

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def problem_response(
    status: int,
    title: str,
    detail: str = "",
    code: str = "about:blank",
    errors: Sequence[FieldError] = (),
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return SafeJSONResponse(
        problem_body(status, title, detail, code, errors, extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _field_name(location: Sequence[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(part) for part in location)


def allowed_methods(request: Request) -> str:
    """Every method served on this path's resource (the ``Allow`` of a 405).

    The resource is the path template of the first route whose path matches (the one routing
    considers); the methods are those of every route with that template. Starlette named only
    the first route's methods (GET, PUT and DELETE of a record are three routes); and routers
    added with ``include_router`` are wrapped in objects that are neither ``Route`` nor
    ``Mount``, so their paths answered 405 with an empty ``Allow``. A template that merely also
    matches (``/negotiations/{id}`` for ``/negotiations/offers``) is another resource.
    """
    path = str(request.scope.get("path", ""))
    template: str | None = None
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.router.routes):
        route_path = context.path
        if not route_path or isinstance(context.route, Mount):
            continue
        if template is None and compile_path(route_path)[0].match(path):
            template = route_path
        if route_path == template:
            methods.update(context.methods or ())
    if "GET" in methods:
        methods.add("HEAD")  # answered for every GET route (connector.http.middleware.HeadAsGet)
    return ", ".join(sorted(methods))


def dependency_unavailable(error: BaseException) -> bool:
    """A database the server needs is unreachable, restarting or busy past its timeout.

    Only connection-level failures count: a SQL error that a defect causes (a missing table, a
    syntax error) stays a 500 so it is not mistaken for an outage.
    """
    import psycopg  # a runtime dependency; imported here so SQLite-only callers do not pay for it

    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return "locked" in text or "busy" in text or "unable to open" in text or "disk i/o" in text
    return isinstance(error, ConnectionError | TimeoutError)


def install_problem_handlers(
    app: FastAPI, *, unavailable: UnavailablePredicate | None = None
) -> None:
    """``unavailable``: extra dependency failures (beyond :func:`dependency_unavailable`) that a
    server knows of, such as the catalogue's remote SPARQL store not answering."""

    def is_outage(error: BaseException) -> bool:
        for link in _causes(error):
            if dependency_unavailable(link) or (unavailable is not None and unavailable(link)):
                return True
        return False

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, error: ProblemError) -> JSONResponse:
        return problem_response(
            error.status, error.title, error.detail, error.code, error.errors, error.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(_field_name(item.get("loc", ())), str(item.get("msg", "invalid")))
            for item in error.errors()
        ]
        detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
        return problem_response(400, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(error.status_code, str(error.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        if is_outage(error):
            _log.warning(
                "dependency unavailable",
                extra={"path": request.url.path, "error": f"{type(error).__name__}: {error}"},
            )
            return problem_response(
                503,
                "Service unavailable",
                "A database or store this server needs did not answer; retry later.",
                "dependency-unavailable",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        _log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(500, "Internal error", "The server failed; the error was logged.")


def _causes(error: BaseException) -> Sequence[BaseException]:
    """``error`` and what it was raised from, a bounded walk (a cycle must not hang a handler)."""
    chain: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and len(chain) < 8 and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    return chain
