"""The data plane's errors: a ``code`` for machines, a sentence for people, and an HTTP status.

Routes turn them into RFC 9457 problem bodies; a policy denial carries the decision's
explanation in ``decision`` so the job (and its operator) sees which rule or constraint failed.
"""

from __future__ import annotations

from typing import Any


class DataPlaneError(Exception):
    """A read that cannot be served. ``status`` is the HTTP status the route answers with."""

    status = 400
    title = "Bad data-plane request"

    def __init__(self, code: str, message: str, decision: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.decision = decision

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class InvalidToken(DataPlaneError):
    """The access token or its proof of possession is missing, malformed, expired or replayed."""

    status = 401
    title = "Invalid access token"


class AccessDenied(DataPlaneError):
    """The token is fine but the read is not allowed: state, policy, scope, limits or SQL."""

    status = 403
    title = "Read denied"


class NotFound(DataPlaneError):
    status = 404
    title = "Unknown transfer"


class QueryRefused(AccessDenied):
    """The SQL is not one SELECT over the granted views (table functions, COPY, SET, ...)."""

    title = "Query refused"


class BadQuery(DataPlaneError):
    """The SQL does not parse or does not run (syntax, unknown column, type error)."""

    status = 400
    title = "Invalid query"


class ResultTooLarge(DataPlaneError):
    status = 413
    title = "Result too large"


class Busy(DataPlaneError):
    """Too many reads are running; the job should retry shortly."""

    status = 503
    title = "Data plane busy"
