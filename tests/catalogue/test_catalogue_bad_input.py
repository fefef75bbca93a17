"""Every bad request is a clear 4xx problem naming the field, and leaves store and index unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.catalogue.catalogue_records import PREFIXES, PUBLISHER, dataset_turtle, invalid_turtle
from tests.catalogue.conftest import NodeFactory, RunningNode
from vocab.rdfio import DEFAULT_MAX_DOCUMENT_BYTES


def _problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert field in [error["field"] for error in body.get("errors", [])], body
    return body


@pytest.fixture
def seeded(catalogue_node: RunningNode) -> RunningNode:
    assert catalogue_node.publish(dataset_turtle("grid-load")).status_code == 201
    assert catalogue_node.publish(dataset_turtle("grid-capacity", title="Grid capacity")).status_code == 201
    return catalogue_node


def test_unparsable_turtle_is_refused_with_line_and_column(seeded: RunningNode) -> None:
    before = seeded.snapshot()
    body = PREFIXES + '<https://data.example.eu/dataset/x> a dcat:Dataset ;\n    dct:title "unterminated .\n'
    problem = _problem(seeded.publish(body), 400, "body")
    assert problem["line"] is not None
    assert problem["column"] is not None
    assert f"line {problem['line']}" in problem["errors"][0]["reason"]
    assert seeded.snapshot() == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (PREFIXES + "<https://data.example.eu/distribution/only> a dcat:Distribution .", "no-dataset"),
    ],
    ids=["zero-datasets"],
)
def test_a_record_holds_exactly_one_dataset(seeded: RunningNode, body: str, code: str) -> None:
    before = seeded.snapshot()
    problem = _problem(seeded.publish(body), 422, "body")
    assert problem["type"].endswith(code)
    assert seeded.snapshot() == before


def test_body_over_ten_megabytes_is_refused_unread(seeded: RunningNode) -> None:
    before = seeded.snapshot()
    padding = "# " + "x" * 1000 + "\n"
    body = dataset_turtle("huge") + padding * (DEFAULT_MAX_DOCUMENT_BYTES // len(padding) + 10)
    assert len(body.encode()) > DEFAULT_MAX_DOCUMENT_BYTES
    problem = _problem(seeded.publish(body), 413, "body")
    assert problem["limit"] == DEFAULT_MAX_DOCUMENT_BYTES
    assert seeded.snapshot() == before


def test_invalid_record_is_refused_with_every_violation(seeded: RunningNode) -> None:
    from catalogue.publish import extract_record, find_record_subject
    from catalogue.validation import validate_record
    from vocab.rdfio import parse_rdf

    before = seeded.snapshot()
    body = invalid_turtle("broken")
    problem = _problem(seeded.publish(body), 422, "http://purl.org/dc/terms/title")
    graph = parse_rdf(body, "text/turtle", "https://data.example.eu/")
    expected = validate_record(extract_record(graph, find_record_subject(graph))).violations
    assert len(expected) >= 3
    assert len(problem["violations"]) == len(expected) == len(problem["errors"])
    assert {(v["focus_node"], v["path"], v["message"]) for v in problem["violations"]} == {
        (v.focus_node, v.path, v.message) for v in expected
    }
    assert all(v["severity"] == "Violation" for v in problem["violations"])
    assert seeded.snapshot() == before


def test_missing_recommended_properties_are_stored_as_warnings_not_blocking(
    catalogue_node: RunningNode,
) -> None:
    minimal = (
        PREFIXES
        + """
<https://data.example.eu/dataset/minimal> a dcat:Dataset ;
    dct:title "Minimal record"@en ;
    dct:description "Only what DCAT-AP 3 requires."@en .
"""
    )
    response = catalogue_node.publish(minimal, token=catalogue_node.token)
    assert response.status_code == 201, response.text
    warned_paths = {warning["path"] for warning in response.json()["warnings"]}
    assert (
        "http://purl.org/dc/terms/publisher" in warned_paths
        or "http://www.w3.org/ns/dcat#theme" in warned_paths
    )
    assert all(warning["severity"] == "Warning" for warning in response.json()["warnings"])
    record_id = response.json()["id"]
    assert catalogue_node.client.get(f"/catalogue/datasets/{record_id}").status_code == 200
    assert PUBLISHER  # a record without dct:publisher is owned by the token's publisher
    other = catalogue_node.client.delete(
        f"/catalogue/datasets/{record_id}", headers=catalogue_node.auth(catalogue_node.other_token)
    )
    assert other.status_code == 403


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/catalogue/catalog", {"page": 9}, "page"),
        ("/catalogue/search", {"page": 9}, "page"),
        ("/catalogue/search", {"sort": "popularity"}, "sort"),
        ("/catalogue/search", {"page_size": 0}, "page_size"),
        ("/catalogue/search", {"colour": "red"}, "colour"),
        ("/catalogue/catalog", {"modified_since": "yesterday"}, "modified_since"),
        ("/catalogue/catalog", {"page_size": 100000}, "page_size"),
    ],
)
def test_paging_and_search_parameters_are_checked(
    seeded: RunningNode, path: str, params: dict[str, Any], field: str
) -> None:
    before = seeded.snapshot()
    _problem(seeded.client.get(path, params=params), 400, field)
    assert seeded.snapshot() == before


def test_unknown_record_and_unsupported_media_types(seeded: RunningNode) -> None:
    _problem(seeded.client.get("/catalogue/datasets/nope"), 404, "id")
    _problem(seeded.client.get("/catalogue/datasets/nope/versions"), 404, "id")
    record_id = seeded.client.get("/catalogue/search").json()["hits"][0]["id"]
    _problem(
        seeded.client.get(f"/catalogue/datasets/{record_id}", headers={"Accept": "image/png"}), 406, "Accept"
    )
    before = seeded.snapshot()
    _problem(seeded.publish(b"a,b,c", media_type="text/csv"), 415, "body")
    _problem(
        seeded.client.post("/catalogue/datasets", content=b"x", headers=seeded.auth()), 415, "Content-Type"
    )
    assert seeded.snapshot() == before


def test_sparql_updates_and_federation_are_refused(seeded: RunningNode) -> None:
    before = seeded.snapshot()
    update = "PREFIX dct: <http://purl.org/dc/terms/> INSERT DATA { <urn:x> dct:title 'x' }"
    _problem(seeded.client.get("/catalogue/sparql", params={"query": update}), 403, "query")
    _problem(seeded.client.post("/catalogue/sparql", data={"update": update}), 403, "update")
    _problem(
        seeded.client.post(
            "/catalogue/sparql", content=update, headers={"Content-Type": "application/sparql-update"}
        ),
        403,
        "update",
    )
    _problem(seeded.client.get("/catalogue/sparql", params={"query": "DROP ALL"}), 403, "query")
    service = "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }"
    _problem(seeded.client.get("/catalogue/sparql", params={"query": service}), 400, "query")
    _problem(seeded.client.get("/catalogue/sparql", params={"query": "SELEKT ?s"}), 400, "query")
    assert seeded.snapshot() == before


def test_sparql_query_past_its_time_limit_is_stopped(start_node: NodeFactory) -> None:
    with start_node(sparql_timeout_seconds=0.2, sparql_max_results=10_000_000) as node:
        for n in range(3):
            assert node.publish(dataset_turtle(f"set-{n}")).status_code == 201
        before = node.snapshot()
        # Joined on the predicate only: every type statement meets every other, four times over.
        heavy = "SELECT * WHERE { ?a ?p ?c . ?d ?p ?f . ?g ?p ?i . ?j ?p ?l } ORDER BY ?c ?f ?i ?l"
        problem = _problem(node.client.get("/catalogue/sparql", params={"query": heavy}), 422, "query")
        assert problem["time_limit_seconds"] == 0.2
        assert node.snapshot() == before


def test_hostile_ids_huge_pages_and_deeply_nested_queries_are_clean_4xx(seeded: RunningNode) -> None:
    before = seeded.snapshot()
    for hostile in ("a b", "x%00y", "semi;colon", "²"):
        _problem(seeded.client.get(f"/catalogue/datasets/{hostile}"), 404, "id")
        _problem(seeded.client.get(f"/catalogue/datasets/{hostile}/versions"), 404, "id")
        _problem(seeded.client.get(f"/catalogue/datasets/{hostile}/proof"), 404, "id")
        _problem(seeded.client.delete(f"/catalogue/datasets/{hostile}", headers=seeded.auth()), 404, "id")
    record_id = seeded.client.get("/catalogue/search").json()["hits"][0]["id"]
    _problem(seeded.client.get(f"/catalogue/datasets/{record_id}/versions/²"), 400, "version")
    _problem(seeded.client.get("/catalogue/catalog", params={"page": 10**19}), 400, "page")
    _problem(seeded.client.get("/catalogue/search", params={"page": 10**19}), 400, "page")
    nested = "SELECT * WHERE " + "{ " * 10_000 + "?s ?p ?o" + " }" * 10_000
    posted = seeded.client.post(
        "/catalogue/sparql", content=nested, headers={"Content-Type": "application/sparql-query"}
    )
    _problem(posted, 400, "query")
    assert seeded.client.get("/catalogue/sparql", params={"query": "ASK { ?s ?p ?o }"}).json()["boolean"]
    assert seeded.snapshot() == before
