"""Catalogue nodes as ``sluis catalogue serve`` processes, and misbehaving peers, on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 60.0
#: A's per-request timeout in these tests; the slow peer answers later than this.
PEER_TIMEOUT_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sluis(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluis.cli", *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


class Process:
    """One server process; its output goes to a log file shown when it fails."""

    def __init__(self, name: str, argv: list[str], ready_url: str, log_dir: Path) -> None:
        self.name, self.ready_url = name, ready_url
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} never answered: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def catalogue_process(name: str, data: Path, port: int, log_dir: Path) -> Process:
    argv = [sys.executable, "-m", "sluis.cli", "catalogue", "serve", "--data", str(data), "--port", str(port)]
    return Process(name, argv, f"http://127.0.0.1:{port}/catalogue/node", log_dir)


def _bad_peer_app(real_node: str, release: threading.Event) -> Starlette:
    """A peer that loops, stalls, serves garbage or a 500, or tampers with a real node's pages."""

    async def held(_: Request) -> Response:
        """Trickles Turtle comments until the test releases it (at most a minute)."""
        import asyncio

        async def drip() -> AsyncIterator[bytes]:
            for _ in range(300):
                if release.is_set():
                    return
                yield b"# still here\n"
                await asyncio.sleep(0.2)

        return StreamingResponse(drip(), media_type="text/turtle")

    async def loop(request: Request) -> Response:
        number = int(request.query_params.get("page", "1"))
        nxt = f"http://127.0.0.1:{request.url.port}/loop?page={2 if number == 1 else 1}"
        body = f"@prefix hydra: <http://www.w3.org/ns/hydra/core#> .\n<{request.url}> hydra:next <{nxt}> .\n"
        return Response(body, media_type="text/turtle")

    async def endless(request: Request) -> Response:
        """A catalogue that never ends: every page holds 20 new datasets and links to another."""
        number = int(request.query_params.get("page", "1"))
        base = f"http://127.0.0.1:{request.url.port}/endless"
        lines = [
            "@prefix dcat: <http://www.w3.org/ns/dcat#> .",
            "@prefix dct: <http://purl.org/dc/terms/> .",
            "@prefix hydra: <http://www.w3.org/ns/hydra/core#> .",
            f"<{base}?page={number}> hydra:next <{base}?page={number + 1}> .",
        ]
        for item in range(20):
            lines.append(
                f'<{base}/dataset/{number}-{item}> a dcat:Dataset ; dct:title "Endless {number}-{item}"@en .'
            )
        return Response("\n".join(lines), media_type="text/turtle")

    async def slow(_: Request) -> Response:
        import asyncio

        await asyncio.sleep(PEER_TIMEOUT_SECONDS * 5)
        return Response("", media_type="text/turtle")

    async def garbage(_: Request) -> Response:
        return Response(b"\x00\xffthis is <not turtle at all ;;; .\n" * 50, media_type="text/turtle")

    async def empty(_: Request) -> Response:
        return Response("# an empty catalogue\n", media_type="text/turtle")

    async def failing(_: Request) -> Response:
        return PlainTextResponse("boom", status_code=500)

    async def tampered(request: Request) -> Response:
        page = httpx.get(f"{real_node}/catalogue/catalog", params=dict(request.query_params), timeout=10)
        body = page.text.replace("Renewable energy", "Tampered energy")
        return Response(body, media_type="text/turtle")

    async def elsewhere(_: Request) -> Response:
        return Response(status_code=302, headers={"Location": "http://localhost:1/catalogue/catalog"})

    return Starlette(
        routes=[
            Route("/loop", loop),
            Route("/slow", slow),
            Route("/garbage", garbage),
            Route("/failing", failing),
            Route("/tampered/catalogue/catalog", tampered),
            Route("/elsewhere", elsewhere),
            Route("/held", held),
            Route("/empty", empty),
            Route("/endless", endless),
        ]
    )


class BadPeer:
    def __init__(self, real_node: str) -> None:
        self.port = free_port()
        self.release = threading.Event()
        config = uvicorn.Config(
            _bad_peer_app(real_node, self.release), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BadPeer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self.server.should_exit = True
        self.thread.join(timeout=10)


def turtle_server(routes: dict[str, str]) -> uvicorn.Server:
    """A uvicorn server (not started) answering GET ``/{name}`` with ``routes[name]`` as Turtle;
    the test edits ``routes`` between harvests."""

    async def serve(request: Request) -> Response:
        body = routes.get(request.path_params["name"])
        if body is None:
            return PlainTextResponse("no such catalogue", status_code=404)
        return Response(body, media_type="text/turtle")

    app = Starlette(routes=[Route("/{name}", serve)])
    return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))


class Serving:
    """Runs a uvicorn server in a thread for a ``with`` block."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.config.port}"

    def __enter__(self) -> Serving:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
