"""The ingest pipeline: a catalogue dump in, every dataset stored with its repairs and conformance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rdflib import URIRef

from catalogue.api import CatalogueNode, open_node
from catalogue.config import CatalogueConfig
from catalogue.index import SearchQuery
from catalogue.publish import IngestStatus, PublishError
from catalogue.store import LOCAL_SOURCE
from tests.catalogue.catalogue_records import PUBLISHER, dataset_turtle, invalid_turtle
from tests.catalogue.conftest import NodeFactory, start_node  # noqa: F401 (the fixture, used below)
from vocab.namespaces import PROV, SLUIS

SOURCE = "https://portal.example.it/catalog"
EU = "http://publications.europa.eu/resource/authority/"

# What a CKAN / DCAT-AP_IT export really looks like: literals where DCAT-AP 3 wants IRIs,
# a blank-node publisher, a Creative Commons URL, an untyped date, several datasets.
DUMP = """@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix vcard: <http://www.w3.org/2006/vcard/ns#> .

<https://portal.example.it/catalog> a dcat:Catalog ;
    dct:title "Catalogo"@it ;
    dcat:dataset <https://portal.example.it/dataset/bilancio>, <https://portal.example.it/dataset/scuole>, [
        a dcat:Dataset ; dct:title "Senza nome"@it ; dct:description "Dataset anonimo"@it ] .

<https://portal.example.it/dataset/bilancio> a dcat:Dataset ;
    dct:title "Bilancio comunale"@it, "Municipal budget"@en ;
    dct:description "Entrate e uscite del comune."@it ;
    dct:language "it" ;
    dct:issued "2021-03-04" ;
    dct:publisher [ a foaf:Agent ; foaf:name "Comune di Esempio" ] ;
    dcat:distribution <https://portal.example.it/dataset/bilancio/csv> .

<https://portal.example.it/dataset/bilancio/csv> a dcat:Distribution ;
    dcat:accessURL "https://portal.example.it/files/bilancio.csv" ;
    dct:format "CSV" ;
    dcat:mediaType "text/csv" ;
    dct:license <https://creativecommons.org/licenses/by/4.0/> .

<https://portal.example.it/dataset/scuole> a dcat:Dataset ;
    dct:title "Scuole"@it ;
    dct:description "Elenco delle scuole."@it ;
    dct:issued "4 marzo 2021" ;
    dct:language <http://id.loc.gov/vocabulary/iso639-1/it> ;
    dct:publisher [ a foaf:Agent ; foaf:name "Comune di Esempio" ] .
"""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[CatalogueNode]:
    opened = open_node(tmp_path / "node", CatalogueConfig(public_url="http://127.0.0.1:9"))
    try:
        yield opened
    finally:
        opened.close()


def _by_dataset(results: list) -> dict:  # type: ignore[type-arg]
    return {result.dataset: result for result in results}


def test_harvested_dump_is_split_repaired_and_every_dataset_stored(node: CatalogueNode) -> None:
    results = node.pipeline.ingest_document(DUMP.encode(), "text/turtle", source=SOURCE)
    assert len(results) == 3
    assert {result.status for result in results} == {IngestStatus.STORED}
    found = _by_dataset(results)
    budget = found["https://portal.example.it/dataset/bilancio"]
    rules = {(repair.rule, repair.original, repair.replacement) for repair in budget.repairs}
    assert ("language-code", '"it"', EU + "language/ITA") in rules
    assert ("file-type", '"CSV"', EU + "file-type/CSV") in rules
    assert ("media-type", '"text/csv"', "https://www.iana.org/assignments/media-types/text/csv") in rules
    assert ("licence", "https://creativecommons.org/licenses/by/4.0/", EU + "licence/CC_BY_4_0") in rules
    assert (
        "literal-url",
        '"https://portal.example.it/files/bilancio.csv"',
        "https://portal.example.it/files/bilancio.csv",
    ) in rules
    assert any(rule == "date-datatype" for rule, _, _ in rules)
    assert any(rule == "blank-node-agent" for rule, _, _ in rules)
    # the same publisher description in both datasets gets the same IRI, so it is one facet value
    stored = [node.store.current(result.record_id) for result in results]
    assert all(version is not None and version.source == SOURCE for version in stored)
    publishers = {row["value"] for row in node.index.search(SearchQuery()).facets["publisher"]}
    assert len(publishers) == 1
    assert "/.well-known/genid/agent-" in next(iter(publishers))
    # repairs and conformance travel with the record
    version = node.store.current(budget.record_id)
    assert version is not None
    assert version.quality["repairs"] == [repair.to_json() for repair in budget.repairs]
    served = node.publisher.quality_graph(version)  # what GET /catalogue/datasets/{id} adds to the record
    originals = {str(o) for o in served.objects(None, SLUIS.originalValue)}
    assert '"it"' in originals
    assert len(list(served.objects(URIRef(budget.dataset or ""), PROV.wasInfluencedBy))) == len(
        budget.repairs
    )
    conformance = version.quality["quality"]["conformance"]
    assert conformance["violations"] == len(budget.violations)
    assert sum(conformance["violations_by_profile"].values()) == conformance["violations"]


def test_reharvesting_the_same_document_changes_nothing(node: CatalogueNode) -> None:
    first = node.pipeline.ingest_document(DUMP.encode(), "text/turtle", source=SOURCE)
    again = node.pipeline.ingest_document(DUMP.encode(), "text/turtle", source=SOURCE)
    assert {result.status for result in again} == {IngestStatus.UNCHANGED}
    assert sorted(r.record_id or "" for r in again) == sorted(r.record_id or "" for r in first)
    changed = DUMP.replace("Elenco delle scuole.", "Elenco aggiornato delle scuole.")
    third = _by_dataset(node.pipeline.ingest_document(changed.encode(), "text/turtle", source=SOURCE))
    assert third["https://portal.example.it/dataset/scuole"].status is IngestStatus.STORED
    assert third["https://portal.example.it/dataset/scuole"].version == 2


def test_a_dataset_held_from_another_source_stays_one_record(node: CatalogueNode) -> None:
    one = _by_dataset(node.pipeline.ingest_document(DUMP.encode(), "text/turtle", source=SOURCE))
    mirror = "https://mirror.example.eu/"
    two = _by_dataset(node.pipeline.ingest_document(DUMP.encode(), "text/turtle", source=mirror))
    iri = "https://portal.example.it/dataset/bilancio"
    assert two[iri].record_id == one[iri].record_id
    assert two[iri].status is IngestStatus.UNCHANGED
    assert two[iri].reason == f"held from {SOURCE}"
    version = node.store.current(one[iri].record_id or "")
    assert version is not None
    assert version.source == SOURCE


def test_strict_publishing_of_a_dump_writes_nothing_when_one_record_fails(node: CatalogueNode) -> None:
    before = node.index.search(SearchQuery()).total
    with pytest.raises(PublishError) as raised:
        node.pipeline.publish_document(DUMP.encode(), "text/turtle", owner=None, strict=True)
    assert raised.value.status == 422
    assert raised.value.extra["dataset"]
    assert node.index.search(SearchQuery()).total == before


def test_lenient_publishing_stores_the_dump_with_its_violations(node: CatalogueNode) -> None:
    results = node.pipeline.publish_document(DUMP.encode(), "text/turtle", owner=None, strict=False)
    assert len(results) == 3
    assert all(result.status is IngestStatus.STORED for result in results)
    assert any(result.violations for result in results)
    assert all(node.store.current(r.record_id or "").source == LOCAL_SOURCE for r in results)  # type: ignore[union-attr]


def test_a_failing_trust_check_quarantines_and_says_why(node: CatalogueNode) -> None:
    results = node.pipeline.ingest_document(
        DUMP.encode(),
        "text/turtle",
        source=SOURCE,
        trust=lambda _dataset, _statements: "publisher not trusted",
    )
    assert {result.status for result in results} == {IngestStatus.QUARANTINED}
    assert all(result.reason == "publisher not trusted" for result in results)
    version = node.store.current(results[0].record_id or "")
    assert version is not None
    assert version.quality["quality"]["quarantined"] == "publisher not trusted"


def test_an_unparsable_document_is_one_error_with_its_line(node: CatalogueNode) -> None:
    with pytest.raises(PublishError) as raised:
        node.pipeline.ingest_document(
            b"@prefix dcat: <http://www.w3.org/ns/dcat#> .\n<a> dcat:x ", "text/turtle", source=SOURCE
        )
    assert raised.value.status == 400
    assert raised.value.extra["line"] is not None


def test_the_publishing_mode_is_the_nodes_unless_the_token_sets_its_own(
    request: pytest.FixtureRequest,
) -> None:
    start: NodeFactory = request.getfixturevalue("start_node")  # a real node on loopback
    with start() as running:
        lenient = running.node.tokens.create(PUBLISHER, strict=False).token
        refused = running.publish(invalid_turtle("strict-node"))
        assert refused.status_code == 422
        assert refused.json()["violations"][0]["explanation"]
        kept = running.publish(invalid_turtle("lenient-token"), token=lenient)
        assert kept.status_code == 201, kept.text
        body = kept.json()
        assert body["violations"]
        assert body["quality"]["conformance"]["conforms"] is False
        assert running.node.store.current(body["id"]) is not None
    with start(strict_publishing=False) as running:
        strict = running.node.tokens.create(PUBLISHER, strict=True).token
        assert running.publish(invalid_turtle("lenient-node")).status_code == 201
        assert running.publish(invalid_turtle("strict-token"), token=strict).status_code == 422


def test_restating_the_type_of_an_eu_concept_is_not_held_against_the_publisher(node: CatalogueNode) -> None:
    body = dataset_turtle("restated") + (
        f"<{EU}file-type/CSV> a <http://purl.org/dc/terms/MediaTypeOrExtent> .\n"
        f"<{EU}frequency/DAILY> a <http://purl.org/dc/terms/Frequency> .\n"
    )
    outcome = node.publisher.publish(body.encode(), "text/turtle", owner=None)  # strict: no violation
    dropped = {(r["rule"], r["subject"]) for r in outcome.repairs}
    assert ("known-concept", f"{EU}file-type/CSV") in dropped
    assert ("known-concept", f"{EU}frequency/DAILY") in dropped
    # a concept the document says more about keeps what it says (and is checked as said)
    label = '<http://www.w3.org/2004/02/skos/core#prefLabel> "daily"@en'
    described = body.replace(
        f"<{EU}frequency/DAILY> a <http://purl.org/dc/terms/Frequency> .",
        f"<{EU}frequency/DAILY> a <http://purl.org/dc/terms/Frequency> ; {label} .",
    ).replace("restated", "described")
    kept = node.publisher.publish(described.encode(), "text/turtle", owner=None)
    assert ("known-concept", f"{EU}frequency/DAILY") not in {(r["rule"], r["subject"]) for r in kept.repairs}
