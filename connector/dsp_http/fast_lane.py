"""The DSP message routes, answered without the web framework's routing: the connector's
hottest requests on a short path.

A negotiation is four DSP messages, each a small ``POST`` under ``/dsp``. Profiled during the
negotiation benchmark, the framework's share of one such request - matching the path against
every route of the connector (DSP, management API, data plane, pages), the request plumbing
around the endpoint and its exception wrappers - cost about as much CPU as reading, checking and
handling the message itself.

:class:`DspFastLane` is the innermost middleware of the app. It recognises the ``POST`` routes
of the DSP router by splitting the path (``/dsp/<area>/request``, ``/dsp/<area>/<pid>/<suffix>``)
and calls the very endpoint function the framework would call, with the same route and path
parameters in the scope, so metrics and traces name the same route template and the answer is
byte for byte the same. Anything else - another method, an unknown suffix, an empty segment, a
root path - goes on to the framework as before, and the middlewares outside this one (metrics,
URL checks, body limits, authentication-first) run for every request, these included. An
exception the endpoint does not turn into a DSP error reaches the same outer error handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

_PID = "{pid}"


class DspFastLane:
    """ASGI middleware: ``POST`` requests to the DSP message routes go straight to their endpoint."""

    def __init__(self, app: ASGIApp, routes: Sequence[Any]) -> None:
        self.app = app
        #: ``/dsp/negotiations/request`` -> its route
        self._static: dict[str, APIRoute] = {}
        #: ``("negotiations", "agreement/verification")`` -> the route of ``/dsp/negotiations/{pid}/...``
        self._process: dict[tuple[str, str], APIRoute] = {}
        for route in routes:
            if not isinstance(route, APIRoute) or "POST" not in (route.methods or ()):
                continue
            parts = route.path.split("/")  # "", "dsp", area, ...
            if len(parts) < 4 or parts[1] != "dsp":
                continue
            if len(parts) >= 5 and parts[3] == _PID and "{" not in "/".join(parts[4:]):
                self._process.setdefault((parts[2], "/".join(parts[4:])), route)
            elif "{" not in route.path:
                self._static.setdefault(route.path, route)

    def _match(self, path: str) -> tuple[APIRoute, dict[str, str]] | None:
        route = self._static.get(path)
        if route is not None:
            return route, {}
        parts = path.split("/", 4)  # "", "dsp", area, pid, suffix
        if len(parts) != 5 or parts[1] != "dsp" or not parts[3]:
            return None
        route = self._process.get((parts[2], parts[4]))
        if route is None:
            return None
        return route, {"pid": parts[3]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and not scope.get("root_path"):
            path = scope.get("path")
            found = self._match(path) if isinstance(path, str) and path.startswith("/dsp/") else None
            if found is not None:
                route, params = found
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = params
                response = await route.endpoint(Request(scope, receive), **params)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
