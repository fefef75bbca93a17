"""A private Virtuoso (started by ./dev test) emptied of the catalogue's graphs for each test.

The catalogue's graph names are fixed, so two test runs on one Virtuoso (two checkouts on one
machine) would empty each other's graphs: a test holds an exclusive lock on a file named after
the server for as long as it uses it, and runs wait for each other instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="session")
def virtuoso_server_url() -> str:
    url = os.environ.get("SLUIS_TEST_VIRTUOSO_URL")
    if not url:
        pytest.skip("no Virtuoso: run the suite with ./dev test, which installs and starts one")
    return url


def _clear(url: str) -> None:
    """Drop every graph the catalogue writes (``urn:sluis:…``); Virtuoso's own graphs stay."""
    answer = httpx.post(
        url,
        data={
            "query": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } "
            'FILTER(STRSTARTS(STR(?g), "urn:sluis:")) }'
        },
        headers={"Accept": "application/sparql-results+json"},
        timeout=60,
    )
    answer.raise_for_status()
    graphs = [row["g"]["value"] for row in answer.json()["results"]["bindings"]]
    for start in range(0, len(graphs), 200):
        update = " ;\n".join(f"DROP SILENT GRAPH <{graph}>" for graph in graphs[start : start + 200])
        httpx.post(url, data={"update": update}, timeout=60).raise_for_status()


def server_lock_path(url: str) -> Path:
    """The lock file of one Virtuoso server (shared with ``bench/bench_distributed.py``)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"sluis-virtuoso-{digest}.lock"


@pytest.fixture
def virtuoso_url(virtuoso_server_url: str) -> Iterator[str]:
    """The endpoint as a store URL (``sparql+http://…``), holding no catalogue data, for this
    test alone."""
    with server_lock_path(virtuoso_server_url).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _clear(virtuoso_server_url)
            yield "sparql+" + virtuoso_server_url
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
