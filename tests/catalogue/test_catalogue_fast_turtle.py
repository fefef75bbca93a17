"""The fast Turtle reader gives the graph rdflib's reader gives, or steps aside for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib.compare import isomorphic

from catalogue._turtle import MAX_FAST_BRACKETS, parse_turtle_fast
from tests.catalogue.catalogue_records import dataset_turtle
from vocab.rdfio import DEFAULT_MAX_DOCUMENT_BYTES, TURTLE, parse_rdf

SEED = Path(__file__).resolve().parents[2] / "catalogue" / "seed"
BASE = "https://node.example.eu/catalogue/datasets/"
LIMIT = DEFAULT_MAX_DOCUMENT_BYTES

TRICKY = [
    # relative IRIs against the base, @base, numbers, booleans, typed and multi-line literals,
    # escapes, lists, nested blank nodes, a PREFIX in SPARQL style and non-ASCII text
    """@prefix dct: <http://purl.org/dc/terms/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
PREFIX dcat: <http://www.w3.org/ns/dcat#>
<set/1> a dcat:Dataset ; dct:title "Stroom \\u00e9\\"quoted\\"\\n"@nl , '''long
text over "lines"'''@en ;
  dct:identifier 42 , -7 , +3 , 1.50 , 2.5e3 , true ;
  dcat:byteSize "0012"^^xsd:nonNegativeInteger ;
  dct:issued "2024-01-15"^^xsd:date ;
  dct:relation ( <a> [ dct:title "nested" ; dct:source [ dct:title "deeper" ] ] ) .
@base <https://other.example.eu/base/> .
<../up> dct:title "Ääh ✓" ; dct:format _:shared . _:shared dct:title "shared" . <#frag> dct:isPartOf <up> .
""".encode(),
]

SP = b"<http://a.example/s> <http://a.example/p> "
STEP_ASIDE = {
    "capitalised language tag": SP + b'"x"@EN-gb .',
    "explicit xsd:string": SP + b'"x"^^<http://www.w3.org/2001/XMLSchema#string> .',
    "prefixed xsd:string": (
        b"@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n" + SP + b'"x"^^xsd:string .'
    ),
    "syntax error": SP + b".",
    "IRI with a space": b'<http://a.example/s s> <http://a.example/p> "x" .',
    "deep nesting": SP
    + b"[ <http://a.example/p> " * (MAX_FAST_BRACKETS + 1)
    + b'"x"'
    + b" ]" * (MAX_FAST_BRACKETS + 1)
    + b" .",
    "RDF 1.2 triple term": SP + b"<<( <http://a.example/a> <http://a.example/b> <http://a.example/c> )>> .",
    "not UTF-8": SP + b'"\xff" .',
}


def _documents() -> list[bytes]:
    documents = [path.read_bytes() for path in sorted(SEED.glob("*.ttl"))]
    documents += [
        dataset_turtle(f"set-{n}", title=f"Set {n}", keywords=("één", "two")).encode() for n in range(3)
    ]
    return documents + TRICKY


def test_fast_reader_gives_rdflibs_graph_for_seed_records_and_tricky_turtle() -> None:
    documents = _documents()
    assert len(documents) > 10
    for document in documents:
        fast = parse_turtle_fast(document, BASE, LIMIT)
        assert fast is not None, document[:200]
        reference = parse_rdf(document, TURTLE, BASE)
        # isomorphic compares literals term for term: lexical form, datatype and language
        assert isomorphic(fast, reference), document[:200]
        assert len(fast) == len(reference)


def test_fast_reader_agrees_with_rdflib_on_the_official_dcat_ap_turtle(conformance_dir: Path) -> None:
    compared = 0
    for path in sorted((conformance_dir / "dcat-ap").rglob("*.ttl")):
        document = path.read_bytes()
        fast = parse_turtle_fast(document, BASE, 64 * LIMIT)
        if fast is None:
            continue
        assert isomorphic(fast, parse_rdf(document, TURTLE, BASE, 64 * LIMIT)), path.name
        compared += 1
    assert compared > 0


@pytest.mark.parametrize("name", sorted(STEP_ASIDE))
def test_fast_reader_steps_aside_where_the_readers_could_differ(name: str) -> None:
    assert parse_turtle_fast(STEP_ASIDE[name], BASE, LIMIT) is None


def test_fast_reader_leaves_oversized_documents_to_the_size_check() -> None:
    document = dataset_turtle("big").encode()
    assert parse_turtle_fast(document, BASE, len(document) - 1) is None
