"""The public SPARQL endpoint against queries two parsers read differently.

The node checks a query with rdflib's parser and runs it with Oxigraph's. Where the two disagree
about where a comment ends, a check that one parser passes is no check of what the other runs:
a carriage return ended a comment for Oxigraph only, so a ``SERVICE`` or a cross product written
after ``#`` and a carriage return was invisible to the checker and run by the engine. Each query
is sent to a real node; each must be refused by the checker (400 naming what it found), and
ordinary queries with Windows line ends must still be answered.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.catalogue.catalogue_records import dataset_turtle
from tests.catalogue.conftest import RunningNode, running_node

ELSEWHERE = "http://127.0.0.1:9/sparql"

HIDDEN: dict[str, tuple[str, str]] = {
    "service-after-comment-carriage-return": (
        f"SELECT * WHERE {{ ?s ?p ?o # note\r SERVICE <{ELSEWHERE}> {{ ?a ?b ?c }} \n }}",
        "SERVICE",
    ),
    "cross-product-after-comment-carriage-return": (
        "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o . # note\r ?a ?b ?c \n }",
        "cross product",
    ),
    "cross-product-after-escaped-carriage-return": (
        "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o . # note\\u000D ?a ?b ?c \n }",
        "cross product",
    ),
    "service-after-escaped-carriage-return": (
        f"SELECT * WHERE {{ ?s ?p ?o # note\\U0000000D SERVICE <{ELSEWHERE}> {{ ?a ?b ?c }} \n }}",
        "SERVICE",
    ),
    "escape-spelling-an-escape": (
        "SELECT * WHERE { ?s ?p ?o # \\u005Cu000D SERVICE <urn:x> { ?a ?b ?c } \n }",
        "escape",
    ),
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("rt2-sparql"), sparql_concurrency=1) as running:
        for slug in ("grid-load", "grid-loss"):
            assert running.publish(dataset_turtle(slug)).status_code == 201
        yield running


def _post(node: RunningNode, query: str) -> tuple[int, dict[str, object]]:
    reply = node.client.post(
        "/catalogue/sparql", content=query.encode(), headers={"Content-Type": "application/sparql-query"}
    )
    body = reply.json() if reply.headers["content-type"].endswith("json") else {}
    return reply.status_code, body


@pytest.mark.parametrize(("query", "named"), list(HIDDEN.values()), ids=list(HIDDEN))
def test_what_one_parser_takes_for_a_comment_is_checked_as_the_engine_reads_it(
    node: RunningNode, query: str, named: str
) -> None:
    status, problem = _post(node, query)
    assert status == 400, (status, problem)
    assert named.lower() in str(problem["detail"]).lower(), problem["detail"]
    assert [error["field"] for error in problem["errors"]] == ["query"]  # type: ignore[attr-defined]


def test_queries_with_windows_line_ends_and_comments_are_still_answered(node: RunningNode) -> None:
    query = (
        "PREFIX dct: <http://purl.org/dc/terms/>\r\n"
        "# the titles\r\n"
        "SELECT ?d ?t WHERE {\r\n  ?d a <http://www.w3.org/ns/dcat#Dataset> ; # each dataset's\r\n"
        "  dct:title ?t .\r\n}\r\nORDER BY ?d\r\n"
    )
    status, body = _post(node, query)
    assert status == 200, body
    rows = body["results"]["bindings"]  # type: ignore[index]
    assert len(rows) == 2


def test_escapes_in_literals_keep_their_meaning(node: RunningNode) -> None:
    status, body = _post(
        node, 'ASK { ?d <http://purl.org/dc/terms/title> "Hourly electricity grid l\\u006Fad"@en }'
    )
    assert status == 200, body
    assert body["boolean"] is True


def test_a_client_that_accepts_none_of_the_result_format_gets_a_406_naming_it(node: RunningNode) -> None:
    query = "SELECT ?s WHERE { ?s a <http://www.w3.org/ns/dcat#Dataset> } LIMIT 1"
    refused = node.client.post(
        "/catalogue/sparql",
        content=query.encode(),
        headers={"Content-Type": "application/sparql-query", "Accept": "application/sparql-results+xml"},
    )
    assert refused.status_code == 406
    assert "application/sparql-results+json" in refused.json()["detail"]
    for accept in ("application/sparql-results+json", "application/*", "*/*", ""):
        answered = node.client.post(
            "/catalogue/sparql",
            content=query.encode(),
            headers={"Content-Type": "application/sparql-query", **({"Accept": accept} if accept else {})},
        )
        assert answered.status_code == 200, accept
        assert answered.headers["content-type"].startswith("application/sparql-results+json")
