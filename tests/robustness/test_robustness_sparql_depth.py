"""A SPARQL query nested thousands of groups deep, sent to a catalogue node in its own process.

Oxigraph's SPARQL parser recurses per nesting level in native code; past the thread's stack it
does not raise, it takes the whole process down. The node must refuse such a query (400 naming
``query``) and keep serving. It runs as ``sluis catalogue serve`` in a subprocess so that, while
the bug is open, the crash it causes is observed instead of ending the test run.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluis.servers import free_port
from tests.robustness.hostile import Rejection, Reply, assert_rejected, http
from tests.robustness.known_bugs import known

REPO_ROOT = Path(__file__).resolve().parents[2]
NESTING = 10_000
START_SECONDS = 60.0
START_ATTEMPTS = 4


def _start_node(data: Path, log_path: Path) -> tuple[str, subprocess.Popen[bytes]] | None:
    """``sluis catalogue serve`` on a free port; None when the port was taken before it bound."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sluis.cli",
                "catalogue",
                "serve",
                "--data",
                str(data),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while process.poll() is None:
        try:
            if httpx.get(f"{url}/catalogue/node", timeout=1).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the catalogue node did not start")
        time.sleep(0.1)
    return None


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    log_path = tmp_path / "node.log"
    for attempt in range(START_ATTEMPTS):
        started = _start_node(tmp_path / f"node-{attempt}", log_path)
        if started is not None:
            break
    else:
        raise AssertionError(log_path.read_text()[-2000:])
    url, process = started
    try:
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@known("test_a_deeply_nested_sparql_query_is_refused_and_the_node_survives")
def test_a_deeply_nested_sparql_query_is_refused_and_the_node_survives(
    node_process: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = node_process
    query = "SELECT * WHERE " + "{" * NESTING + " ?s ?p ?o " + "}" * NESTING
    try:
        reply = Reply.of(
            http().post(
                f"{url}/catalogue/sparql",
                content=query.encode(),
                headers={"Content-Type": "application/sparql-query"},
            )
        )
    except httpx.HTTPError as error:
        reply = Reply(0, {}, b"", note=f"({error.__class__.__name__}: {error})")
    if reply.status == 0:
        with contextlib.suppress(subprocess.TimeoutExpired):  # a crash takes a moment to be reaped
            process.wait(timeout=5)
    reply.note += f" (node exit code: {process.returncode})"
    assert_rejected(
        reply, Rejection(statuses={400, 413, 422}, fields={"query"}), f"SPARQL nested {NESTING} deep"
    )
    assert process.poll() is None, "the catalogue node died"
    assert http().get(f"{url}/catalogue/node").status_code == 200
