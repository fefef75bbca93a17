"""HTTP binding of the data plane: thin routes around ``DataPlane`` (mounted at ``/data``).

* ``GET  /data/{transfer}``                          the whole granted view
* ``POST /data/{transfer}/query``                    ``{"sql": "SELECT ..."}``
* ``POST /data/{transfer}/token/refresh``            a new token for a still-valid transfer
* ``GET  /data/{transfer}/obligations``              the consumer's duties under the agreement
* ``POST /data/{transfer}/obligations/{id}/fulfil``  the consumer confirms a duty (with a note)
* ``GET  /data/{transfer}/audit``                    the consumer's audit export (others redacted)
* ``GET  /data/obligations``                         the provider's listing (management token)

Reads answer Arrow IPC stream by default, Parquet or CSV by ``Accept``; every error is an RFC
9457 problem body (``code``, ``detail`` and, for a policy denial, the decision's explanation).
"""

from __future__ import annotations

import hmac
import io
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from connector.audit import export_log
from connector.dataplane.encoders import ARROW_STREAM, PARQUET, negotiate
from connector.dataplane.errors import DataPlaneError, InvalidToken, NotFound
from connector.dataplane.plane import DATA_PREFIX, DataPlane
from connector.http import BodyError, FieldError, check_json_content_type, parse_json, problem_response

# A query body is one SQL string (at most sql_guard.MAX_QUERY_CHARS) in a small JSON object.
MAX_QUERY_BODY_BYTES = 64 * 1024
# Query and fulfilment bodies are flat objects; a little room for clients that add metadata.
MAX_QUERY_BODY_DEPTH = 8
# A fulfilment note is a sentence or a reference to a deletion certificate.
MAX_EVIDENCE_CHARS = 2_000
PROBLEM_BASE = "https://w3id.org/sluis/problems/"

T = TypeVar("T")


def problem_for(error: DataPlaneError) -> JSONResponse:
    extra: dict[str, Any] = {"code": error.code}
    if error.decision is not None:
        extra["decision"] = error.decision
    headers = None
    if isinstance(error, InvalidToken):
        description = error.message.replace('"', "'")
        headers = {"WWW-Authenticate": f'DPoP error="invalid_token", error_description="{description}"'}
    return problem_response(
        error.status, error.title, error.message, PROBLEM_BASE + error.code, extra=extra, headers=headers
    )


async def _guarded(action: Callable[[], T]) -> T | JSONResponse:
    try:
        return await run_in_threadpool(action)
    except DataPlaneError as error:
        return problem_for(error)


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    """The body as one strict reading of JSON (the shared layer's rules: no duplicate keys, no
    lone surrogates or U+0000, which no database can store), declared as JSON or not declared.

    The app's JSON middleware only looks at bodies declared as JSON; the route must not read a
    body the middleware let through because it was declared as something else."""
    try:
        check_json_content_type(request.headers.get("content-type"))
    except BodyError as error:
        return problem_response(error.status, "Unsupported media type", f"{error.field}: {error.reason}",
                                errors=[FieldError(error.field, error.reason)])
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_QUERY_BODY_BYTES:
            return problem_response(413, "Body too large", f"the body exceeds {MAX_QUERY_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        data = parse_json(b"".join(chunks), max_depth=MAX_QUERY_BODY_DEPTH)
    except BodyError as error:
        return problem_response(400, "Invalid request", f"the body is not acceptable JSON: {error.reason}",
                                errors=[FieldError(error.field, error.reason)])
    if not isinstance(data, dict):
        return problem_response(400, "Invalid request", "the body must be a JSON object",
                                errors=[FieldError("body", "must be an object")])
    return data


def build_router(plane: DataPlane) -> APIRouter:
    router = APIRouter(prefix=DATA_PREFIX, tags=["data plane"])

    def start_read(request: Request, transfer_id: str, sql: str | None) -> Response:
        media_type = negotiate(request.headers.get("accept"))
        prepared = plane.prepare_read(
            transfer_id, request.headers.get("authorization"), request.headers.get("dpop"),
            request.method, request.url.path, sql, media_type, request.headers.get("sluis-identity"),
        )
        headers = {"Cache-Control": "no-store", **plane.disclosure(prepared)}
        if media_type == PARQUET:
            headers["Content-Disposition"] = f'attachment; filename="{transfer_id}.parquet"'
        if prepared.encoded is not None:  # the whole view's bytes are known: no chunked framing
            headers["Content-Length"] = str(prepared.encoded.nbytes)
        body = plane.stream(prepared)
        # A client that leaves before the first byte never starts the generator, so its
        # ``finally`` would not run: free the sandbox and the read slot when it is collected.
        weakref.finalize(body, prepared.finish)
        return StreamingResponse(body, media_type=media_type, headers=headers)

    @router.get("/obligations", summary="Provider: every tracked obligation (management token)")
    async def provider_obligations(request: Request, agreement_id: str | None = None) -> Response:
        expected = plane.management_token
        supplied = request.headers.get("authorization", "")
        if not expected or not hmac.compare_digest(supplied.encode(), f"Bearer {expected}".encode()):
            return problem_response(401, "Unauthorized", "send the management token as a Bearer token",
                                    headers={"WWW-Authenticate": "Bearer"})
        now = plane.clock()
        items = await run_in_threadpool(plane.store.obligations, agreement_id)
        return JSONResponse({"obligations": [item.to_json(now) for item in items]})

    @router.get("/{transfer_id}", summary="Read the whole granted view (Arrow IPC stream by default)",
                response_class=Response, responses={200: {"content": {ARROW_STREAM: {}}}})
    async def read_view(transfer_id: str, request: Request) -> Response:
        return await _guarded(lambda: start_read(request, transfer_id, None))

    @router.post("/{transfer_id}/query", summary="Run one SQL SELECT over the granted view",
                 response_class=Response, responses={200: {"content": {ARROW_STREAM: {}}}})
    async def query(transfer_id: str, request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, JSONResponse):
            return body
        sql = body.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            return problem_response(400, "Invalid request", "sql: a non-empty SQL string is required",
                                    errors=[FieldError("sql", "a non-empty string is required")])
        return await _guarded(lambda: start_read(request, transfer_id, sql))

    @router.post("/{transfer_id}/token/refresh", summary="Exchange the access token for a fresh one")
    async def refresh(transfer_id: str, request: Request) -> Response:
        result = await _guarded(lambda: plane.refresh(
            transfer_id, request.headers.get("authorization"), request.headers.get("dpop"), request.url.path
        ))
        if isinstance(result, JSONResponse):
            return result
        return JSONResponse(result.to_json(), headers={"Cache-Control": "no-store"})

    @router.get("/{transfer_id}/obligations", summary="Consumer: duties under this transfer's agreement")
    async def consumer_obligations(transfer_id: str, request: Request) -> Response:
        def listing() -> dict[str, Any]:
            _, agreement = plane.consumer_context(
                transfer_id, request.headers.get("authorization"), request.headers.get("dpop"),
                request.method, request.url.path,
            )
            if agreement is None:
                return {"obligations": []}
            now = plane.clock()
            return {"obligations": [item.to_json(now) for item in plane.store.obligations(agreement.id)]}

        result = await _guarded(listing)
        return result if isinstance(result, Response) else JSONResponse(result)

    @router.post("/{transfer_id}/obligations/{obligation_id}/fulfil",
                 summary="Consumer: confirm a duty is fulfilled (e.g. the data was deleted)")
    async def fulfil(transfer_id: str, obligation_id: str, request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, JSONResponse):
            return body
        evidence = body.get("evidence")
        if not isinstance(evidence, str) or not evidence.strip() or len(evidence) > MAX_EVIDENCE_CHARS:
            return problem_response(
                400, "Invalid request", f"evidence: a note of 1..{MAX_EVIDENCE_CHARS} characters is required",
                errors=[FieldError("evidence", "required, at most 2000 characters")],
            )

        def confirm() -> dict[str, Any]:
            transfer, agreement = plane.consumer_context(
                transfer_id, request.headers.get("authorization"), request.headers.get("dpop"),
                request.method, request.url.path,
            )
            agreement_id = agreement.id if agreement else transfer.agreement_id
            if not plane.store.fulfil_obligation(obligation_id, agreement_id, evidence, plane.clock()):
                raise NotFound("unknown_obligation", "no pending obligation with this id under the agreement")
            plane.audit.append({
                "kind": "obligation-fulfilled", "decision": "record", "transfer_id": transfer_id,
                "agreement_id": agreement_id, "consumer_id": transfer.consumer_id,
                "obligation_id": obligation_id, "evidence": evidence,
            })
            return {"id": obligation_id, "status": "fulfilled"}

        result = await _guarded(confirm)
        return result if isinstance(result, Response) else JSONResponse(result)

    @router.get("/{transfer_id}/audit", summary="Consumer: audit export with other consumers redacted")
    async def consumer_audit(transfer_id: str, request: Request) -> Response:
        def export() -> str:
            transfer, _ = plane.consumer_context(
                transfer_id, request.headers.get("authorization"), request.headers.get("dpop"),
                request.method, request.url.path,
            )
            out = io.StringIO()
            export_log(plane.audit, out, plane.key, plane.key.public_multibase, plane.audit_signer,
                       consumer_id=transfer.consumer_id)
            return out.getvalue()

        result = await _guarded(export)
        if isinstance(result, Response):
            return result
        return Response(result, media_type="application/jsonl")

    return router
