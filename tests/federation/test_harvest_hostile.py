"""Hostile peers at the socket: one trickling its headers a byte at a time (no read timeout ever
trips), one sending an endless page, one whose next page is on another host. Each run ends with
the reason; the whole exchange is bounded by the deadline and the byte cap."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogue.api import CatalogueNode, open_node
from catalogue.harvest import Federation, HarvestLimits, NodeSettings, RunState, Source

LIMITS = HarvestLimits(timeout_seconds=1.0, deadline_seconds=2.0, max_page_bytes=100_000)


class _Peer(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        request = sock.recv(4096).decode("latin-1")
        path = request.split(" ", 2)[1] if " " in request else "/"
        port = sock.getsockname()[1]
        try:
            if path == "/trickle":
                sock.sendall(b"HTTP/1.1 200 OK\r\n")
                for _ in range(2000):  # about 100 s of one header byte every 50 ms
                    sock.sendall(b"X")
                    time.sleep(0.05)
            elif path == "/huge":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/turtle\r\nConnection: close\r\n\r\n")
                for _ in range(100_000):
                    sock.sendall(b"# an endless comment line\n" * 100)
            elif path == "/page":
                body = (
                    "@prefix dcat: <http://www.w3.org/ns/dcat#> .\n"
                    "@prefix hydra: <http://www.w3.org/ns/hydra/core#> .\n"
                    f"<http://127.0.0.1:{port}/page> hydra:next <http://127.0.0.2:{port}/page2> .\n"
                    "<https://data.example.org/dataset/kept> a dcat:Dataset .\n"
                ).encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Type: text/turtle\r\nContent-Length: {len(body)}\r\n"
                sock.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
        except OSError:
            pass  # the harvester hung up: what the test wants


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def peer() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Peer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[CatalogueNode]:
    opened = open_node(tmp_path / "node")
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.parametrize(
    ("path", "state", "said"),
    [
        ("/trickle", RunState.FAILED, "did not finish within 2 s"),
        ("/huge", RunState.FAILED, "sent more than 100000 bytes"),
        ("/page", RunState.DONE, ""),
    ],
)
def test_a_hostile_peer_ends_its_run_with_the_reason(
    peer: str, node: CatalogueNode, tmp_path: Path, path: str, state: RunState, said: str
) -> None:
    source = Source("peer", f"{peer}{path}", "dcat")
    settings = NodeSettings(public_url="http://127.0.0.1:9", sources=(source,), limits=LIMITS)
    federation = Federation(node.publisher, tmp_path / "node", settings)
    try:
        run = federation.harvest("peer")
        rejected = federation.ledger.rejections(run.id)
    finally:
        federation.close()
    assert run.state is state, run.error
    assert said in (run.error or "")
    if path == "/page":  # the record is kept, the next page on another host is not fetched
        assert run.counts["stored"] == 1
        assert not run.complete  # so this listing sweeps nothing
        assert rejected[0]["reason"] == "link to another host than the source's; not followed"
