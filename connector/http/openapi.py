"""Published OpenAPI documents that say what the server really does, for every operation.

FastAPI documents what it can see in a route's signature: a 200, and a 422 "Validation Error"
that our servers never send (request-validation errors are 400 problems, see :mod:`.problems`).
Routes that read their body or query themselves (RDF documents, SPARQL, facets, DSP messages)
show no body and no parameters at all. :func:`describe` closes the gap after the fact, from a
table the server's owner writes (:class:`Operation` per method and path): every status with its
media type and schema, the request body's media types, the parameters read by hand. An operation
missing from the table is an error at start, so a new route cannot be published undescribed.

The published documents are checked by schemathesis against running servers in the test suite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"

PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}
"""RFC 9457 with the ``errors`` list (field and reason) every problem of ours carries."""

_REASONS: Final = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Bad request: a parameter, header or body is invalid (the problem names it)",
    401: "Credentials missing or not valid",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed (the Allow header lists the methods)",
    406: "None of the Accept media types is available",
    409: "Conflict with the current state",
    410: "Gone",
    413: "Too large",
    415: "Unsupported Content-Type",
    422: "Understood but refused",
    429: "Too many requests at once; retry later",
    502: "A server this one depends on failed",
    503: "Temporarily unavailable; retry later",
}


def problem(description: str | None = None, status: int = 400) -> dict[str, Any]:
    """A response of problem+json."""
    return {
        "description": description or _REASONS.get(status, "Problem"),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
    }


def content(media_types: Sequence[str], schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``content`` map: each media type with ``schema`` (any string body when None)."""
    return {media: {"schema": dict(schema or {"type": "string"})} for media in media_types}


def body(
    media_types: Sequence[str], schema: Mapping[str, Any] | None = None, *, required: bool = True
) -> dict[str, Any]:
    return {"required": required, "content": content(media_types, schema)}


def query_parameter(
    name: str, schema: Mapping[str, Any], description: str, *, required: bool = False
) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": dict(schema),
    }
    if schema.get("type") == "array":
        parameter["style"] = "form"
        parameter["explode"] = True
    return parameter


@dataclass(frozen=True)
class Operation:
    """What one method on one path really answers and reads."""

    ok: Mapping[int, Mapping[str, Any]]
    """Success statuses -> response objects (description, content, headers)."""
    problems: Sequence[int] = ()
    """Statuses answered with a problem (400 is added wherever anything is read)."""
    request_body: Mapping[str, Any] | None = None
    parameters: Sequence[Mapping[str, Any]] = ()
    """Parameters the route reads by hand (added to those FastAPI found)."""
    notes: Mapping[int, str] = field(default_factory=dict)
    """A more precise description of some problem statuses."""
    error_content: Mapping[str, Any] | None = None
    """The content of error answers when they are not problem+json (DSP error messages)."""
    summary: str = ""
    """For an operation no route declares (a URL two routes share), what it is."""


def describe(app: FastAPI, operations: Mapping[tuple[str, str], Operation]) -> None:
    """Publish ``app``'s OpenAPI document completed by ``operations`` (method upper-case, path).

    Every operation of the generated document must have an entry (checked now, at start). An
    entry for an operation the app does not have (a connector without a data plane) is left out,
    except entries with a ``summary``: URLs no route declares but one serves (see
    :class:`Operation`).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        paths = document.setdefault("paths", {})
        generated = {(method.upper(), path) for path, item in paths.items() for method in item}
        missing = sorted(generated - set(operations))
        if missing:
            raise ValueError(f"operations missing from the OpenAPI table: {missing}")
        for (method, path), declared in operations.items():
            if (method, path) not in generated and not declared.summary:
                continue
            operation = paths.setdefault(path, {}).setdefault(method.lower(), {})
            if declared.summary and "summary" not in operation:
                operation["summary"] = declared.summary
            _complete(operation, declared)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        if "components" in document and not schemas:
            document["components"].pop("schemas", None)
            if not document["components"]:
                document.pop("components")
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    openapi()


def _complete(operation: dict[str, Any], declared: Operation) -> None:
    responses: dict[str, Any] = {}
    for status, response in declared.ok.items():
        responses[str(status)] = {"description": _REASONS.get(status, "OK"), **dict(response)}
    parameters = list(operation.get("parameters", []))
    names = {(parameter["name"], parameter["in"]) for parameter in parameters}
    parameters.extend(
        dict(parameter)
        for parameter in declared.parameters
        if (parameter["name"], parameter["in"]) not in names
    )
    if parameters:
        operation["parameters"] = parameters
    if declared.request_body is not None:
        operation["requestBody"] = dict(declared.request_body)
    statuses = set(declared.problems)
    if parameters or "requestBody" in operation:
        statuses.add(400)
    for status in sorted(statuses):
        responses[str(status)] = problem(declared.notes.get(status), status)
        if declared.error_content is not None:
            responses[str(status)]["content"] = dict(declared.error_content)
    operation["responses"] = responses
