"""Size caps that hold while a document is parsed, and characters XML cannot carry refused at the
door: each a 4xx naming what is wrong, with store and index untouched."""

from __future__ import annotations

from typing import Any

import pytest

from catalogue.publish import MAX_DISTRIBUTIONS, MAX_RECORD_STATEMENTS
from tests.catalogue.catalogue_records import PREFIXES, dataset_iri, dataset_turtle
from tests.catalogue.conftest import RunningNode
from vocab.rdfio import DEFAULT_MAX_LITERAL_CHARS, parse_rdf

TITLE = "http://purl.org/dc/terms/title"
DESCRIPTION = "http://purl.org/dc/terms/description"
MILLION = 1_000_000


def _problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert field in [error["field"] for error in body["errors"]], body
    return body


def _million_statements(tail: str) -> bytes:
    """A million statements in 7 MB of Turtle: one subject, one property, an object list."""
    values = ",".join(str(n) for n in range(MILLION))
    return f"@prefix : <https://data.example.eu/x#> .\n:a :b {values} .\n{tail}".encode()


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param("", id="fast-turtle-path"),
        pytest.param(':a :c "x"@EN .', id="rdflib-turtle-path"),  # capitals send it to rdflib
    ],
)
def test_a_million_statement_document_is_refused_while_parsing(
    catalogue_node: RunningNode, tail: str
) -> None:
    before = catalogue_node.snapshot()
    body = _million_statements(tail)
    assert len(body) < catalogue_node.node.config.max_body_bytes
    problem = _problem(catalogue_node.publish(body), 413, "body")
    assert str(MAX_RECORD_STATEMENTS) in problem["detail"]
    assert catalogue_node.snapshot() == before


@pytest.mark.parametrize(
    ("media_type", "document"),
    [
        pytest.param("text/turtle", dataset_turtle("nul", title="before\\u0000after"), id="turtle-escape"),
        pytest.param("text/turtle", dataset_turtle("bell", title="ring\x07"), id="turtle-raw-control"),
        pytest.param(
            "application/n-triples",
            f'<{dataset_iri("nt")}> <{TITLE}> "a\\u0000b" .\n'
            f"<{dataset_iri('nt')}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
            "<http://www.w3.org/ns/dcat#Dataset> .\n",
            id="n-triples",
        ),
        pytest.param("text/turtle", dataset_turtle("fffe", title="x\ufffey"), id="turtle-u-fffe"),
    ],
)
def test_characters_xml_cannot_carry_are_refused_naming_the_property(
    catalogue_node: RunningNode, media_type: str, document: str
) -> None:
    before = catalogue_node.snapshot()
    problem = _problem(catalogue_node.publish(document.encode(), media_type=media_type), 400, TITLE)
    assert "XML" in problem["detail"]
    assert catalogue_node.snapshot() == before


def test_nul_in_json_ld_is_refused_by_the_strict_json_reading_naming_the_property(
    catalogue_node: RunningNode,
) -> None:
    """JSON bodies get the shared strict reading before any RDF is made: the field is a JSON pointer."""
    before = catalogue_node.snapshot()
    document = (
        f'{{"@id": "{dataset_iri("json")}", "@type": "http://www.w3.org/ns/dcat#Dataset", '
        f'"{TITLE}": "x\\u0000y"}}'
    )
    reply = catalogue_node.publish(document.encode(), media_type="application/ld+json")
    problem = _problem(reply, 400, "/" + TITLE)
    assert "U+0000" in problem["detail"]
    assert catalogue_node.snapshot() == before


def test_a_record_with_a_clean_title_is_served_as_well_formed_rdf_xml(catalogue_node: RunningNode) -> None:
    """The control for the refusals above: tab and line breaks are fine, and the page parses."""
    reply = catalogue_node.publish(dataset_turtle("clean", description="line one\\nline two\\ttabbed"))
    assert reply.status_code == 201, reply.text
    page = catalogue_node.client.get(
        f"/catalogue/datasets/{reply.json()['id']}", headers={"Accept": "application/rdf+xml"}
    )
    graph = parse_rdf(page.content, "application/rdf+xml", "https://data.example.eu/")
    assert any("line two" in str(value) for value in graph.objects(None, None))


def test_a_literal_past_its_limit_is_refused_naming_the_property(catalogue_node: RunningNode) -> None:
    before = catalogue_node.snapshot()
    document = dataset_turtle("long", description="x" * (DEFAULT_MAX_LITERAL_CHARS + 1))
    problem = _problem(catalogue_node.publish(document), 413, DESCRIPTION)
    assert str(DEFAULT_MAX_LITERAL_CHARS) in problem["detail"]
    assert catalogue_node.snapshot() == before


def test_a_record_with_ten_thousand_distributions_is_refused(catalogue_node: RunningNode) -> None:
    before = catalogue_node.snapshot()
    iri = dataset_iri("sprawl")
    links = " , ".join(f"<{iri}/d{n}>" for n in range(10_000))
    distributions = "\n".join(
        f"<{iri}/d{n}> a dcat:Distribution ; dcat:accessURL <https://files.example.eu/{n}> ."
        for n in range(10_000)
    )
    document = dataset_turtle("sprawl", extra=f"; dcat:distribution {links}") + "\n" + distributions
    assert document.startswith(PREFIXES)
    problem = _problem(catalogue_node.publish(document), 413, "dcat:distribution")
    assert str(MAX_DISTRIBUTIONS) in problem["detail"]
    assert catalogue_node.snapshot() == before
