"""A private Virtuoso (started by ./dev test) emptied of the catalogue's graphs for each test."""

from __future__ import annotations

import os

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


@pytest.fixture
def virtuoso_url(virtuoso_server_url: str) -> str:
    """The endpoint as a store URL (``sparql+http://…``), holding no catalogue data."""
    _clear(virtuoso_server_url)
    return "sparql+" + virtuoso_server_url
