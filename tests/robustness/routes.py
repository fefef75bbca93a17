"""Every operation of every app, read from the apps' own OpenAPI documents at collection time.

A route added tomorrow is attacked tomorrow: the suite's parameters come from ``app.openapi()``
of a freshly built catalogue node and connector, not from a list kept by hand. What the suite
must know about a route that OpenAPI does not say (which credential it wants, whether a route
whose body FastAPI never sees reads one, which ids are live) is decided by rules over the path,
so new routes fall under them too.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.identity import did_web_for
from sluis.servers import free_port

CATALOGUE = "catalogue"
CONNECTOR = "connector"
# Routes FastAPI serves for its own documentation; they take no input.
DOCUMENTATION_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# POST routes that take no body (their input is the path): a body sent to them is ignored.
BODYLESS_POSTS = frozenset(
    {
        "/management/negotiations/{negotiation_id}/accept",
        "/data/{transfer_id}/token/refresh",
    }
)


@dataclass(frozen=True)
class Operation:
    app: str
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[tuple[str, str], ...]  # (name, JSON schema type)
    body_schema: dict[str, Any] | None
    body_required: bool

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def reads_body(self) -> bool:
        return self.method in BODY_METHODS and self.path not in BODYLESS_POSTS

    @property
    def is_dsp(self) -> bool:
        return self.path.startswith("/dsp/")

    @property
    def auth(self) -> str:
        """The credential the route wants: none, publisher, management, dsp or dpop."""
        if self.path.startswith("/catalogue/"):
            return (
                "publisher"
                if self.method in ("POST", "PUT", "DELETE") and "/datasets" in self.path
                else "none"
            )
        if self.path.startswith("/management/") or self.path == "/data/obligations":
            return "management"
        if self.path.startswith("/dsp/"):
            return "dsp"
        if self.path.startswith("/data/"):
            return "dpop"
        return "none"

    @property
    def changes_state(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")


def _schema_type(schema: dict[str, Any]) -> str:
    """The JSON schema type; ``"integer>=0"`` for an integer whose published minimum is 0 (an
    offset), so the sweep does not count 0 among its bad values."""
    if schema.get("type") == "integer" and schema.get("minimum") == 0:
        return "integer>=0"
    if "type" in schema:
        return str(schema["type"])
    for option in schema.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


def operations_of(document: dict[str, Any], app: str) -> list[Operation]:
    found: list[Operation] = []
    for path, item in document.get("paths", {}).items():
        if path in DOCUMENTATION_PATHS:
            continue
        for method, operation in item.items():
            if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                continue
            parameters = operation.get("parameters", [])
            path_params = tuple(p["name"] for p in parameters if p["in"] == "path")
            query = tuple(
                (p["name"], _schema_type(p.get("schema", {}))) for p in parameters if p["in"] == "query"
            )
            body = operation.get("requestBody")
            schema = None
            if body:
                schema = body.get("content", {}).get("application/json", {}).get("schema")
            found.append(
                Operation(
                    app,
                    method.upper(),
                    path,
                    path_params,
                    query,
                    resolve(schema, document) if schema else None,
                    bool(body and body.get("required")),
                )
            )
    return found


def resolve(schema: Any, document: dict[str, Any], depth: int = 0) -> Any:
    """The schema with ``$ref``s inlined (bounded: our models do not recurse)."""
    if depth > 20:
        return {}
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return resolve(document["components"]["schemas"][name], document, depth + 1)
        return {key: resolve(value, document, depth + 1) for key, value in schema.items()}
    if isinstance(schema, list):
        return [resolve(item, document, depth + 1) for item in schema]
    return schema


@functools.cache
def openapi_documents() -> dict[str, dict[str, Any]]:
    """Both apps' OpenAPI documents, from apps built the way users build them (then closed)."""
    from catalogue.api import create_catalogue_app
    from connector.app import create_app
    from connector.config import load_config
    from tests.robustness.worlds import run_cli

    with tempfile.TemporaryDirectory(prefix="sluis-openapi-") as folder:
        root = Path(folder)
        catalogue_app = create_catalogue_app(root / "catalogue")
        try:
            catalogue_doc = catalogue_app.openapi()
        finally:
            catalogue_app.state.catalogue.close()
        run_cli("authority", "init", "--id", did_web_for("127.0.0.1", free_port()), "--dir", str(root / "a"))
        run_cli(
            "participant",
            "init",
            "--id",
            did_web_for("127.0.0.1", free_port()),
            "--dir",
            str(root / "p"),
            "--authority-dir",
            str(root / "a"),
        )
        connector_app = create_app(load_config(root / "p" / "connector.toml"))
        try:
            connector_doc = connector_app.openapi()
        finally:
            connector_app.state.store.close()
    return {CATALOGUE: catalogue_doc, CONNECTOR: connector_doc}


@functools.cache
def all_operations() -> tuple[Operation, ...]:
    documents = openapi_documents()
    return tuple(op for app, document in documents.items() for op in operations_of(document, app))


def operations(
    *,
    app: str | None = None,
    body: bool | None = None,
    auth: bool | None = None,
    path_params: bool | None = None,
    query: bool | None = None,
) -> list[Operation]:
    chosen = []
    for op in all_operations():
        if app is not None and op.app != app:
            continue
        if body is not None and op.reads_body != body:
            continue
        if auth is not None and (op.auth != "none") != auth:
            continue
        if path_params is not None and bool(op.path_params) != path_params:
            continue
        if query is not None and bool(op.query_params) != query:
            continue
        chosen.append(op)
    return chosen
