"""MQA-compatible quality scores: the methodology's weights and bands, per-indicator points, DQV."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from catalogue.quality import (
    BANDS,
    DIMENSION_MAXIMUM,
    INDICATORS,
    MAXIMUM_POINTS,
    QualityAssessment,
    assess,
    band_for,
)
from catalogue.seed import dataset_iri, seed_files
from catalogue.validation import validate_record
from vocab.namespaces import DCAT, DCT, DQV, SLUIS, XSD

ENERGY = "entsoe-actual-total-load"
RESTRICTED = "thl-hilmo"


def load(slug: str) -> tuple[Graph, URIRef]:
    path = next(p for p in seed_files() if p.stem == slug)
    return Graph().parse(path), URIRef(dataset_iri(path))


# A restricted health record giving everything HealthDCAT-AP Release 8 requires and recommends
# (the seed records state only what their publishers publish, so they lack recommended counts).
COMPLETE_HEALTH = Path(__file__).resolve().parent.parent / "vocab_shapes" / "data" / "health-restricted.ttl"


def load_complete_health_record() -> tuple[Graph, URIRef]:
    return Graph().parse(COMPLETE_HEALTH), URIRef("https://data.umc-noord.example/cardiology-registry")


def score(graph: Graph, dataset: URIRef, **trust: bool) -> QualityAssessment:
    return assess(
        graph,
        dataset,
        validate_record(graph),
        signed=trust.get("signed", False),
        publisher_verified=trust.get("publisher_verified", False),
    )


def points(assessment: QualityAssessment, key: str) -> int:
    return next(i.earned for i in assessment.indicators if i.key == key)


def test_the_methodology_weights_add_up_to_405_over_five_dimensions() -> None:
    assert MAXIMUM_POINTS == 405
    assert DIMENSION_MAXIMUM == {
        "findability": 100,
        "accessibility": 100,
        "interoperability": 110,
        "reusability": 75,
        "contextuality": 20,
    }
    assert len({i.key for i in INDICATORS}) == len(INDICATORS)


@pytest.mark.parametrize(
    ("total", "band"),
    [(405, "excellent"), (351, "excellent"), (350, "good"), (221, "good"), (220, "sufficient"),
     (121, "sufficient"), (120, "bad"), (0, "bad")],
)  # fmt: skip
def test_bands_follow_the_mqa_thresholds(total: int, band: str) -> None:
    assert band_for(total) == band
    assert [name for name, _ in BANDS] == ["excellent", "good", "sufficient", "bad"]


def test_a_complete_energy_record_scores_each_indicator_it_fulfils() -> None:
    graph, dataset = load(ENERGY)
    assessment = score(graph, dataset, signed=True, publisher_verified=True)
    assert assessment.maximum == 405
    assert assessment.total == sum(assessment.dimensions.values())
    assert assessment.total == sum(i.earned for i in assessment.indicators)
    for key in ("keywordUsage", "categories", "geoSearch", "timeBasedSearch", "dcatApCompliance",
                "licenceInformation", "licenceVocabulary", "contactPoint", "publisher",
                "accessRestrictions", "accessRestrictionsVocabulary", "format",
                "formatMediaTypeVocabulary", "nonProprietary", "machineReadable"):  # fmt: skip
        indicator = next(i for i in assessment.indicators if i.key == key)
        assert indicator.earned == indicator.possible, key
    assert points(assessment, "downloadUrl") == 0  # the record states no download URL
    assert assessment.trust == {"signed": True, "publisher_verified": True, "health_tier_complete": False}


def test_removing_keywords_costs_exactly_the_keyword_weight() -> None:
    graph, dataset = load(ENERGY)
    before = score(graph, dataset)
    graph.remove((dataset, DCAT.keyword, None))
    after = score(graph, dataset)
    assert before.total - after.total == 30
    assert before.dimensions["findability"] - after.dimensions["findability"] == 30


def test_a_record_with_violations_loses_dcat_ap_compliance() -> None:
    graph, dataset = load(ENERGY)
    graph.remove((dataset, DCT.description, None))
    assessment = score(graph, dataset)
    assert points(assessment, "dcatApCompliance") == 0
    detail = next(i.detail for i in assessment.indicators if i.key == "dcatApCompliance")
    assert "violation" in detail


def test_distribution_indicators_count_the_share_of_distributions() -> None:
    graph, dataset = load(ENERGY)  # two distributions
    distributions = sorted(graph.objects(dataset, DCAT.distribution), key=str)
    assert len(distributions) == 2
    graph.add((distributions[0], DCAT.downloadURL, URIRef("https://transparency.entsoe.eu/")))
    graph.add((distributions[1], DCAT.downloadURL, URIRef("http://127.0.0.1:8080/load.csv")))
    graph.add((distributions[0], DCAT.byteSize, Literal(1000, datatype=XSD.nonNegativeInteger)))
    assessment = score(graph, dataset)
    assert points(assessment, "downloadUrl") == 20
    assert points(assessment, "downloadUrlAccessibility") == 15  # the loopback URL is not public
    assert points(assessment, "fileSize") == round(5 / 2)


def test_scoring_makes_no_network_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> Iterator[object]:
        raise AssertionError("quality assessment tried to use the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    graph, dataset = load(ENERGY)
    assert score(graph, dataset).dimensions["accessibility"] == 50


def test_a_restricted_health_record_has_its_tier_complete() -> None:
    graph, dataset = load_complete_health_record()
    assessment = score(graph, dataset)
    assert assessment.trust["health_tier_complete"] is True
    seed, seed_dataset = load(RESTRICTED)  # valid, but without Release 8's recommended properties
    assert score(seed, seed_dataset).trust["health_tier_complete"] is False
    graph.remove((dataset, URIRef("http://healthdataportal.eu/ns/health#hdab"), None))
    assert score(graph, dataset).trust["health_tier_complete"] is False


def test_the_assessment_is_published_as_dqv_measurements() -> None:
    graph, dataset = load(ENERGY)
    assessment = score(graph, dataset, signed=True)
    dqv = assessment.to_dqv(dataset)
    measurements = set(dqv.subjects(RDF.type, DQV.QualityMeasurement))
    assert len(measurements) == len(INDICATORS) + 5 + 2 + 3
    values = {
        dqv.value(m, DQV.isMeasurementOf): dqv.value(m, DQV.value)
        for m in measurements
        if dqv.value(m, DQV.computedOn) == dataset
    }
    assert values[SLUIS.qualityScore].toPython() == assessment.total
    assert values[SLUIS.findability].toPython() == assessment.dimensions["findability"]
    assert values[SLUIS.keywordUsage].toPython() == 30
    assert values[SLUIS.signed].toPython() is True
    assert (SLUIS.keywordUsage, DQV.inDimension, SLUIS.findability) in dqv


def test_the_assessment_serialises_to_json() -> None:
    graph, dataset = load_complete_health_record()
    document = score(graph, dataset).to_json()
    assert document["maximum"] == 405
    assert document["band"] in {"excellent", "good", "sufficient", "bad"}
    assert set(document["dimensions"]) == set(DIMENSION_MAXIMUM)
    assert {i["indicator"] for i in document["indicators"]} == {i.key for i in INDICATORS}
    assert document["trust"]["health_tier_complete"] is True
