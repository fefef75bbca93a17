"""The public-graph rewrite answers exactly what the union of the public graphs answers.

Each query runs twice on real Oxigraph stores: as sent, over a store holding only the record
graphs (the union default graph), and rewritten by ``scoped_query`` over a store that also holds
the history, a source copy and the catalogue records. The answers must be the same, row for row.
"""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox
import pytest

from catalogue.store.sparql_check import QueryRefused, check_query
from catalogue.store.sparql_scope import scoped_query

DCT = "http://purl.org/dc/terms/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
DATASET = "http://www.w3.org/ns/dcat#Dataset"


def _stores() -> tuple[ox.Store, ox.Store]:
    public, full = ox.Store(), ox.Store()

    def add(subject: Any, predicate: str, value: Any, graph: str) -> None:
        quad = ox.Quad(subject, ox.NamedNode(predicate), value, ox.NamedNode(graph))
        if graph.startswith("urn:sluis:record:"):
            public.add(quad)
        full.add(quad)

    for n in range(6):
        graph, dataset = f"urn:sluis:record:r{n}", ox.NamedNode(f"http://ex/d{n}")
        organisation = ox.NamedNode(f"http://ex/org{n % 2}")
        add(dataset, RDF_TYPE, ox.NamedNode(DATASET), graph)
        add(dataset, DCT + "title", ox.Literal(f"title {n}", language="en"), graph)
        add(dataset, DCT + "publisher", organisation, graph)
        add(organisation, "http://xmlns.com/foaf/0.1/name", ox.Literal(f"org {n % 2}"), graph)
        if n % 3 == 0:
            add(dataset, DCT + "description", ox.Literal(f"desc {n}"), graph)
        contact = ox.BlankNode(f"c{n}")
        add(dataset, "http://www.w3.org/ns/dcat#contactPoint", contact, graph)
        add(contact, "http://www.w3.org/2006/vcard/ns#fn", ox.Literal("desk"), graph)
    content = "https://w3id.org/sluis/ns#content"
    add(ox.NamedNode("urn:v1"), content, ox.Literal("old text"), "urn:sluis:history")
    add(ox.NamedNode("http://ex/d1"), DCT + "title", ox.Literal("hidden copy"), "urn:sluis:source-copies")
    version = "https://w3id.org/sluis/ns#version"
    add(ox.NamedNode("urn:sluis:record:r1"), version, ox.Literal("1"), "urn:sluis:records")
    return public, full


def _answer(result: Any) -> Any:
    if isinstance(result, ox.QueryBoolean):
        return bool(result)
    if isinstance(result, ox.QuerySolutions):
        names = [variable.value for variable in result.variables]
        return names, [
            [None if s[v] is None else "_" if isinstance(s[v], ox.BlankNode) else str(s[v]) for v in names]
            for s in result
        ]
    return sorted("bnode" if "_:" in str(triple) else str(triple) for triple in result)


QUERIES = [
    "SELECT ?d ?t WHERE { ?d <http://purl.org/dc/terms/title> ?t } ORDER BY ?t",
    "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY ?g",
    "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
    "SELECT ?o (COUNT(DISTINCT ?d) AS ?n) WHERE { ?d <http://purl.org/dc/terms/publisher> ?o } "
    "GROUP BY ?o HAVING (COUNT(?d) > 1) ORDER BY DESC(?n) ?o",
    "SELECT ?d ?x WHERE { ?d a <http://www.w3.org/ns/dcat#Dataset> OPTIONAL { "
    "?d <http://purl.org/dc/terms/description> ?x FILTER(CONTAINS(STR(?x), '3')) } } ORDER BY ?d",
    "SELECT ?d WHERE { ?d a <http://www.w3.org/ns/dcat#Dataset> MINUS { "
    "?d <http://purl.org/dc/terms/description> ?x } } ORDER BY ?d",
    "SELECT ?d ?n WHERE { ?d <http://purl.org/dc/terms/publisher>/<http://xmlns.com/foaf/0.1/name> ?n "
    "FILTER(?n IN ('org 1')) } ORDER BY ?d",
    "SELECT ?d ?fn WHERE { ?d <http://www.w3.org/ns/dcat#contactPoint> [ "
    "<http://www.w3.org/2006/vcard/ns#fn> ?fn ] } ORDER BY ?d LIMIT 3 OFFSET 1",
    "SELECT ?d ?l WHERE { ?d <http://purl.org/dc/terms/title> ?t BIND(STRLEN(?t) + 1 AS ?l) "
    "FILTER(LANG(?t) = 'en' && REGEX(?t, '^title [12]$', 'i')) } ORDER BY ?d",
    "SELECT ?d WHERE { VALUES ?d { <http://ex/d1> <http://ex/d9> } FILTER EXISTS { ?d ?p ?o } }",
    "SELECT ?d WHERE { { SELECT ?d WHERE { ?d a ?c } ORDER BY DESC(?d) LIMIT 2 } UNION { "
    "?d <http://purl.org/dc/terms/description> ?x } } ORDER BY ?d",
    "ASK { ?s <https://w3id.org/sluis/ns#content> ?c }",
    "ASK { GRAPH <urn:sluis:history> { ?s ?p ?o } }",
    "ASK { FILTER NOT EXISTS { ?s <https://w3id.org/sluis/ns#version> ?v } }",
    "SELECT (GROUP_CONCAT(?t ; SEPARATOR='|') AS ?all) (SAMPLE(?t) AS ?one) WHERE { "
    "?d <http://purl.org/dc/terms/title> ?t FILTER(?d = <http://ex/d2>) }",
    "SELECT ?d WHERE { ?d (<http://purl.org/dc/terms/publisher>|^<http://purl.org/dc/terms/publisher>)"
    "/^<http://purl.org/dc/terms/publisher> <http://ex/d0> } ORDER BY ?d",
    "SELECT ?o WHERE { <http://ex/d0> !(<http://purl.org/dc/terms/title>|"
    "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>) ?o } ORDER BY ?o",
    "CONSTRUCT { ?d <urn:t> ?t . ?d <urn:b> _:x } WHERE { ?d <http://purl.org/dc/terms/title> ?t } "
    "ORDER BY ?d LIMIT 2",
    "SELECT ?y WHERE { ?d <http://purl.org/dc/terms/title> ?t "
    "BIND(<http://www.w3.org/2001/XMLSchema#string>(?t) AS ?y) } ORDER BY ?y LIMIT 1",
    "SELECT * WHERE { ?d <http://purl.org/dc/terms/description> ?x } ORDER BY ?d",
    "SELECT (GROUP_CONCAT(?n) AS ?all) (COUNT(DISTINCT ?o) AS ?k) WHERE { "
    "?o <http://xmlns.com/foaf/0.1/name> ?n FILTER(?o = <http://ex/org0>) }",
    "SELECT ?d ?t WHERE { ?d <http://purl.org/dc/terms/title> ?t } ORDER BY DESC(STR(?t)) ?d OFFSET 2",
    "SELECT ?s (COUNT(*) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?s ORDER BY DESC(?n) ?s LIMIT 4",
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_rewrite_answers_what_the_public_union_answers(query: str) -> None:
    public, full = _stores()
    check_query(query)
    expected = _answer(public.query(query, use_default_graph_as_union=True))
    assert _answer(full.query(scoped_query(query))) == expected


def test_the_full_store_does_hold_what_the_rewrite_hides() -> None:
    _, full = _stores()
    query = QUERIES[0]
    unscoped = str(_answer(full.query(query, use_default_graph_as_union=True)))
    assert "hidden copy" in unscoped  # the control: without the rewrite, the copy shows
    assert "hidden copy" not in str(_answer(full.query(scoped_query(query))))


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM <urn:sluis:history> WHERE { ?s ?p ?o }",
        "SELECT ?__sluis_g1 WHERE { ?s ?p ?o }",
    ],
)
def test_dataset_clauses_and_reserved_names_are_refused(query: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        scoped_query(query)
    assert refused.value.status == 400
