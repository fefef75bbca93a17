"""``create_app(config)``: one participant's connector as a FastAPI application.

Mounts the DSP endpoints (``/dsp``), the unauthenticated discovery documents
(``/.well-known/dspace-version``, ``/.well-known/did.json``), the management API
(``/management``) and, when the data plane package provides one, the data plane (``/data``).
The outbox worker runs for the lifetime of the application.
"""

from __future__ import annotations

import hmac
import html
import importlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response

from connector.callbacks import CallbackPolicy
from connector.config import ConfigError, ConnectorConfig
from connector.control import AccessIssuer, ConnectorService
from connector.dataplane.routes import build_router
from connector.dsp_client import DspClient
from connector.dsp_http import DspFastLane, dsp_error_response, dsp_router
from connector.http import (
    AuthenticateFirst,
    FieldError,
    RefuseUnstorableUrls,
    StrictJsonBodies,
    bearer_token,
    install_operations,
    install_problem_handlers,
    problem_response,
)
from connector.identity import DidResolver, KeyPair, did_document, dsp_service
from connector.identity.did import DEFAULT_CACHE_TTL_SECONDS
from connector.management import MAX_MANAGEMENT_BODY_BYTES, BodySizeLimit, management_router
from connector.observability import connector_collector
from connector.observability.tracing import TracingUnavailable, enable_tracing
from connector.openapi import describe_connector
from connector.pages import install_pages
from connector.protocol.discovery import version_document
from connector.push_receiver import PushReceiver, ReceivedData, push_router, received_router
from connector.store import Store
from vocab.jsonld import MAX_JSON_DEPTH

_log = logging.getLogger(__name__)

Recorder = Callable[[str, str, Mapping[str, Any]], None]
#: Threads that handle DSP messages on the fast paths (as many as the framework's own pool).
DSP_THREADS = 40


def _url_refusal(path: str, status: int, reason: str) -> Response:
    """A refused URL: a DSP error under ``/dsp``, a page under ``/pages``, a problem elsewhere."""
    if path == "/dsp" or path.startswith("/dsp/"):
        return dsp_error_response(path, status, "invalid-url", reason)
    if path.startswith("/pages"):
        title = "Not found" if status == 404 else "Bad request"
        page = (f"<!doctype html><html lang=en><title>{title}</title>"
                f"<h1>{title}</h1><p>{html.escape(reason)}</p>")
        return HTMLResponse(page, status_code=status)
    title = "Not found" if status == 404 else "Invalid URL"
    return problem_response(
        status, title, reason, code="invalid-url", errors=[FieldError("(url)", reason)]
    )


def _holds_token(token: str) -> Callable[[Mapping[bytes, bytes]], bool]:
    """Whether request headers carry the management bearer token (compared in constant time)."""
    expected = token.encode()

    def accepts(headers: Mapping[bytes, bytes]) -> bool:
        given = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
        return given is not None and hmac.compare_digest(given.encode(), expected)

    return accepts


def _management_unauthorised() -> Response:
    return problem_response(
        401, "Unauthorized", "a valid management bearer token is required", code="unauthorized",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _offers_dpop(headers: Mapping[bytes, bytes]) -> bool:
    """Whether a data plane request offers a key-bound token and its proof at all.

    Only the shape is checked here: the proof is single-use, so verifying it belongs to the
    route, after the body has been accepted and before the read is counted."""
    scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
    return scheme.lower() == b"dpop" and bool(token.strip()) and bool(headers.get(b"dpop", b"").strip())


#: The data plane routes that take a body (``connector.dataplane.routes``); any other method or
#: path there is answered by the router (404/405), as the published document says.
_DATA_POSTS = r"/data/[^/]+/(query|token/refresh|obligations/[^/]+/fulfil)"


def _data_unauthorised() -> Response:
    reason = "send the access token as 'Authorization: DPoP <token>' with a DPoP proof header"
    return problem_response(
        401, "Invalid access token", reason, "https://w3id.org/sluis/problems/token_missing",
        extra={"code": "token_missing"},
        headers={"WWW-Authenticate": f'DPoP error="invalid_token", error_description="{reason}"'},
    )


def _data_plane(config: ConnectorConfig, store: Store, key: Any, resolver: Any) -> Any | None:
    """The data plane, if this installation has one (``connector.dataplane.DataPlane``)."""
    module = importlib.import_module("connector.dataplane")
    factory = getattr(module, "DataPlane", None)
    if factory is None:
        try:
            factory = importlib.import_module("connector.dataplane.plane").DataPlane
        except (ImportError, AttributeError):
            _log.warning("no data plane available; transfers will be refused")
            return None
    return factory(config, store, key, store.db, key_resolver=resolver)


def _start_flight(config: ConnectorConfig, dataplane: Any | None) -> Any | None:
    """The Arrow Flight read endpoint, when ``[dataplane] flight_port`` asks for it: the same
    reads, checks, limits and audit as HTTP (``connector.dataplane.flight``)."""
    port = config.dataplane.flight_port
    if port is None or dataplane is None:
        return None
    from connector.dataplane.flight import DataFlightServer

    server = DataFlightServer(dataplane, host=config.server.host, port=port)
    server.serve_in_thread()
    _log.info("arrow flight reads", extra={"location": f"grpc://{config.server.host}:{port}"})
    return server


def create_app(
    config: ConnectorConfig,
    *,
    recorder: Recorder | None = None,
    resolver: Any | None = None,
) -> FastAPI:
    """The connector app. ``recorder`` sees every DSP message received, sent and answered."""
    if config.observability.tracing:
        try:
            enable_tracing(config.observability.trace_exporter)
        except TracingUnavailable as error:
            raise ConfigError("observability.tracing", str(error)) from None
    key = config.load_key()
    credentials = config.load_credentials()
    store = Store(config.storage.url, data_root=config.dataplane.data_root)
    store.migrate()
    participant = config.participant_id
    addresses = config.security.address_policy()
    fast = config.tuning.fast_paths
    owned_resolver = None
    if resolver is None:
        owned_resolver = resolver = DidResolver(
            allowed_hosts=config.security.did_hosts,
            address_policy=addresses,
            # the per-message baseline fetches the peer's DID document for every message
            cache_ttl_seconds=DEFAULT_CACHE_TTL_SECONDS if fast else 0.0,
        )
    dataplane = _data_plane(config, store, key, resolver)
    issuer: AccessIssuer | None = dataplane
    service = ConnectorService(
        participant_id=participant,
        key=key,
        public_url=config.server.public_url,
        store=store,
        resolver=resolver,
        trusted=config.trusted_authority,
        credentials=credentials,
        callback_policy=CallbackPolicy.of(addresses, config.security.callback_allow_list),
        dataplane=issuer,
        push_reader=dataplane,
        client=DspClient(
            participant, key, credentials, recorder=None, address_policy=addresses, keep_alive=fast
        ),
    )
    service.outbox.lease_at_commit = fast
    service.defer_replay_writes = fast
    did_doc = did_document(participant, key, [dsp_service(participant, service.dsp_base)])
    # the fast paths hand each DSP message to threads of their own (one light hop), the
    # baseline to the framework's pool
    dsp_threads = ThreadPoolExecutor(DSP_THREADS, thread_name_prefix="dsp-in") if fast else None
    dsp_routes = dsp_router(service, recorder, executor=dsp_threads)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start_worker()
        flight_server = _start_flight(config, dataplane)
        try:
            yield
        finally:
            if flight_server is not None:
                flight_server.shutdown()
            service.stop_worker()
            service.client.close()
            if dsp_threads is not None:
                dsp_threads.shutdown(wait=False, cancel_futures=True)
            if owned_resolver is not None:
                owned_resolver.close()

    app = FastAPI(
        title="Sluis connector",
        description="DSP 2025-1 control plane, management API and data plane of one participant.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    if fast:
        # added first, so it runs last: every other middleware sees DSP requests as before
        app.add_middleware(DspFastLane, routes=dsp_routes.routes)
    app.add_middleware(BodySizeLimit, prefix="/management")
    app.add_middleware(RefuseUnstorableUrls, answer=_url_refusal)
    app.add_middleware(
        StrictJsonBodies,
        prefixes=("/management", "/data"),
        max_bytes=MAX_MANAGEMENT_BODY_BYTES,
        max_depth=MAX_JSON_DEPTH,
    )
    # Added last, so they run first: who is asking is settled before any body is read.
    app.add_middleware(
        AuthenticateFirst, prefix="/management", accepts=_holds_token(config.management.token),
        refusal=_management_unauthorised,
    )
    app.add_middleware(
        AuthenticateFirst, prefix="/data", accepts=_offers_dpop, refusal=_data_unauthorised,
        methods=("POST",), pattern=_DATA_POSTS,
    )
    app.state.service = service
    app.state.store = store
    registry = install_operations(app, _readiness_checks(config, store, service, key), server="connector")
    # processes by state, the outbox, the audit head and reads allowed/denied (read when scraped)
    audit = getattr(dataplane, "audit", None)
    registry.register(connector_collector(store, service.outbox, audit, dataplane))

    @app.get("/.well-known/dspace-version", tags=["discovery"], summary="DSP versions this connector speaks")
    async def dspace_version() -> JSONResponse:
        # async on purpose: answered on the event loop, so it stays available while the worker
        # threads are busy (e.g. with slow peers)
        return JSONResponse(version_document(participant))

    @app.get("/.well-known/did.json", tags=["discovery"], summary="This participant's DID document")
    async def did_json() -> JSONResponse:
        return JSONResponse(did_doc, media_type="application/did+json")

    app.include_router(dsp_routes)
    app.include_router(management_router(service, config.management.token))
    if dataplane is not None:
        app.include_router(build_router(dataplane))
    receiver = PushReceiver(service, config.dataplane.data_root)
    app.include_router(push_router(receiver))
    app.include_router(received_router(ReceivedData(receiver), config.management.token))
    install_pages(app, service, config, data_plane=dataplane is not None)
    describe_connector(app)
    return app


def _readiness_checks(
    config: ConnectorConfig, store: Store, service: ConnectorService, key: KeyPair
) -> dict[str, Callable[[], object]]:
    """What must work for this connector to do its job; each raises when it does not."""

    def database() -> None:
        with store.db.transaction(write=False) as tx:
            tx.one("SELECT 1 AS one")

    def outbox() -> None:
        store.outbox_pending()
        if not service.outbox.running:
            raise RuntimeError("the outbox worker is not running")

    def signing_key() -> None:
        nonce = secrets.token_bytes(32)
        key.public_key.verify(key.private_key.sign(nonce), nonce)  # raises when it does not

    def data_folder() -> None:
        if not config.dataplane.data_root.is_dir():
            raise RuntimeError(f"the data folder {config.dataplane.data_root} is missing")

    return {"database": database, "outbox": outbox, "signing_key": signing_key, "data_folder": data_folder}
