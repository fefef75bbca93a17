"""Liveness, readiness and Prometheus metrics for every Sluis server, installed in one call.

``GET /health/live`` answers 200 while the process can answer at all (on the event loop, no
I/O). ``GET /health/ready`` runs the server's readiness checks - for a connector: its database,
its outbox (table readable, worker running) and its signing key - and answers 200 when all
pass, otherwise 503 naming each failing check and why. ``GET /metrics`` is the Prometheus text
format: requests by route template, method and status, and their durations.

Routes are labelled by their *template* (``/dsp/negotiations/{pid}/events``), never by the raw
path, and paths that match no route share one label, so a client cannot grow the number of
series. Each app has its own registry: several servers in one process (the demo, the tests)
keep separate counts. A check gets :data:`CHECK_TIMEOUT_SECONDS`; one that takes longer fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.http.middleware import HeadAsGet
from connector.http.openapi import Operation, content
from connector.http.problems import problem_response

Check = Callable[[], object]

#: How long one readiness check may take before it counts as failed.
CHECK_TIMEOUT_SECONDS = 5.0
UNMATCHED = "(unmatched)"
_STATUS_SCHEMA = {"type": "object", "required": ["status", "server"]}
#: The routes :func:`install_operations` adds, for a server's published OpenAPI table.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/health/live"): Operation({200: {"content": content(("application/json",), _STATUS_SCHEMA)}}),
    ("GET", "/health/ready"): Operation(
        {200: {"content": content(("application/json",), _STATUS_SCHEMA)}},
        (503,),
        notes={503: "Not ready: the problem's checks member names each failing check and why"},
    ),
    ("GET", "/metrics"): Operation({200: {"content": content(("text/plain",))}}),
}
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """ASGI middleware counting every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp, requests: Counter, durations: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.durations = durations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes everything is a 500 to the client

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", UNMATCHED)) if route is not None else UNMATCHED
            method = str(scope.get("method", ""))
            if method not in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}:
                method = "other"
            self.requests.labels(template, method, str(status)).inc()
            self.durations.labels(template, method).observe(time.perf_counter() - started)


def _run_check(check: Check) -> str | None:
    try:
        check()
    except Exception as error:  # a failing check is reported, whatever it raised
        return f"{type(error).__name__}: {error}"[:300]
    return None


def install_operations(app: FastAPI, checks: Mapping[str, Check], *, server: str) -> CollectorRegistry:
    """Add ``/health/live``, ``/health/ready`` and ``/metrics`` to ``app``; returns its registry.

    Every server calls this, so HEAD is answered here for all of its GET routes
    (:class:`~connector.http.middleware.HeadAsGet`, outside the middleware added before).
    """
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter(
        "sluis_http_requests",
        "HTTP requests answered, by route template, method and status.",
        ["route", "method", "status"],
        registry=registry,
    )
    durations = Histogram(
        "sluis_http_request_duration_seconds",
        "Time from request to the end of the response, by route template and method.",
        ["route", "method"],
        registry=registry,
        buckets=_BUCKETS,
    )
    failures = Counter(
        "sluis_readiness_failures", "Readiness checks that failed, by check.", ["check"], registry=registry
    )
    app.add_middleware(RequestMetrics, requests=requests, durations=durations)
    app.add_middleware(HeadAsGet)

    @app.get("/health/live", tags=["operations"], summary="The process answers")
    async def live() -> JSONResponse:
        return JSONResponse({"status": "live", "server": server})

    @app.get("/health/ready", tags=["operations"], summary="Database, outbox, keys and the rest reachable")
    async def ready() -> JSONResponse:
        results: dict[str, Any] = {}
        for name, check in checks.items():
            try:
                failure = await asyncio.wait_for(run_in_threadpool(_run_check, check), CHECK_TIMEOUT_SECONDS)
            except TimeoutError:
                failure = f"did not answer within {CHECK_TIMEOUT_SECONDS} s"
            if failure is not None:
                failures.labels(name).inc()
            results[name] = "ok" if failure is None else failure
        failing = sorted(name for name, value in results.items() if value != "ok")
        if failing:
            return problem_response(
                503,
                "Not ready",
                f"failing: {', '.join(failing)}",
                code="not-ready",
                extra={"server": server, "checks": results},
            )
        return JSONResponse({"status": "ready", "server": server, "checks": results})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (text format)")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
