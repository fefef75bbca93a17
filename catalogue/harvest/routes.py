"""The sources API: register harvest sources, start harvests, read their status; the node's DID.

* ``POST /catalogue/sources`` (operator token) — add or update a source: ``201`` new, ``200``
  updated, with its status;
* ``GET /catalogue/sources`` · ``GET /catalogue/sources/{id}`` — status, counts, last error,
  the latest rejections and quarantined records with their reasons;
* ``POST /catalogue/sources/{id}/harvest`` (operator token) — harvest now, in the background:
  ``202`` (``409`` when a run of that source is under way);
* ``GET /.well-known/did.json`` — the node's did:web document (the key its DSP requests and
  record proofs use).

The operator token is a bearer token whose SHA-256 the node's ``node.toml`` holds; without one
configured, every write here answers ``403``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from catalogue.harvest._fetch import FetchError
from catalogue.harvest._run import HarvestError
from catalogue.harvest.config import MAX_SOURCES, ConfigError, parse_source
from catalogue.harvest.federation import Federation, settings_for
from catalogue.publish import CataloguePublisher
from connector.http import FieldError, ProblemError, bearer_token

PROBLEM_BASE = "https://w3id.org/sluis/problems/"
MAX_SOURCE_BODY_BYTES = 64 * 1024

router = APIRouter()


def _problem(status: int, code: str, title: str, field: str, reason: str) -> ProblemError:
    return ProblemError(status, title, f"{field}: {reason}", PROBLEM_BASE + code, [FieldError(field, reason)])


def _federation(request: Request) -> Federation:
    federation: Federation = request.app.state.federation
    return federation


def _operator(request: Request) -> None:
    federation = _federation(request)
    token = bearer_token(request.headers.get("authorization"))
    if not federation.settings.operator_token_sha256:
        raise _problem(
            403,
            "no-operator",
            "No operator configured",
            "Authorization",
            "this node has no operator token (sluis catalogue init writes one)",
        )
    if token is None or not federation.settings.operator_token_ok(token):
        raise _problem(
            401, "unauthorized", "Invalid operator token", "Authorization", "missing or wrong operator token"
        )


def _known(federation: Federation, source_id: str) -> dict[str, Any]:
    status = federation.status(source_id) if len(source_id) <= 63 else None
    if status is None:
        raise _problem(404, "unknown-source", "No such source", "id", f"no source {source_id[:80]!r}")
    return status


@router.post("/catalogue/sources")
async def add_source(request: Request) -> JSONResponse:
    _operator(request)
    body = await request.body()
    if len(body) > MAX_SOURCE_BODY_BYTES:
        raise _problem(
            413, "body-too-large", "Body too large", "body", f"at most {MAX_SOURCE_BODY_BYTES} bytes"
        )
    try:
        raw = json.loads(body)
    except ValueError:
        raise _problem(
            400, "invalid-json", "Not JSON", "body", "a JSON object describing the source"
        ) from None
    if not isinstance(raw, dict):
        raise _problem(
            400, "invalid-json", "Not a JSON object", "body", "a JSON object describing the source"
        )
    try:
        source = parse_source(raw, "source")
    except ConfigError as error:
        raise _problem(
            400, "invalid-source", "Invalid source", error.field.removeprefix("source."), error.reason
        ) from None
    federation = _federation(request)
    try:  # resolving the host may take the resolver's time: not on the event loop
        await run_in_threadpool(federation.harvester.fetcher.check, source.url)
    except FetchError as error:
        if error.code == "address-refused":
            raise _problem(400, "invalid-source", "Invalid source", "url", error.message) from None
    if federation.ledger.source(source.id) is None and len(federation.ledger.sources()) >= MAX_SOURCES:
        raise _problem(
            409, "too-many-sources", "Too many sources", "id", f"a node keeps at most {MAX_SOURCES}"
        )
    created = federation.add_source(source)
    return JSONResponse(
        _known(federation, source.id),
        status_code=201 if created else 200,
        headers={"Location": f"/catalogue/sources/{source.id}"},
    )


@router.get("/catalogue/sources")
def list_sources(request: Request) -> dict[str, Any]:
    federation = _federation(request)
    return {"sources": [federation.status(source.id) for source in federation.ledger.sources()]}


@router.get("/catalogue/sources/{source_id}")
def read_source(source_id: str, request: Request) -> dict[str, Any]:
    return _known(_federation(request), source_id)


@router.post("/catalogue/sources/{source_id}/harvest", status_code=202)
def start_harvest(source_id: str, request: Request) -> JSONResponse:
    _operator(request)
    federation = _federation(request)
    _known(federation, source_id)
    try:
        started = federation.harvest_in_background(source_id)
    except HarvestError as error:
        raise _problem(404, error.code, "No such source", "id", error.message) from None
    if not started:
        raise _problem(409, "already-running", "Harvest under way", "id", "a run of this source is under way")
    return JSONResponse(_known(federation, source_id), status_code=202)


@router.get("/.well-known/did.json")
def node_did(request: Request) -> dict[str, Any]:
    return _federation(request).did_document()


def install_federation(
    app: FastAPI, publisher: CataloguePublisher, data_dir: Path, public_url: str
) -> Federation:
    """Open the node's federation (``DIR/node.toml``, ``DIR/harvest.sqlite``) and add its routes."""
    federation = Federation(publisher, data_dir, settings_for(data_dir, public_url))
    app.state.federation = federation
    app.include_router(router)
    return federation
