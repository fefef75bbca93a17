"""HEAD is answered wherever GET is, on a real server, and a 405 names every allowed method.

FastAPI's GET routes do not answer HEAD by themselves; ``/metrics`` answered 405 to a monitoring
probe's HEAD. The shared HTTP layer (``install_operations``) answers HEAD like GET for every
route of a server, and the ``Allow`` of a 405 includes HEAD where GET is served.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from connector.http import install_operations, install_problem_handlers
from sluis.servers import serve_in_thread


def _server() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things/{name}")
    async def thing(name: str) -> JSONResponse:
        return JSONResponse({"name": name}, headers={"X-Thing": name})

    @app.post("/submit")
    async def submit() -> JSONResponse:
        return JSONResponse({"ok": True})

    install_operations(app, {}, server="test")
    return app


def test_head_answers_like_get_on_every_get_route_and_405_names_head() -> None:
    with serve_in_thread(_server()) as base, httpx.Client(base_url=base, timeout=30) as client:
        for path in ("/metrics", "/health/live", "/health/ready", "/things/a"):
            got, head = client.get(path), client.head(path)
            assert head.status_code == got.status_code == 200, path
            assert head.content == b"", path
            assert head.headers["content-type"] == got.headers["content-type"], path
            if path != "/metrics":  # the metrics text grows with every request
                assert head.headers["content-length"] == got.headers["content-length"], path
        assert client.head("/things/b").headers["x-thing"] == "b"
        assert client.head("/nowhere").status_code == 404

        wrong = client.post("/metrics")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "GET, HEAD"
        assert wrong.headers["content-type"].startswith("application/problem+json")
        post_only = client.head("/submit")  # no GET here, so no HEAD either
        assert post_only.status_code == 405
        assert post_only.headers["allow"] == "POST"
        assert post_only.content == b""
