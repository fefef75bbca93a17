"""Public SPARQL reads the record graphs only, on the embedded store and on Virtuoso alike.

A SPARQL server's default graph is the union of every graph it holds: on Virtuoso that included
its own system graphs (``virtrdf#``, the ontologies it ships), and on both backends the version
history (retracted records' text), each harvest source's copy, the catalogue records and the
write journal. Every query here comes through the node's runner (worker processes on snapshots
of the embedded store; the Virtuoso server itself), as ``/catalogue/sparql`` sends it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalogue.backends import open_sparql
from catalogue.config import CatalogueConfig
from catalogue.store import OxigraphStore, RecordStore
from catalogue.store.remote import SparqlEndpointStore
from catalogue.store.sparql_check import QueryRefused
from tests.distributed.test_record_stores import TITLE, version

PUBLIC = "urn:sluis:record:"
SLUIS = "https://w3id.org/sluis/ns#"


@pytest.fixture(params=["oxigraph", pytest.param("virtuoso", marks=pytest.mark.virtuoso)])
def runner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    store: RecordStore
    if request.param == "oxigraph":
        store = OxigraphStore(tmp_path / "store")
    else:
        store = SparqlEndpointStore.from_url(request.getfixturevalue("virtuoso_url"))
    try:
        # a published record, a retracted one (its text stays in the history) and a source copy
        store.write([version("kept", 1, "Grid load"), version("gone", 1, "Secret plan")])
        store.write([version("gone", 2, deleted=True)])
        store.replace_source_copies(  # type: ignore[attr-defined]
            {"urn:sluis:source:other:dataset:rec-kept": '<urn:x> <urn:y> "untrusted copy" .'}
        )
        with tempfile.TemporaryDirectory() as folder:
            running = open_sparql(store, Path(folder), CatalogueConfig())
            try:
                yield running
            finally:
                running.close()
    finally:
        store.close()


def _rows(runner: Any, query: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(runner.run(query).body)["results"]["bindings"]
    return rows


def _ask(runner: Any, query: str) -> bool:
    return bool(json.loads(runner.run(query).body)["boolean"])


def test_only_the_record_graphs_are_visible(runner: Any) -> None:
    every_graph = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    graphs = {row["g"]["value"] for row in _rows(runner, every_graph)}
    assert graphs == {f"{PUBLIC}rec-kept"}
    predicates = {row["p"]["value"] for row in _rows(runner, "SELECT DISTINCT ?p WHERE { ?s ?p ?o }")}
    assert predicates
    assert not any(p.startswith(SLUIS) for p in predicates), predicates
    assert not any("openlinksw" in p or "virtrdf" in p for p in predicates), predicates
    subjects = {row["s"]["value"] for row in _rows(runner, "SELECT DISTINCT ?s WHERE { ?s ?p ?o }")}
    assert not any("openlinksw" in s or (s.startswith("urn:sluis:") and not s.startswith("urn:sluis:genid:"))
                   for s in subjects), subjects
    titles = [row["t"]["value"] for row in _rows(runner, f"SELECT ?t WHERE {{ ?d <{TITLE}> ?t }}")]
    assert titles == ["Grid load"]


@pytest.mark.parametrize(
    "probe",
    [
        "ASK { GRAPH <urn:sluis:history> { ?s ?p ?o } }",
        "ASK { GRAPH <urn:sluis:source-copies> { ?s ?p ?o } }",
        "ASK { GRAPH <urn:sluis:records> { ?s ?p ?o } }",
        "ASK { GRAPH <http://www.openlinksw.com/schemas/virtrdf#> { ?s ?p ?o } }",
        f"ASK {{ ?s <{SLUIS}content> ?c }}",
        # (an outer pattern: Virtuoso answers true to a group holding only FILTER EXISTS, data or not)
        f"ASK {{ ?a ?b ?c FILTER EXISTS {{ ?s <{SLUIS}version> ?v }} }}",
        'ASK { ?s ?p ?o FILTER(CONTAINS(STR(?o), "Secret plan") || CONTAINS(STR(?o), "untrusted")) }',
        'ASK { { SELECT ?o WHERE { ?s ?p ?o } } FILTER(CONTAINS(STR(?o), "Secret plan")) }',
        "ASK { ?s <http://www.openlinksw.com/schemas/virtrdf#qmTableName> ?o }",
        "ASK { ?s a <http://www.w3.org/2002/07/owl#Class> }",
        f"ASK {{ <{PUBLIC}rec-kept> ?p ?o }}",
        f"ASK {{ ?s (<{SLUIS}versionOf>|^<{SLUIS}versionOf>)* ?o . FILTER(?s != ?o) }}",
    ],
)
def test_internal_and_system_graphs_answer_nothing(runner: Any, probe: str) -> None:
    try:
        answer: bool | str = _ask(runner, probe)
    except QueryRefused as refused:  # Virtuoso: "transitive start not given" for an open ``*`` path
        answer = f"{refused.status} {refused.reason}"
    assert answer is False or (isinstance(answer, str) and "transitive start" in answer), answer


def test_describe_and_construct_see_public_statements_only(runner: Any) -> None:
    described = runner.run("DESCRIBE <https://data.example.eu/dataset/kept>").body.decode()
    assert "Grid load" in described
    assert runner.run(f"DESCRIBE <{PUBLIC}rec-kept>").body.strip() == b""
    everything = runner.run("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }").body.decode()
    assert "Grid load" in everything
    assert "Secret plan" not in everything
    assert SLUIS not in everything


def test_a_query_cannot_choose_its_own_dataset(runner: Any) -> None:
    for query in (
        "SELECT * FROM <urn:sluis:history> WHERE { ?s ?p ?o }",
        "SELECT * FROM NAMED <urn:sluis:history> WHERE { GRAPH ?g { ?s ?p ?o } }",
    ):
        with pytest.raises(QueryRefused) as refused:
            runner.run(query)
        assert refused.value.status == 400
