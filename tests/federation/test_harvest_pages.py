"""The fast page reader (Oxigraph, no rdflib) and the rdflib one read a page alike: the same
datasets, digests, record graphs and proof statements, and the same tombstones and next link."""

from __future__ import annotations

from rdflib.compare import isomorphic

from catalogue.harvest._fastpage import read_page_fast
from catalogue.harvest._pages import parse_page, read_page
from catalogue.seed import seed_files

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
