"""Malformed RDF is reported with the line and column of the mistake, in every syntax we read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rdflib import URIRef

from vocab import rdfio
from vocab.errors import RdfSyntaxError

BASE = "https://publisher.example/"

EXAMPLES = Path("dcat-ap") / "examples"
# Listed in the conformance data's README as not parsing upstream.
PREFIXED_NAME_WITH_SLASH = [
    "dcat-ap-3.0.1/example-bee-population-dataset-series-api.ttl",
    "dcat-ap-3.0.1/example-bee-population-dataset-series-combined.ttl",
]
PREFIX_WITHOUT_DOT = "dcat-ap-hvd-3.0.0/example-bees_wasps_dataset.ttl"


@pytest.mark.conformance
@pytest.mark.parametrize("example", PREFIXED_NAME_WITH_SLASH)
def test_prefixed_name_with_a_slash_is_reported_at_the_slash(conformance_dir: Path, example: str) -> None:
    text = (conformance_dir / EXAMPLES / example).read_text(encoding="utf-8")
    lines = text.split("\n")
    # The first such prefixed name outside angle brackets (inside them it is a valid, if odd, IRI).
    bad_name = re.compile(r"(?<!<)example-dist:BeePopulation2023(/)")
    offending, match = next(
        (i, m) for i, line in enumerate(lines) if (m := bad_name.search(line)) is not None
    )
    slash_column = match.start(1) + 1

    with pytest.raises(RdfSyntaxError) as raised:
        rdfio.parse_rdf(text.encode(), "text/turtle", base=BASE)

    assert (raised.value.line, raised.value.column) == (offending + 1, slash_column)
    assert raised.value.code == "rdf-syntax"
    assert f"line {offending + 1}, column {slash_column}" in str(raised.value)


@pytest.mark.conformance
def test_prefix_line_without_its_dot_is_reported_on_that_line(conformance_dir: Path) -> None:
    text = (conformance_dir / EXAMPLES / PREFIX_WITHOUT_DOT).read_text(encoding="utf-8")
    lines = text.split("\n")
    offending = next(
        i for i, line in enumerate(lines) if line.startswith("@prefix") and not line.rstrip().endswith(".")
    )

    with pytest.raises(RdfSyntaxError) as raised:
        rdfio.parse_rdf(text.encode(), "text/turtle", base=BASE)

    assert raised.value.line == offending + 1
    assert raised.value.column == len(lines[offending].rstrip()) + 1  # just where the "." belongs


@pytest.mark.conformance
def test_every_other_upstream_turtle_example_parses(conformance_dir: Path) -> None:
    broken = {*PREFIXED_NAME_WITH_SLASH, PREFIX_WITHOUT_DOT}
    parsed = 0
    for folder in ("dcat-ap-3.0.1", "dcat-ap-hvd-3.0.0"):
        for path in sorted((conformance_dir / EXAMPLES / folder).glob("*.ttl")):
            if f"{folder}/{path.name}" in broken:
                continue
            graph = rdfio.parse_rdf(path.read_bytes(), rdfio.media_type_for_path(path), base=BASE)
            assert len(graph) > 0, path.name
            parsed += 1
    assert parsed >= 25


def test_turtle_error_in_the_middle_of_a_line() -> None:
    ttl = '@prefix dct: <http://purl.org/dc/terms/> .\n<a> dct:title "ok" ;\n    dct:description "x" "y" .\n'
    with pytest.raises(RdfSyntaxError, match="expected") as raised:
        rdfio.parse_rdf(ttl, "text/turtle", base=BASE)
    # A terminator (".", ";" or ",") was due right after "x".
    assert raised.value.line == 3
    assert raised.value.column == len('    dct:description "x"') + 1


def test_undeclared_prefix_is_reported_where_it_is_used() -> None:
    ttl = "<a> <b> <c> .\n\n<d> dcat:theme <e> .\n"
    with pytest.raises(RdfSyntaxError, match="dcat") as raised:
        rdfio.parse_rdf(ttl, "text/turtle", base=BASE)
    assert raised.value.line == 3


def test_malformed_json_ld_names_line_and_column() -> None:
    doc = '{\n  "@id": "urn:a",\n  "http://purl.org/dc/terms/title": ,\n}'
    with pytest.raises(RdfSyntaxError) as raised:
        rdfio.parse_rdf(doc, "application/ld+json", base=BASE)
    assert (raised.value.line, raised.value.column) == (3, len('  "http://purl.org/dc/terms/title": ') + 1)
    assert raised.value.media_type == "application/ld+json"


def test_json_ld_that_is_not_utf8_names_the_position() -> None:
    doc = b'{\n  "@id": "urn:\xff"\n}'
    with pytest.raises(RdfSyntaxError, match="UTF-8") as raised:
        rdfio.parse_rdf(doc, "application/ld+json", base=BASE)
    assert (raised.value.line, raised.value.column) == (2, len('  "@id": "urn:') + 1)


def test_json_with_nan_is_refused() -> None:
    with pytest.raises(RdfSyntaxError, match="NaN"):
        rdfio.parse_rdf('{"@id": "urn:a", "http://x/y": NaN}', "application/ld+json", base=BASE)


def test_n_triples_error_names_line_and_column() -> None:
    nt = (
        '<http://a.example/s> <http://a.example/p> "one" .\n'
        "<http://a.example/s> <http://a.example/p> <http://a.example/o> .\n"
        "<http://a.example/s> <http://a.example/p> bare .\n"
    )
    with pytest.raises(RdfSyntaxError) as raised:
        rdfio.parse_rdf(nt, "application/n-triples", base=BASE)
    before_object = "<http://a.example/s> <http://a.example/p> "
    assert (raised.value.line, raised.value.column) == (3, len(before_object) + 1)


def test_valid_n_triples_parse_line_by_line() -> None:
    nt = (
        "# a comment\n"
        '<http://a.example/s> <http://a.example/p> "one"@en .\r\n'
        "_:b <http://a.example/p> _:b .\n"
        "\n"
        '<http://a.example/s> <http://a.example/q> "2"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    )
    graph = rdfio.parse_rdf(nt, "application/n-triples", base=BASE)
    assert len(graph) == 3
    blank_subjects = {s for s, _p, o in graph if not isinstance(s, URIRef)}
    assert len(blank_subjects) == 1  # the same label is the same node


def test_rdf_xml_not_well_formed_names_line_and_column() -> None:
    xml = (
        b'<?xml version="1.0"?>\n'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        b'  <rdf:Description rdf:about="http://a.example/">\n'
        b"    <rdf:value>1</rdf:valu>\n"
        b"  </rdf:Description>\n"
        b"</rdf:RDF>\n"
    )
    with pytest.raises(RdfSyntaxError) as raised:
        rdfio.parse_rdf(xml, "application/rdf+xml", base=BASE)
    assert raised.value.line == 4
    assert raised.value.column == len("    <rdf:value>1</") + 1


def test_rdf_xml_that_is_not_valid_rdf_names_the_element() -> None:
    xml = (
        b'<?xml version="1.0"?>\n'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        b'  <rdf:Description rdf:about="http://a.example/" rdf:nodeID="n1"/>\n'
        b"</rdf:RDF>\n"
    )
    with pytest.raises(RdfSyntaxError) as raised:
        rdfio.parse_rdf(xml, "application/rdf+xml", base=BASE)
    assert raised.value.line == 3
    assert "None:" not in str(raised.value)
