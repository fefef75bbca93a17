"""The fast page reader (Oxigraph, no rdflib) and the rdflib one read a page alike: the same
datasets, digests, record graphs and proof statements, and the same tombstones and next link."""

from __future__ import annotations

import json

import pytest
from rdflib import Graph, URIRef
from rdflib.compare import isomorphic

from catalogue.harvest._fastpage import read_page_fast
from catalogue.harvest._pages import NODE_PROOF, parse_page, read_page
from catalogue.seed import seed_files
from catalogue.signing import did_key_lookup, verify_record
from connector.identity import ProofError

URL = "http://127.0.0.1:9/catalogue/catalog?page=2"
SOURCE = "urn:sluis:source:test"
TAIL = b"""
@prefix hydra: <http://www.w3.org/ns/hydra/core#> .
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix adms: <http://www.w3.org/ns/adms#> .
@prefix dct: <http://purl.org/dc/terms/> .
<http://127.0.0.1:9/catalogue/catalog?page=2> hydra:next <?page=3> .
<urn:test:gone> a dcat:CatalogRecord ; foaf:primaryTopic <https://data.example.org/dataset/gone> ;
    adms:status <http://purl.org/adms/changetype/deleted> ; dct:modified "2026-01-02T00:00:00Z" .
[] a dcat:Dataset ; dct:title "A dataset without an IRI"@en ; dct:publisher [ foaf:name "Someone" ] .
"""


def test_the_fast_reader_reads_a_page_as_the_rdflib_reader_does() -> None:
    body = b"\n".join(path.read_bytes() for path in sorted(seed_files())[:12]) + TAIL
    fast = read_page_fast(body, "text/turtle", URL, SOURCE, 1 << 24)
    assert fast is not None
    slow = read_page(parse_page(body, "text/turtle", URL, 1 << 24), URL, SOURCE)
    assert [r.dataset for r in fast.records] == [r.dataset for r in slow.records]
    assert len(fast.records) == 13
    for quick, full in zip(fast.records, slow.records, strict=True):
        assert quick.digest == full.digest, quick.dataset
        assert isomorphic(quick.graph, full.graph), quick.dataset
        assert quick.statements == full.statements, quick.dataset
        assert quick.proof_statements == full.statements, quick.dataset  # checked without rdflib
    assert (fast.deleted, fast.next_url, fast.newest) == (slow.deleted, slow.next_url, slow.newest)
    assert fast.next_url == "http://127.0.0.1:9/catalogue/catalog?page=3"
    assert fast.deleted == ["https://data.example.org/dataset/gone"]


def test_what_the_fast_reader_does_not_take_goes_to_the_rdflib_reader() -> None:
    upper = (
        b'<https://e.org/d> a <http://www.w3.org/ns/dcat#Dataset> ; <http://purl.org/dc/terms/title> "x"@EN .'
    )
    assert read_page_fast(upper, "text/turtle", URL, SOURCE, 1 << 24) is None
    assert read_page_fast(b"<a> <b> <c", "text/turtle", URL, SOURCE, 1 << 24) is None
    assert read_page_fast(b"{}", "application/ld+json", URL, SOURCE, 1 << 24) is None


# Two health records of one catalogue page name the same access body, each with its own
# identical contact point: the page merges them, so each record's cut holds both.
_SHARED = """
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix cv: <http://data.europa.eu/m8g/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<https://e.org/hdab> cv:contactPoint [ a cv:ContactPoint ; cv:contactPage <https://e.org/hdab/contact> ] .
"""
_RECORD = """
<https://e.org/d/{n}> a dcat:Dataset ; dct:title "Health {n}"@en ;
    dct:modified "2026-01-0{n}T10:00:00Z"^^xsd:dateTime ;
    <http://healthdataportal.eu/ns/health#hdab> <https://e.org/hdab> ;
    dcat:distribution <https://e.org/d/{n}/a> , <https://e.org/d/{n}/b> .
<https://e.org/d/{n}/a> a dcat:Distribution ; <http://spdx.org/rdf/terms#checksum> [ <urn:t:v> "a" ] .
<https://e.org/d/{n}/b> a dcat:Distribution ; <http://spdx.org/rdf/terms#checksum> [ <urn:t:v> "b" ] .
"""


def _signed_page(extra: str = "") -> tuple[bytes, str]:
    """A page of two records, each signed alone over its own statements, with node proofs."""
    from catalogue.harvest._pages import parse_page as parse
    from catalogue.signing import RecordSigner, canonical_statements, did_key_for
    from connector.identity import KeyPair

    key = KeyPair.generate()
    signer = RecordSigner(key)
    body = ""
    for n in (1, 2):
        alone = (_SHARED + _RECORD.format(n=n)).encode()
        statements = canonical_statements(
            extract_record_graph(parse(alone, "text/turtle", URL, 1 << 20), f"https://e.org/d/{n}")
        )
        proof = signer.sign_statements(statements, f"https://e.org/d/{n}")
        literal = json.dumps(json.dumps(proof))
        body += (
            _SHARED
            + _RECORD.format(n=n)
            + (
                f"<urn:rec:{n}> a dcat:CatalogRecord ; <http://xmlns.com/foaf/0.1/primaryTopic> "
                f"<https://e.org/d/{n}> ; <{NODE_PROOF}> {literal} .\n"
            )
        )
    return (body + extra).encode(), did_key_for(key)[0]


def extract_record_graph(graph: Graph, dataset: str) -> Graph:
    from catalogue.publish import extract_record

    return extract_record(graph, URIRef(dataset))


def test_identical_blank_nodes_a_page_merged_are_kept_once_and_the_proof_holds() -> None:
    body, _ = _signed_page()
    fast = read_page_fast(body, "text/turtle", URL, SOURCE, 1 << 24)
    assert fast is not None
    slow = read_page(parse_page(body, "text/turtle", URL, 1 << 24), URL, SOURCE)
    alone = read_page_fast((_SHARED + _RECORD.format(n=1)).encode(), "text/turtle", URL, SOURCE, 1 << 24)
    assert alone is not None
    assert fast.records[0].digest == alone.records[0].digest  # what else the page holds does not count
    for quick, full in zip(fast.records, slow.records, strict=True):
        assert quick.canonical is not None  # a tree again: no signed form to fetch
        assert quick.statements == full.statements
        assert quick.proof_statements == full.statements
        contact = [line for line in quick.proof_statements if "contactPoint>" in line]
        assert len(contact) == 1, contact  # one contact point, as signed
        assert sum("checksum>" in line for line in quick.proof_statements) == 2
        verify_record(Graph(), quick.dataset, quick.node_proof, did_key_lookup, quick.proof_statements)


def test_a_statement_merged_in_that_was_not_signed_still_fails_the_proof() -> None:
    body, _ = _signed_page('<https://e.org/hdab> <http://xmlns.com/foaf/0.1/name> "Not signed" .\n')
    fast = read_page_fast(body, "text/turtle", URL, SOURCE, 1 << 24)
    assert fast is not None
    for record in fast.records:
        with pytest.raises(ProofError):
            verify_record(Graph(), record.dataset, record.node_proof, did_key_lookup, record.proof_statements)


def test_identical_blank_nodes_under_different_statements_are_not_merged() -> None:
    from catalogue.harvest._digest import collapse_duplicate_blanks

    twice = [("<a>", "<p>", "_:x"), ("_:x", "<q>", '"1"'), ("<a>", "<p>", "_:y"), ("_:y", "<q>", '"1"')]
    collapsed = collapse_duplicate_blanks(twice)
    assert collapsed is not None
    assert len(collapsed[0]) == 2
    apart = [("<a>", "<p>", "_:x"), ("_:x", "<q>", '"1"'), ("<b>", "<p>", "_:y"), ("_:y", "<q>", '"1"')]
    assert collapse_duplicate_blanks(apart) is None
    cycle = [("_:x", "<p>", "_:y"), ("_:y", "<p>", "_:x"), ("_:z", "<p>", '"1"'), ("_:w", "<p>", '"1"')]
    assert collapse_duplicate_blanks(cycle) is None


def test_a_page_is_collapsed_once_and_deep_or_shared_blank_nodes_are_left_alone() -> None:
    from catalogue.harvest._digest import collapse_page_blanks

    page = [
        ("<a>", "<p>", "_:x"),
        ("_:x", "<q>", "_:x1"),
        ("_:x1", "<r>", '"1"'),
        ("<a>", "<p>", "_:y"),
        ("_:y", "<q>", "_:y1"),
        ("_:y1", "<r>", '"1"'),
        ("<b>", "<p>", "_:s"),  # referenced twice: never merged
        ("<c>", "<p>", "_:s"),
        ("<b>", "<p>", "_:t"),
        ("<c>", "<p>", "_:t"),
    ]
    assert collapse_page_blanks(page) == [*page[:3], *page[6:]]  # the second tree went whole
    deep = [(f"_:n{i}", "<p>", f"_:n{i + 1}") for i in range(5000)]
    deep += [("<a>", "<p>", "_:n0"), ("<a>", "<p>", "_:m0")]
    deep += [(f"_:m{i}", "<p>", f"_:m{i + 1}") for i in range(5000)]
    assert collapse_page_blanks(deep) == deep  # no recursion error, nothing merged
