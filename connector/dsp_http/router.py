"""FastAPI routes of the DSP 2025-1 HTTPS binding: catalog, negotiations, transfers.

Each route authenticates the caller's token, reads the body within limits, checks the message
(fast path for the known compact form) and hands it to the service. Failures are DSP error
messages (``CatalogError``, ``ContractNegotiationError``, ``TransferError``) with the status
code that says what went wrong: 400 bad message or illegal transition, 401 no valid token,
404 unknown or not yours, 409 concurrent change, 413 body too large - never a 500 for bad input.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Executor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from connector.control import ConnectorService, DspError, DspReply
from connector.http import (
    BodyError,
    SafeJSONResponse,
    check_json_content_type,
    parse_json,
    read_body_bytes,
)
from connector.identity import IdentityError, VerifiedClaims
from connector.observability import tracing
from vocab import dsp
from vocab.dsp import DSP_CONTEXT_URL, MAX_MESSAGE_DEPTH

#: Largest DSP message accepted. Real messages are a few KiB; an agreement with many rules and
#: two proofs stays far below this. Checked on Content-Length and again while streaming.
MAX_DSP_BODY_BYTES = 256 * 1024
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
#: Contexts one message may name; the official messages name one or two.
MAX_CONTEXT_ENTRIES = 16
MAX_CONTEXT_URL_CHARS = 2048


def check_context(value: Any) -> None:
    """The ``@context`` form the official DSP 2025-1 schemas require, or a ``DspMessageError``.

    An array of context URLs that includes the DSP 2025-1 context. A bare string, an inline
    context object, a number or an array without the DSP context is valid JSON-LD perhaps, but
    not a DSP message; refusing it here keeps every later reading of the message on one form.
    """
    if not isinstance(value, dict):
        return  # read_message says what is wrong with a body that is not an object
    context = value.get("@context")
    if not isinstance(context, list) or not context or len(context) > MAX_CONTEXT_ENTRIES:
        raise dsp.DspMessageError(
            "@context",
            f"must be an array of 1..{MAX_CONTEXT_ENTRIES} context URLs including {DSP_CONTEXT_URL}",
        )
    if not all(isinstance(item, str) and 0 < len(item) <= MAX_CONTEXT_URL_CHARS for item in context):
        raise dsp.DspMessageError(
            "@context", "every entry must be a context URL (inline contexts are not accepted)"
        )
    if DSP_CONTEXT_URL not in context:
        raise dsp.DspMessageError("@context", f"must include {DSP_CONTEXT_URL}")


_log = logging.getLogger(__name__)

Recorder = Callable[[str, str, Mapping[str, Any]], None]
_Handler = Callable[[VerifiedClaims, dsp.DspMessage], DspReply]


def _error_body(area: str, error: DspError) -> dict[str, Any]:
    reasons = [error.reason]
    if area == "catalog":
        return dsp.catalog_error(error.code, reasons)
    if area == "negotiations":
        return dsp.negotiation_error(error.provider_pid, error.consumer_pid, error.code, reasons)
    return dsp.transfer_error(error.provider_pid, error.consumer_pid, error.code, reasons)


def dsp_error_response(path: str, status: int, code: str, reason: str) -> Response:
    """A DSP error for a request under ``/dsp`` that no route answered (the area from the path)."""
    area = path.removeprefix("/dsp/").split("/", 1)[0]
    area = area if area in ("negotiations", "transfers") else "catalog"
    return SafeJSONResponse(_error_body(area, DspError(status, code, reason)), status_code=status)


def dsp_router(
    service: ConnectorService, recorder: Recorder | None = None, *, executor: Executor | None = None
) -> APIRouter:
    """The DSP endpoints, mounted under ``/dsp``.

    ``executor``: the threads that authenticate and handle each message (its blocking work: the
    replay guard, a DID document perhaps, the service's transaction). Without one, the
    framework's thread pool; a plain executor is one hand-off with less bookkeeping per request
    (the fast paths), the framework's pool the per-message baseline.
    """
    router = APIRouter(prefix="/dsp", tags=["dsp"])

    def respond(area: str, path: str, outcome: DspReply | DspError) -> Response:
        if isinstance(outcome, DspError):
            body: dict[str, Any] | None = _error_body(area, outcome)
            status = outcome.status
        else:
            body, status = outcome.body, outcome.status
        if recorder is not None and body is not None:
            recorder("sent", path, body)
        if body is None:
            return Response(status_code=status)
        return SafeJSONResponse(body, status_code=status)

    async def handle(
        request: Request, area: str, expected: Collection[str] | None, handler: _Handler, pids: dict[str, str]
    ) -> Response:
        path = request.url.path
        authorization = request.headers.get("authorization")
        traceparent = request.headers.get(tracing.TRACEPARENT)
        raw = b""
        unreadable: BodyError | None = None
        if expected is not None:
            try:
                check_json_content_type(request.headers.get("content-type"), status=400)
                raw = await read_body_bytes(request, MAX_DSP_BODY_BYTES)
            except BodyError as error:
                unreadable = error  # reported after authentication, as if read afterwards

        def work() -> DspReply:
            # one hop to the thread pool for everything that blocks: token (replay guard, DID),
            # message check and the service's transaction
            with tracing.span(
                "dsp.receive", {"http.route": _route_template(request), "url.path": path},
                traceparent=traceparent, kind="server",
            ), service.replay_checked():
                return authenticated_work()

        def authenticated_work() -> DspReply:
            claims = service.authenticate(authorization)
            if expected is None:
                message = dsp.DspMessage("", {}, True)
            else:
                if unreadable is not None:
                    raise unreadable
                value = parse_json(raw, max_depth=MAX_MESSAGE_DEPTH)
                if recorder is not None and isinstance(value, dict):
                    recorder("received", path, value)
                check_context(value)
                message = dsp.read_message(value, expected, service.dsp_base)
            return handler(claims, message)

        try:
            outcome: DspReply | DspError
            if executor is None:
                outcome = await run_in_threadpool(work)
            else:  # the request's context (trace, log fields) goes along, as with the framework's pool
                call = contextvars.copy_context().run
                outcome = await asyncio.get_running_loop().run_in_executor(executor, call, work)
        except DspError as error:
            if not error.provider_pid and not error.consumer_pid:
                error.provider_pid = pids.get("provider", "")
                error.consumer_pid = pids.get("consumer", "")
            outcome = error
        except BodyError as error:
            outcome = DspError(
                error.status, error.code, f"{error.field}: {error.reason}", **_pid_kwargs(pids)
            )
        except dsp.DspMessageError as error:
            outcome = DspError(400, error.code, str(error), **_pid_kwargs(pids))
        except IdentityError as error:
            outcome = DspError(400, error.code, str(error), **_pid_kwargs(pids))
        return respond(area, path, outcome)

    # -- catalog ---------------------------------------------------------------------------
    @router.post("/catalog/request", summary="CatalogRequestMessage -> Catalog")
    async def catalog_request(request: Request) -> Response:
        return await handle(
            request,
            "catalog",
            {"CatalogRequestMessage"},
            lambda c, _m: DspReply(200, service.catalog_for(c)),
            {},
        )

    @router.get("/catalog/datasets/{dataset_id:path}", summary="Dataset")
    async def dataset(request: Request, dataset_id: str) -> Response:
        return await handle(
            request, "catalog", None, lambda c, _m: DspReply(200, service.dataset_for(c, dataset_id)), {}
        )

    # -- negotiations ----------------------------------------------------------------------
    @router.post(
        "/negotiations/request", status_code=201, summary="initial ContractRequestMessage (provider)"
    )
    async def negotiation_request(request: Request) -> Response:
        return await handle(
            request, "negotiations", {"ContractRequestMessage"}, service.request_negotiation, {}
        )

    @router.post("/negotiations/offers", status_code=201, summary="initial ContractOfferMessage (consumer)")
    async def negotiation_offer(request: Request) -> Response:
        return await handle(request, "negotiations", {"ContractOfferMessage"}, service.receive_offer, {})

    @router.get("/negotiations/{pid}", summary="ContractNegotiation state")
    async def negotiation_get(request: Request, pid: str) -> Response:
        return await handle(
            request, "negotiations", None, lambda c, _m: service.negotiation_state(c, pid), {"provider": pid}
        )

    negotiation_routes = {
        "request": {"ContractRequestMessage"},
        "offers": {"ContractOfferMessage"},
        "events": {"ContractNegotiationEventMessage"},
        "agreement": {"ContractAgreementMessage"},
        "agreement/verification": {"ContractAgreementVerificationMessage"},
        "termination": {"ContractNegotiationTerminationMessage"},
    }
    for suffix, types in negotiation_routes.items():
        _add_process_route(router, "negotiations", suffix, types, handle, service.negotiation_message)

    # -- transfers -------------------------------------------------------------------------
    @router.post("/transfers/request", status_code=201, summary="TransferRequestMessage (provider)")
    async def transfer_request(request: Request) -> Response:
        return await handle(request, "transfers", {"TransferRequestMessage"}, service.request_transfer, {})

    @router.get("/transfers/{pid}", summary="TransferProcess state")
    async def transfer_get(request: Request, pid: str) -> Response:
        return await handle(
            request, "transfers", None, lambda c, _m: service.transfer_state(c, pid), {"provider": pid}
        )

    transfer_routes = {
        "start": {"TransferStartMessage"},
        "suspension": {"TransferSuspensionMessage"},
        "completion": {"TransferCompletionMessage"},
        "termination": {"TransferTerminationMessage"},
    }
    for suffix, types in transfer_routes.items():
        _add_process_route(router, "transfers", suffix, types, handle, service.transfer_message)
    _add_fallback_routes(router, respond)
    return router


def _add_fallback_routes(router: APIRouter, respond: Callable[[str, str, DspError], Response]) -> None:
    """Every other path under ``/dsp`` answers a DSP error too: 405 for a known path with another
    method (with ``Allow``), 404 otherwise - the error type of the area the path names."""
    known = [route for route in router.routes if isinstance(route, APIRoute)]

    async def no_such_endpoint(request: Request) -> Response:
        path = request.url.path
        area = path.removeprefix("/dsp/").split("/", 1)[0]
        area = area if area in ("negotiations", "transfers") else "catalog"
        methods = {m for route in known if route.path_regex.match(path) for m in route.methods or ()}
        allowed = sorted(methods | ({"HEAD"} if "GET" in methods else set()))  # HEAD: as GET
        if allowed:
            error = DspError(405, "method-not-allowed", f"{request.method} is not allowed on {path}")
            response = respond(area, path, error)
            response.headers["Allow"] = ", ".join(allowed)
            return response
        error = DspError(404, "no-such-endpoint", f"{path} is not a DSP endpoint of this connector")
        return respond(area, path, error)

    for template in ("", "/{rest:path}"):
        router.add_api_route(
            template,
            no_such_endpoint,
            methods=_METHODS,
            include_in_schema=False,
            name=f"dsp-fallback{template}",
        )


def _route_template(request: Request) -> str:
    """The route's template (``/dsp/negotiations/{pid}/events``), never the path with its ids."""
    return str(getattr(request.scope.get("route"), "path", "unmatched"))


def _pid_kwargs(pids: Mapping[str, str]) -> dict[str, str]:
    return {"provider_pid": pids.get("provider", ""), "consumer_pid": pids.get("consumer", "")}


def _add_process_route(
    router: APIRouter,
    area: str,
    suffix: str,
    types: Collection[str],
    handle: Any,
    method: Callable[[VerifiedClaims, str, dsp.DspMessage], DspReply],
) -> None:
    async def endpoint(request: Request, pid: str) -> Response:
        response: Response = await handle(
            request,
            area,
            types,
            lambda claims, message: method(claims, pid, message),
            {"provider": pid, "consumer": pid},
        )
        return response

    router.add_api_route(
        f"/{area}/{{pid}}/{suffix}",
        endpoint,
        methods=["POST"],
        summary=f"{' or '.join(sorted(types))} for process {{pid}}",
        name=f"{area}-{suffix.replace('/', '-')}",
    )
