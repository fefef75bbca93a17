"""Record identity is (source, dataset IRI): each source's version is kept in a graph of its own,
the dataset shows once with every origin, the shown version and its trust facet belong together,
and a deletion at one source removes only that source's version. On the embedded store and index
and on the shared ones (Virtuoso, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogue.api import CatalogueNode, open_node
from catalogue.config import CatalogueConfig
from catalogue.harvest import Federation, NodeSettings, Run, RunState, Source
from catalogue.harvest._versions import source_graph
from catalogue.index import SearchQuery
from catalogue.publish import record_id_for
from tests.distributed.conftest import virtuoso_server_url, virtuoso_url  # noqa: F401 (fixtures)
from tests.federation.conftest import Serving, turtle_server

DATASET = "https://data.example.org/dataset/air-quality"
OTHER = "https://data.example.org/dataset/noise"


def _catalogue(*entries: tuple[str, str]) -> str:
    lines = ["@prefix dcat: <http://www.w3.org/ns/dcat#> .", "@prefix dct: <http://purl.org/dc/terms/> ."]
    for dataset, title in entries:
        lines.append(
            f'<{dataset}> a dcat:Dataset ; dct:title "{title}"@en ; '
            "dct:publisher [ a <http://xmlns.com/foaf/0.1/Agent> ] ."
        )
    return "\n".join(lines)


@pytest.fixture(params=["embedded", "shared"])
def config(request: pytest.FixtureRequest) -> CatalogueConfig:
    if request.param == "embedded":
        return CatalogueConfig()
    store = request.getfixturevalue("virtuoso_url")
    index = request.getfixturevalue("postgres_url")
    return CatalogueConfig(store_url=store, index_url=index)


@pytest.fixture
def node(config: CatalogueConfig, tmp_path: Path) -> Iterator[CatalogueNode]:
    opened = open_node(tmp_path / "node", config)
    try:
        yield opened
    finally:
        opened.close()


def _done(run: Run) -> Run:
    assert run.state is RunState.DONE, run.error
    return run


def test_each_source_keeps_its_version_and_a_deletion_removes_only_its_own(
    node: CatalogueNode, tmp_path: Path
) -> None:
    routes = {"one": _catalogue((DATASET, "Air quality (one)")), "two": _catalogue((OTHER, "Noise"))}
    with Serving(turtle_server(routes)) as server:
        sources = (Source("one", f"{server.url}/one", "dcat"), Source("two", f"{server.url}/two", "dcat"))
        settings = NodeSettings(public_url="http://127.0.0.1:9", sources=sources)
        federation = Federation(node.publisher, tmp_path / "node", settings)
        try:
            record = record_id_for(DATASET)
            _done(federation.harvest("one"))
            routes["two"] = _catalogue((DATASET, "Air quality (two)"), (OTHER, "Noise"))
            _done(federation.harvest("two"))

            # Once in search, with both origins; the version that changed last is shown.
            hits = node.index.search(SearchQuery(q="air")).hits
            assert [hit.id for hit in hits] == [record]
            assert {o["source"] for o in federation.origins([record])[record]} == {"one", "two"}
            assert "Air quality (two)" in node.store.current(record).content  # type: ignore[union-attr]
            # Each source's own version, in its own graph, as it served it.
            graphs = node.store
            one = graphs.source_copy(source_graph("one", DATASET))  # type: ignore[attr-defined]
            assert any("Air quality (one)" in line for line in one)
            assert any(line.startswith("_:") for line in one)  # blank nodes come back as blank nodes
            # The public SPARQL endpoint (the union of graphs) sees the shown version only: the
            # dataset once, with the shown title, never the other source's (hidden) version.
            answer = json.loads(node.sparql.run(
                "SELECT ?title WHERE { <" + DATASET + "> <http://purl.org/dc/terms/title> ?title }"
            ).body)
            titles = [row["title"]["value"] for row in answer["results"]["bindings"]]
            assert titles == ["Air quality (two)"]

            # Two drops it: one's version is shown again, nothing is retracted.
            routes["two"] = _catalogue((OTHER, "Noise"))
            swept = _done(federation.harvest("two"))
            assert swept.counts.get("deleted", 0) == 0
            current = node.store.current(record)
            assert current is not None
            assert not current.deleted
            assert "Air quality (one)" in current.content
            assert current.source == "urn:sluis:source:one"
            assert graphs.source_copy(source_graph("two", DATASET)) == []  # type: ignore[attr-defined]
            assert [o["source"] for o in federation.origins([record])[record]] == ["one"]

            # One drops it too: now it is gone.
            routes["one"] = _catalogue()
            assert _done(federation.harvest("one")).counts["deleted"] == 1
            assert node.index.search(SearchQuery(q="air")).total == 0
        finally:
            federation.close()
