"""The statements a proof signs are the same whichever path made them.

The pipeline computes a record's canonical statements once, from the compact form (N-Triples
terms as Oxigraph writes them); every proof made so far, and every verifier, computes them from
an rdflib graph. Both must give the same lines byte for byte, or records stop verifying (here,
and on every node that harvests them). The awkward cases: escapes Oxigraph writes and rdflib does
not (tab, control characters), quotes, backslashes, line breaks, lexical forms rdflib normalises
while parsing, blank-node trees (labelled by a hash of the escaped text).
"""

from __future__ import annotations

import pytest

from catalogue.ingest.compact import CompactRecord
from catalogue.signing import canonical_statements, canonical_statements_of
from vocab.rdfio import N_TRIPLES, TURTLE, parse_rdf

AWKWARD = r'''
@prefix dct: <http://purl.org/dc/terms/> .
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<https://data.example.eu/d/1> a dcat:Dataset ;
    dct:title "Tab	inside, a \"quote\", a back\\slash"@en ;
    dct:description """Two
lines, one with a carriage return\r and an escaped \u00e9"""@nl ;
    dct:identifier "01"^^xsd:integer , "1.50"^^xsd:decimal , "true"^^xsd:boolean ;
    dct:issued "2021-03-04"^^xsd:date ;
    dct:modified "2021-03-04T10:00:00Z"^^xsd:dateTime ;
    dcat:byteSize "0042"^^xsd:nonNegativeInteger ;
    dct:publisher [ a <http://xmlns.com/foaf/0.1/Agent> ;
        <http://xmlns.com/foaf/0.1/name> "Ünïcödé \\ \"x\""@de ;
        dct:spatial [ a dct:Location ; dct:title "tab	again" ] ] .
'''


@pytest.mark.parametrize(
    "document", [AWKWARD, AWKWARD.replace("[ a dct:Location", '[ a dct:Location ; dct:title "x" ')]
)
def test_compact_and_rdflib_paths_sign_the_same_lines(document: str) -> None:
    compact = CompactRecord.parse(document.encode(), "text/turtle", base_iri="https://data.example.eu/")
    # What a verifier does: read the stored text (the compact form written out) with rdflib.
    stored = "\n".join(f"{s} {p} {o} ." for s, p, o in compact.triples)
    verifier = canonical_statements(parse_rdf(stored, N_TRIPLES, "urn:x"))
    assert canonical_statements_of(compact.triples) == verifier
    # And what the rdflib path computed from the document as sent.
    assert verifier == canonical_statements(parse_rdf(document, TURTLE, "https://data.example.eu/"))


def test_blank_nodes_that_are_not_trees_are_left_to_the_rdflib_labelling() -> None:
    shared = [
        ("<https://x/a>", "<https://x/p>", "_:b"),
        ("<https://x/c>", "<https://x/p>", "_:b"),
        ("_:b", "<https://x/q>", '"v"'),
    ]
    assert canonical_statements_of(shared) is None
