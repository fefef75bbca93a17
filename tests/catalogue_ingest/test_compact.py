"""The compact record: what Oxigraph parsed, kept exactly, indexed, picklable, canonical for signing."""

from __future__ import annotations

import pickle

import pyoxigraph as ox
import pytest
from rdflib import Graph

from catalogue.ingest.compact import RDF_TYPE, CompactRecord
from catalogue.ingest.terms import TermError, escape, literal, literal_parts, text_of
from catalogue.signing import canonical_statements
from tests.conftest import CONFORMANCE_DIR

CORPUS = CONFORMANCE_DIR.parent / "corpus" / "dcat-real"

RECORD = b"""
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<http://example.org/ds> a dcat:Dataset ;
    dct:title "Quoted \\"t\\"\\ttab \\u0001 ctl\\\\ back"@EN-gb , "line one\\nline two" ;
    dct:title "caf\\u00e9 \\U0001F600" ;
    dct:identifier "01"^^xsd:integer , "x"^^xsd:string ;
    dct:issued "2020-13-45"^^xsd:date ;
    dcat:distribution [ a dcat:Distribution ; dcat:accessURL <http://example.org/a> ;
                        dct:format [ a dct:MediaTypeOrExtent ; dct:title "csv" ] ] ;
    dct:publisher [ a <http://xmlns.com/foaf/0.1/Agent> ] .
<http://example.org/ds> a dcat:Dataset .
"""


def parsed(data: bytes = RECORD) -> CompactRecord:
    return CompactRecord.from_oxigraph(ox.parse(data, format=ox.RdfFormat.TURTLE))


def test_statements_are_kept_once_in_document_order_and_indexed_by_subject() -> None:
    record = parsed()
    ds = "<http://example.org/ds>"
    assert len(record) == 15  # the repeated type statement once
    assert record.triples[0] == (ds, RDF_TYPE, "<http://www.w3.org/ns/dcat#Dataset>")
    assert record.types(ds) == ["<http://www.w3.org/ns/dcat#Dataset>"]
    assert record.subjects_of_type("<http://www.w3.org/ns/dcat#Dataset>") == [ds]
    identifiers = record.objects(ds, "<http://purl.org/dc/terms/identifier>")
    assert identifiers == ['"01"^^<http://www.w3.org/2001/XMLSchema#integer>', '"x"']
    distribution = record.value(ds, "<http://www.w3.org/ns/dcat#distribution>")
    assert distribution is not None
    assert distribution.startswith("_:")
    assert record.objects(distribution, "<http://www.w3.org/ns/dcat#accessURL>") == ["<http://example.org/a>"]
    assert (ds, RDF_TYPE, "<http://www.w3.org/ns/dcat#Dataset>") in record
    assert record.out("<http://example.org/nothing>") == {}
    assert record.value(ds, "<http://example.org/nothing>") is None


def test_literals_read_back_exactly() -> None:
    record = parsed()
    titles = {
        literal_parts(t)
        for t in record.objects("<http://example.org/ds>", "<http://purl.org/dc/terms/title>")
    }
    assert titles == {
        ('Quoted "t"\ttab \x01 ctl\\ back', "en-gb", None),
        ("line one\nline two", None, None),
        ("caf\u00e9 \U0001f600", None, None),
    }
    for text in ["", 'a"b\\c', "\t\n\r\b\f\x00\x1f\x7f", "é😀"]:
        assert literal_parts(literal(text, language="de"))[0] == text
        assert "\n" not in escape(text)
    assert text_of('"5"^^<http://www.w3.org/2001/XMLSchema#integer>') == "5"
    with pytest.raises(TermError):
        literal_parts("<http://example.org/not-a-literal>")


def test_rdflib_round_trip_keeps_every_term_exactly() -> None:
    record = parsed()
    graph = record.to_rdflib()
    assert len(graph) == len(record)
    back = CompactRecord.from_rdflib(graph)
    assert set(back.triples) == set(record.triples)


def test_pickled_record_is_equal_and_indexed() -> None:
    record = parsed()
    copy = pickle.loads(pickle.dumps(record))
    assert copy == record
    assert hash(copy) == hash(record)
    assert copy.triples == record.triples
    assert copy.index() == record.index()


def test_canonical_lines_do_not_depend_on_blank_node_labels_and_match_signing() -> None:
    first, second = parsed(), parsed()
    assert {s for s in first.subjects() if s.startswith("_:")} != {
        s for s in second.subjects() if s.startswith("_:")
    }  # Oxigraph labels blank nodes afresh on each parse
    lines = first.canonical_ntriples()
    assert lines == second.canonical_ntriples()
    assert all(line.endswith(" .") and "\n" not in line for line in lines)
    assert not any(" _:" in line and "_:t" not in line for line in lines)
    # Without characters rdflib writes differently (tab, controls), the lines are signing's.
    plain = parsed(RECORD.replace(b"\\ttab \\u0001 ctl", b""))
    assert plain.canonical_ntriples() == canonical_statements(plain.to_rdflib())


def test_shared_blank_nodes_get_the_general_canonical_labels() -> None:
    shared = b"""
    <http://example.org/a> <http://example.org/p> _:x . <http://example.org/b> <http://example.org/p> _:x .
    _:x <http://example.org/q> _:y . _:y <http://example.org/q> _:x .
    """
    one = CompactRecord.from_oxigraph(ox.parse(shared, format=ox.RdfFormat.TURTLE))
    other = CompactRecord.from_oxigraph(ox.parse(shared.replace(b"_:x", b"_:z"), format=ox.RdfFormat.TURTLE))
    assert one.canonical_ntriples() == other.canonical_ntriples()
    assert len(one.canonical_ntriples()) == 4


def test_named_graphs_and_quoted_triples_are_refused() -> None:
    quads = b"<http://example.org/a> <http://example.org/p> <http://example.org/b> <http://example.org/g> ."
    with pytest.raises(TermError, match="named graph"):
        CompactRecord.from_oxigraph(ox.parse(quads, format=ox.RdfFormat.N_QUADS))
    star = b"<< <http://example.org/a> <http://example.org/p> <http://example.org/b> >> "
    star += b"<http://example.org/q> 1 ."
    try:
        statements = list(ox.parse(star, format=ox.RdfFormat.TURTLE))
    except SyntaxError:
        pytest.skip("this Oxigraph build does not parse RDF-star")
    with pytest.raises(TermError, match="RDF-star"):
        CompactRecord.from_oxigraph(statements)


def test_the_real_corpus_survives_the_rdflib_round_trip() -> None:
    files = sorted(CORPUS.glob("*/*.ttl"))
    if not files:
        pytest.skip(f"the real-world DCAT corpus is not at {CORPUS} (it lives beside the conformance data)")
    for path in files[::7]:
        record = CompactRecord.parse(path.read_bytes(), "text/turtle", base_iri="http://example.org/")
        back = CompactRecord.from_rdflib(record.to_rdflib())
        assert set(back.triples) == set(record.triples), path.name
        reparsed = Graph().parse(data="\n".join(record.canonical_ntriples()), format="nt")
        assert len(reparsed) == len(record), path.name


def test_parse_refuses_an_unknown_media_type() -> None:
    with pytest.raises(TermError, match="media type"):
        CompactRecord.parse(b"{}", "application/ld+json", base_iri=None)
