"""Graphs survive the trip through every syntax we write; media types and the DSP fast path."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import BNode, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from vocab import jsonld, rdfio
from vocab.errors import JsonLdError, UnsupportedMediaTypeError
from vocab.namespaces import DCAT, DCT, ODRL, XSD

BASE = "https://publisher.example/"
EX = Namespace("https://publisher.example/id/")


def sample_graph() -> Graph:
    graph = Graph()
    dataset, distribution = EX["dataset/energy-2024"], BNode()
    graph.add((dataset, DCT.title, Literal("Energieverbruik 2024", lang="nl")))
    graph.add((dataset, DCT.title, Literal("Energy use 2024", lang="en")))
    graph.add((dataset, DCT.issued, Literal("2024-01-31", datatype=XSD.date)))
    graph.add((dataset, DCAT.keyword, Literal("energy")))
    graph.add((dataset, DCAT.distribution, distribution))
    graph.add((distribution, DCAT.byteSize, Literal("1024", datatype=XSD.nonNegativeInteger)))
    graph.add((distribution, DCAT.accessURL, URIRef("https://publisher.example/data/energy.parquet")))
    return graph


@pytest.mark.parametrize("media_type", sorted(set(rdfio.MEDIA_TYPE_BY_SUFFIX.values())))
def test_graph_round_trips_through_every_syntax(media_type: str) -> None:
    graph = sample_graph()
    data = rdfio.serialize(graph, media_type)
    assert isinstance(data, bytes)
    assert isomorphic(rdfio.parse_rdf(data, media_type, base=BASE), graph)


def test_json_ld_output_compacted_with_the_dcat_ap_context_round_trips() -> None:
    graph = sample_graph()
    document = jsonld.from_graph(graph, jsonld.DCAT_AP_CONTEXT)
    assert document["@context"] == jsonld.DCAT_AP_CONTEXT
    assert isomorphic(jsonld.to_graph(document, base=BASE), graph)
    data = rdfio.serialize(graph, "application/ld+json", context=jsonld.DCAT_AP_CONTEXT)
    assert isomorphic(rdfio.parse_rdf(data, "application/ld+json", base=BASE), graph)


def test_serialising_does_not_touch_the_callers_graph() -> None:
    graph = sample_graph()
    before = sorted(graph.namespaces())
    rdfio.serialize(graph, "text/turtle")
    assert sorted(graph.namespaces()) == before


def test_named_graphs_are_kept_by_to_dataset_and_merged_by_to_graph() -> None:
    doc = {
        "@id": "urn:credential",
        "http://purl.org/dc/terms/title": "signed thing",
        "https://w3id.org/security#proof": {
            "@graph": {"@id": "urn:proof", "http://purl.org/dc/terms/created": "now"}
        },
    }
    dataset = jsonld.to_dataset(doc, base=BASE)
    named = [g for g in dataset.graphs() if g.identifier != dataset.default_graph.identifier and len(g)]
    assert len(named) == 1
    assert (URIRef("urn:proof"), DCT.created, Literal("now")) in named[0]
    merged = jsonld.to_graph(doc, base=BASE)
    assert (URIRef("urn:proof"), DCT.created, Literal("now")) in merged
    back = jsonld.from_graph(dataset)
    assert isinstance(dataset, Dataset)
    assert any("@graph" in node for node in back["@graph"])


def test_blank_nodes_of_two_documents_never_collide() -> None:
    doc = {"@id": "urn:a", "http://example.org/p": {"http://example.org/q": "x"}}
    one, two = jsonld.to_graph(doc, base=BASE), jsonld.to_graph(doc, base=BASE)
    assert len(one + two) == 2 * len(one)


def test_expand_compact_round_trip_with_the_odrl_context() -> None:
    policy = {
        "@context": jsonld.ODRL_CONTEXT,
        "uid": "https://provider.example/policy/7",
        "type": "Set",
        "permission": [{"target": "https://provider.example/asset/7", "action": "read"}],
        "prohibition": [
            {
                "target": "https://provider.example/asset/7",
                "action": "distribute",
                "constraint": [{"leftOperand": "spatial", "operator": "neq", "rightOperand": {"@id": "https://w3id.org/sluis/place/EU"}}],
            }
        ],
    }
    expanded = jsonld.expand(policy, base=BASE)
    assert expanded[0]["@type"] == [str(ODRL.Set)]
    compacted = jsonld.compact(expanded, jsonld.ODRL_CONTEXT, base="")
    assert compacted["type"] == "Set"
    graph = jsonld.to_graph(compacted, base=BASE)
    assert (None, ODRL.operator, ODRL.neq) in graph  # the IRI the ODRL vocabulary defines
    assert isomorphic(graph, jsonld.to_graph(policy, base=BASE))


def test_invalid_json_ld_gives_a_vocab_error_not_a_crash() -> None:
    with pytest.raises(JsonLdError, match="invalid JSON-LD"):
        jsonld.expand({"@context": {"@version": 1.1}, "@id": 5}, base=BASE)
    with pytest.raises(JsonLdError):
        jsonld.expand(42, base=BASE)


def test_json_text_is_parsed_not_treated_as_a_url() -> None:
    assert jsonld.expand('{"@id": "urn:a", "http://example.org/p": "v"}', base=BASE)[0]["@id"] == "urn:a"


@pytest.mark.parametrize(("path", "expected"), [(p, m) for p, m in [
    ("records/energy.ttl", "text/turtle"),
    ("RECORD.JSONLD", "application/ld+json"),
    ("x/y.rdf", "application/rdf+xml"),
    (Path("dump.nt"), "application/n-triples"),
]])
def test_media_type_follows_the_file_suffix(path: str | Path, expected: str) -> None:
    assert rdfio.media_type_for_path(path) == expected


def test_unknown_suffix_and_media_type_are_refused() -> None:
    with pytest.raises(UnsupportedMediaTypeError, match=r"\.ttl"):
        rdfio.media_type_for_path("data.csv")
    with pytest.raises(UnsupportedMediaTypeError):
        rdfio.parse_rdf("x", "text/csv", base=BASE)


def test_media_type_parameters_and_aliases_are_understood() -> None:
    ttl = "<https://a.example/s> <https://a.example/p> 1 ."
    assert len(rdfio.parse_rdf(ttl, "text/turtle; charset=UTF-8", base=BASE)) == 1
    json_doc = '{"@id": "urn:a", "http://x.example/p": 1}'
    assert len(rdfio.parse_rdf(json_doc, "application/json", base=BASE)) == 1


def test_fast_path_accepts_only_the_plain_dsp_compact_form() -> None:
    message = {"@context": [jsonld.DSP_CONTEXT], "@type": "CatalogRequestMessage", "filter": []}
    assert jsonld.is_dsp_compact(message)
    assert jsonld.is_dsp_compact({**message, "@context": jsonld.DSP_CONTEXT})
    assert not jsonld.is_dsp_compact({**message, "@context": [jsonld.DSP_CONTEXT, jsonld.ODRL_CONTEXT]})
    assert not jsonld.is_dsp_compact({**message, "@context": "https://w3id.org/dspace/2024/1/context.json"})
    assert not jsonld.is_dsp_compact({k: v for k, v in message.items() if k != "@context"})
    assert not jsonld.is_dsp_compact([message])
    embedded = {**message, "filter": [{"@context": {"filter": "https://evil.example/"}, "x": 1}]}
    assert not jsonld.is_dsp_compact(embedded)
    deep: dict[str, object] = {"x": 1}
    for _ in range(jsonld.MAX_JSON_DEPTH + 2):
        deep = {"x": deep}
    assert not jsonld.is_dsp_compact({**message, "filter": [deep]})
