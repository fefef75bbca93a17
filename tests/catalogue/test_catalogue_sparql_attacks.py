"""Anonymous SPARQL queries that knocked a node over, each sent to a real node: a 4xx, and the node
keeps answering. Then the worker's own guarantees, which hold when a query gets past the checker:
no network, a memory limit, a hard kill on the time limit, a fresh worker after a death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from catalogue.store.sparql_check import (
    MAX_ALGEBRA_DEPTH,
    MAX_ALGEBRA_NODES,
    MAX_CHAIN,
    MAX_PATH_ALTERNATIVES,
    MAX_PATH_ELEMENTS,
)
from tests.catalogue.catalogue_records import dataset_turtle
from tests.catalogue.conftest import NodeFactory, RunningNode, running_node
from vocab.rdfio import DEFAULT_MAX_LITERAL_CHARS

REPO_ROOT = Path(__file__).resolve().parents[2]
EVIL = "http://127.0.0.1:9/sparql"
OVER = MAX_CHAIN + 1


def _chain(part: str, count: int) -> str:
    return " ".join(part.format(n=n) for n in range(count))


ATTACKS: dict[str, tuple[str, str]] = {
    "union-chain": (
        "SELECT * WHERE { " + " UNION ".join(f"{{ ?s ?p {n} }}" for n in range(OVER + 1)) + " }",
        "UNION",
    ),
    "optional-chain": (
        "SELECT * WHERE { ?s ?p ?o " + _chain("OPTIONAL {{ ?s <urn:p{n}> ?o{n} }}", OVER) + " }",
        "OPTIONAL",
    ),
    "minus-chain": (
        "SELECT * WHERE { ?s ?p ?o " + _chain("MINUS {{ ?s <urn:p{n}> ?o }}", OVER) + " }",
        "MINUS",
    ),
    "bind-chain": ("SELECT * WHERE { ?s ?p ?o " + _chain("BIND({n} AS ?b{n})", OVER) + " }", "BIND"),
    "long-expression": (
        "SELECT * WHERE { ?s ?p ?o FILTER(" + "+".join(["1"] * (MAX_ALGEBRA_NODES + 10)) + " > 0) }",
        "too large",
    ),
    "nested-expression": (
        "SELECT * WHERE { ?s ?p ?o FILTER(" + "(" * 400 + "1" + ")" * 400 + " > 0) }",
        "nest",
    ),
    "path-alternatives": (
        "SELECT * WHERE { ?s "
        + "|".join(f"<urn:p{n}>" for n in range(MAX_PATH_ALTERNATIVES + 2))
        + " ?o }",
        "alternatives",
    ),
    "path-length": (
        "SELECT * WHERE { ?s " + "/".join(f"<urn:p{n}>" for n in range(MAX_PATH_ELEMENTS + 2)) + " ?o }",
        "path",
    ),
    "deep-groups": ("SELECT * WHERE " + "{ " * 10_000 + "?s ?p ?o" + " }" * 10_000, "nest"),
    "groups-past-depth": (
        "SELECT * WHERE " + "{ " * (MAX_ALGEBRA_DEPTH + 5) + "?s ?p ?o" + " }" * (MAX_ALGEBRA_DEPTH + 5),
        "nest",
    ),
    "service": (f"SELECT * WHERE {{ SERVICE <{EVIL}> {{ ?s ?p ?o }} }}", "SERVICE"),
    "service-after-comment-quote": (
        f'SELECT * WHERE {{ ?s ?p ?o # "\n SERVICE <{EVIL}> {{ ?s ?p ?o }} }}',
        "SERVICE",
    ),
    "service-in-escaped-quote": (
        f'SELECT * WHERE {{ ?s ?p "a\\u0022 . SERVICE <{EVIL}> {{ ?s ?p ?o }} }} #" }}',
        "SERVICE",
    ),
    "service-silent-lowercase": (f"select * where {{ service silent <{EVIL}> {{ ?s ?p ?o }} }}", "SERVICE"),
    "cross-join-order-by": ("SELECT * WHERE { ?s ?p ?o . ?a ?b ?c } ORDER BY ?o ?c", "cross product"),
    "cross-join-of-groups": ("SELECT * WHERE { { ?s ?p ?o } { ?a ?b ?c } } ORDER BY ?o ?c", "cross product"),
    "cross-join-optional": ("SELECT * WHERE { ?s ?p ?o OPTIONAL { ?a ?b ?c } }", "cross product"),
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("sparql-attacks"), sparql_concurrency=1) as running:
        assert running.publish(dataset_turtle("grid-load")).status_code == 201
        yield running


def _ask(node: RunningNode) -> bool:
    reply = node.client.get("/catalogue/sparql", params={"query": "ASK { ?s ?p ?o }"})
    assert reply.status_code == 200, reply.text
    return bool(reply.json()["boolean"])


@pytest.mark.parametrize(("query", "named"), list(ATTACKS.values()), ids=list(ATTACKS))
def test_a_hostile_query_is_refused_and_the_node_keeps_answering(
    node: RunningNode, query: str, named: str
) -> None:
    reply = node.client.post(
        "/catalogue/sparql", content=query.encode(), headers={"Content-Type": "application/sparql-query"}
    )
    assert reply.status_code == 400, reply.text[:500]
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert [error["field"] for error in problem["errors"]] == ["query"]
    assert named.lower() in problem["detail"].lower(), problem["detail"]
    assert _ask(node)


def _worker_processes() -> set[int]:
    """Live SPARQL workers started by this process."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        state = stat.rsplit(")", 1)[1].split()[0]
        if parent == os.getpid() and b"_sparql_worker" in command and state != "Z":
            found.add(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """True until the kernel has ended the process: its main thread a zombie and no other thread
    left (the store's threads outlive the main one by a moment, and until they are gone the
    process cannot be reaped)."""
    folder = Path("/proc") / str(pid)
    try:
        state = (folder / "stat").read_text().rsplit(")", 1)[1].split()[0]
        threads = len(os.listdir(folder / "task"))
    except OSError:
        return False
    return state != "Z" or threads > 1


def _heavy() -> str:
    """Joined on the predicate only: every statement meets every other with the same predicate."""
    return "SELECT * WHERE { ?a ?p ?c . ?d ?p ?f . ?g ?p ?i . ?j ?p ?l . ?m ?p ?n } ORDER BY ?c ?f ?i ?l ?n"


def test_a_query_past_its_time_limit_is_killed_not_left_running(start_node: NodeFactory) -> None:
    with start_node(sparql_timeout_seconds=0.5, sparql_concurrency=1) as node:
        for n in range(3):
            assert node.publish(dataset_turtle(f"set-{n}")).status_code == 201
        assert _ask(node)
        (worker,) = node.node.sparql.idle_workers()
        reply = node.client.get("/catalogue/sparql", params={"query": _heavy()})
        assert reply.status_code == 422, reply.text
        assert reply.json()["time_limit_seconds"] == 0.5
        assert worker not in _worker_processes(), "the query runs on after its answer"
        assert _ask(node)
        assert node.node.sparql.idle_workers() != [worker]


def test_a_worker_killed_from_outside_is_replaced(start_node: NodeFactory) -> None:
    with start_node(sparql_concurrency=1) as node:
        assert _ask(node) is False  # an empty store
        (worker,) = node.node.sparql.idle_workers()
        os.kill(worker, signal.SIGKILL)
        while _running(worker):
            threading.Event().wait(0.01)
        assert _ask(node) is False  # empty store, and a new worker answered
        assert node.node.sparql.idle_workers() != [worker]


def _big_literal_record(size: int) -> str:
    return dataset_turtle("big", description="x" * size)


def test_a_query_over_its_memory_limit_ends_its_worker_not_the_node(start_node: NodeFactory) -> None:
    with start_node(sparql_memory_bytes=64 * 1024 * 1024, sparql_concurrency=1) as node:
        assert node.publish(_big_literal_record(DEFAULT_MAX_LITERAL_CHARS)).status_code == 201
        # Connected, so the checker lets it through; the concatenation needs hundreds of MB (the
        # literals only: STR of a blank node is an error, which ends the aggregate early).
        query = (
            "SELECT (GROUP_CONCAT(STR(?o)) AS ?all) WHERE { ?s ?p ?o . ?s ?q ?other . ?s ?r ?third "
            "FILTER(isLiteral(?o)) }"
        )
        reply = node.client.get("/catalogue/sparql", params={"query": query})
        assert reply.status_code == 422, reply.text[:300]
        assert "memory" in reply.json()["detail"]
        assert _ask(node)


def test_results_are_capped_in_bytes_as_well_as_rows(start_node: NodeFactory) -> None:
    cap = 64 * 1024
    with start_node(sparql_max_result_bytes=cap) as node:
        assert node.publish(_big_literal_record(DEFAULT_MAX_LITERAL_CHARS)).status_code == 201
        assert node.publish(dataset_turtle("small")).status_code == 201
        query = "SELECT ?d ?text WHERE { ?d <http://purl.org/dc/terms/description> ?text } ORDER BY ?text"
        reply = node.client.get("/catalogue/sparql", params={"query": query})
        assert reply.status_code == 200
        assert len(reply.content) <= cap
        assert reply.headers["sluis-results-truncated"] == "true"
        rows = reply.json()["results"]["bindings"]
        assert [len(row["text"]["value"]) < cap for row in rows] == [True] * len(rows)
        assert int(reply.headers["sluis-results-count"]) == len(rows)


class _Counter(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Counter.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        body = b'{"head":{"vars":["s"]},"results":{"bindings":[{"s":{"type":"uri","value":"urn:stolen"}}]}}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def remote_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Counter.hits.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sparql"
    finally:
        server.shutdown()


SERVICE_PROBE = """
import sys
import pyoxigraph as ox
from catalogue.store._no_network import deny_network
if sys.argv[2] == "isolated":
    assert deny_network()
try:
    rows = list(ox.Store().query("SELECT * WHERE { SERVICE <%s> { ?s ?p ?o } }" % sys.argv[1]))
    print("rows", len(rows))
except OSError as error:
    print("refused", error)
"""


@pytest.mark.parametrize("mode", ["isolated", "open"])
def test_the_worker_process_cannot_reach_a_service_endpoint_even_past_the_checker(
    remote_endpoint: str, mode: str
) -> None:
    """The engine itself, given SERVICE directly: without the filter it fetches (the control)."""
    done = subprocess.run(
        [sys.executable, "-c", SERVICE_PROBE, remote_endpoint, mode],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
        check=True,
    )
    if mode == "isolated":
        assert done.stdout.startswith("refused"), done.stdout
        assert _Counter.hits == []
    else:
        assert done.stdout.startswith("rows 1"), done.stdout + done.stderr
        assert _Counter.hits


def test_a_busy_node_refuses_more_queries_than_workers_with_429(start_node: NodeFactory) -> None:
    with start_node(sparql_timeout_seconds=3, sparql_concurrency=1) as node:
        for n in range(3):
            assert node.publish(dataset_turtle(f"set-{n}")).status_code == 201
        assert _ask(node)
        heavy = threading.Thread(
            target=lambda: httpx.get(f"{node.url}/catalogue/sparql", params={"query": _heavy()}, timeout=30)
        )
        heavy.start()
        try:
            for _ in range(200):
                if not node.node.sparql.idle_workers():
                    break
                threading.Event().wait(0.01)
            reply = node.client.get("/catalogue/sparql", params={"query": "ASK { ?s ?p ?o }"})
            assert reply.status_code == 429, reply.text
            assert reply.json()["errors"][0]["field"] == "query"
        finally:
            heavy.join()
        assert _ask(node)
