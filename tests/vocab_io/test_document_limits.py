"""Size, depth and count limits: refused up front, with a clear error, never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rdflib import Graph

from vocab import jsonld, rdfio
from vocab.errors import DocumentTooDeepError, DocumentTooLargeError, RdfSyntaxError

BASE = "https://publisher.example/"


@pytest.fixture
def parsers_must_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any parser being reached counts as a failure: the size check comes first."""

    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a parser ran on a document that should have been refused by size")

    monkeypatch.setattr(Graph, "parse", fail)
    monkeypatch.setattr(json, "loads", fail)


@pytest.mark.parametrize(
    "media_type", ["text/turtle", "application/ld+json", "application/rdf+xml", "application/n-triples"]
)
def test_oversized_document_is_refused_before_parsing(parsers_must_not_run: None, media_type: str) -> None:
    data = b"<" * 2048  # malformed too: only the size check may answer
    with pytest.raises(DocumentTooLargeError) as raised:
        rdfio.parse_rdf(data, media_type, base=BASE, max_bytes=1024)
    assert (raised.value.size, raised.value.limit) == (2048, 1024)
    assert raised.value.code == "document-too-large"


def test_default_limit_is_ten_megabytes() -> None:
    assert rdfio.DEFAULT_MAX_DOCUMENT_BYTES == 10 * 1024 * 1024
    just_over = b"#" * (rdfio.DEFAULT_MAX_DOCUMENT_BYTES + 1)
    with pytest.raises(DocumentTooLargeError):
        rdfio.parse_rdf(just_over, "text/turtle", base=BASE)


def test_size_of_text_is_counted_in_utf8_bytes() -> None:
    text = "# " + "é" * 600  # 1202 bytes, 602 characters
    with pytest.raises(DocumentTooLargeError):
        rdfio.parse_rdf(text, "text/turtle", base=BASE, max_bytes=1000)
    assert len(rdfio.parse_rdf(text, "text/turtle", base=BASE, max_bytes=2000)) == 0


def test_document_at_the_limit_is_accepted() -> None:
    ttl = b"<https://a.example/s> <https://a.example/p> <https://a.example/o> .\n"
    assert len(rdfio.parse_rdf(ttl, "text/turtle", base=BASE, max_bytes=len(ttl))) == 1


def _nested(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"@id": "urn:leaf"}
    for _ in range(depth - 1):
        doc = {"http://example.org/p": doc}
    return doc


def test_json_ld_nested_deeper_than_the_limit_is_refused() -> None:
    too_deep = _nested(jsonld.MAX_JSON_DEPTH + 1)
    with pytest.raises(DocumentTooDeepError) as raised:
        jsonld.expand(too_deep, base=BASE)
    assert raised.value.limit == jsonld.MAX_JSON_DEPTH
    with pytest.raises(DocumentTooDeepError):
        rdfio.parse_rdf(json.dumps(too_deep), "application/ld+json", base=BASE)


def test_json_ld_nested_up_to_the_limit_is_accepted() -> None:
    graph = jsonld.to_graph(_nested(jsonld.MAX_JSON_DEPTH), base=BASE)
    assert len(graph) == jsonld.MAX_JSON_DEPTH - 1


def test_pathologically_deep_json_text_is_refused_not_crashing() -> None:
    text = "[" * 200_000 + "]" * 200_000
    with pytest.raises(DocumentTooDeepError):
        rdfio.parse_rdf(text, "application/ld+json", base=BASE)


def test_pathologically_deep_turtle_is_refused_not_crashing() -> None:
    nesting = "[ <https://a.example/p> " * 5000 + "]" * 5000
    ttl = "<https://a.example/s> <https://a.example/p> " + nesting + " ."
    with pytest.raises((DocumentTooDeepError, RdfSyntaxError)):
        rdfio.parse_rdf(ttl, "text/turtle", base=BASE)


def test_too_many_json_values_are_refused() -> None:
    doc = {"@id": "urn:a", "http://example.org/p": list(range(100))}
    jsonld.check_json_limits(doc, max_values=200)
    with pytest.raises(DocumentTooLargeError):
        jsonld.check_json_limits(doc, max_values=50)


def test_billion_laughs_in_rdf_xml_is_refused() -> None:
    xml = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n'
        b'<!ENTITY a "aaaaaaaaaa">\n<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n]>\n'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="http://a.example/"><rdf:value>&b;</rdf:value></rdf:Description></rdf:RDF>'
    )
    with pytest.raises(RdfSyntaxError, match="refers to other entities") as raised:
        rdfio.parse_rdf(xml, "application/rdf+xml", base=BASE)
    assert raised.value.line == 4


def test_wide_entity_expansion_in_rdf_xml_is_refused_by_size() -> None:
    value = "x" * 2000
    refs = b"&w;" * 400  # 1.2 KB of references expanding to 800 KB
    xml = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [<!ENTITY w "' + value.encode() + b'">]>\n'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="http://a.example/"><rdf:value>'
        + refs
        + b"</rdf:value></rdf:Description></rdf:RDF>"
    )
    with pytest.raises(DocumentTooLargeError, match="entity expansion"):
        rdfio.parse_rdf(xml, "application/rdf+xml", base=BASE, max_bytes=100_000)


def test_namespace_shorthand_entities_in_rdf_xml_are_fine() -> None:
    xml = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [<!ENTITY xsd "http://www.w3.org/2001/XMLSchema#">]>\n'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="http://a.example/">'
        b'<rdf:value rdf:datatype="&xsd;integer">7</rdf:value></rdf:Description></rdf:RDF>'
    )
    graph = rdfio.parse_rdf(xml, "application/rdf+xml", base=BASE)
    (value,) = graph.objects()
    assert str(value.datatype) == "http://www.w3.org/2001/XMLSchema#integer"  # type: ignore[attr-defined]
