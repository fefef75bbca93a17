"""Our own complete records validate clean, and each mandatory property is really enforced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import Graph, Literal, Namespace, URIRef

from vocab.errors import VocabError
from vocab.namespaces import DCAT, DCATAP, DCT, EU_ACCESS_RIGHT, FOAF, HEALTHDCATAP, XSD
from vocab.shacl import Profile, ValidationReport, profiles_for, validate

DATA = Path(__file__).parent / "data"
DPV = Namespace("https://w3id.org/dpv#")
CV = Namespace("http://data.europa.eu/m8g/")
ENERGY = "https://data.gridnoord.example/"
HEALTH = "https://data.umc-noord.example/"
ENERGY_PROFILES = (Profile.DCAT_AP, Profile.HVD)
HEALTH_PROFILES = (Profile.DCAT_AP, Profile.HEALTH_RESTRICTED)


def _record(name: str) -> Graph:
    graph = Graph()
    graph.parse(DATA / name, format="turtle")
    return graph


@pytest.fixture(scope="module")
def energy() -> Graph:
    return _record("energy-consumption.ttl")


@pytest.fixture(scope="module")
def health() -> Graph:
    return _record("health-restricted.ttl")


def _copy(graph: Graph) -> Graph:
    copy = Graph()
    copy += graph
    return copy


def _violated(report: ValidationReport) -> set[tuple[str, str | None]]:
    return {(result.focus_node, result.path) for result in report.violations}


def test_the_public_energy_record_is_a_high_value_dataset_and_validates_with_no_result(energy: Graph) -> None:
    assert profiles_for(energy) == list(ENERGY_PROFILES)
    report = validate(energy)
    assert report.conforms
    assert report.results == []


def test_the_restricted_health_record_validates_with_no_result(health: Graph) -> None:
    assert profiles_for(health) == list(HEALTH_PROFILES)
    report = validate(health)
    assert report.conforms
    assert report.results == []


ENERGY_MANDATORY = [
    ("catalogue", DCT.title),
    ("catalogue", DCT.description),
    ("catalogue", DCT.publisher),
    ("consumption-hourly", DCT.title),
    ("consumption-hourly", DCT.description),
    ("consumption-hourly", DCATAP.applicableLegislation),
    ("consumption-hourly", DCATAP.hvdCategory),
    ("consumption-parquet", DCAT.accessURL),
    ("consumption-parquet", DCATAP.applicableLegislation),
    ("consumption-api", DCT.title),
    ("consumption-api", DCAT.endpointURL),
    ("consumption-api", DCATAP.applicableLegislation),
    ("consumption-api", DCATAP.hvdCategory),
    ("consumption-api", DCAT.contactPoint),
    ("consumption-api", FOAF.page),
    ("gridnoord", FOAF.name),
]


@pytest.mark.parametrize(("local", "path"), ENERGY_MANDATORY, ids=lambda v: str(v).rsplit("/", 1)[-1])
def test_removing_a_mandatory_property_of_the_energy_record_is_reported_exactly(
    energy: Graph, local: str, path: URIRef
) -> None:
    focus = URIRef(ENERGY + local)
    broken = _copy(energy)
    broken.remove((focus, path, None))
    report = validate(broken, ENERGY_PROFILES)
    assert not report.conforms
    assert _violated(report) == {(str(focus), str(path))}


HEALTH_MANDATORY = [
    ("cardiology-registry", DCT.title),
    ("cardiology-registry", DCT.description),
    ("cardiology-registry", HEALTHDCATAP.healthCategory),
    ("cardiology-registry", DCT.accessRights),
    ("cardiology-registry", DCT.identifier),
    ("cardiology-registry", DCAT.theme),
    ("cardiology-registry", DCATAP.applicableLegislation),
    ("cardiology-registry", DCAT.distribution),
    ("cardiology-registry", HEALTHDCATAP.hdab),
    ("cardiology-registry", HEALTHDCATAP.hasStructuredData),
    ("registry-parquet", DCAT.accessURL),
    ("registry-parquet", DCATAP.applicableLegislation),
    ("hdab-nl", FOAF.name),
    ("hdab-nl", CV.contactPoint),
    ("umc-noord", FOAF.name),
    ("registry-variables", DCT.title),
]


@pytest.mark.parametrize(("local", "path"), HEALTH_MANDATORY, ids=lambda v: str(v).rsplit("/", 1)[-1])
def test_removing_a_mandatory_property_of_the_health_record_is_reported_exactly(
    health: Graph, local: str, path: URIRef
) -> None:
    focus = URIRef(HEALTH + local)
    broken = _copy(health)
    broken.remove((focus, path, None))
    report = validate(broken, HEALTH_PROFILES)
    assert not report.conforms
    assert _violated(report) == {(str(focus), str(path))}


@pytest.mark.parametrize(
    ("right", "tier"),
    [
        (EU_ACCESS_RIGHT.PUBLIC, Profile.HEALTH_PUBLIC),
        (EU_ACCESS_RIGHT.RESTRICTED, Profile.HEALTH_RESTRICTED),
        (EU_ACCESS_RIGHT.NON_PUBLIC, Profile.HEALTH_NON_PUBLIC),
        (None, Profile.HEALTH_NON_PUBLIC),
        (URIRef("https://example.org/rights/whatever"), Profile.HEALTH_NON_PUBLIC),
    ],
)
def test_the_health_tier_follows_the_access_rights_and_defaults_to_the_strictest(
    health: Graph, right: URIRef | None, tier: Profile
) -> None:
    record = _copy(health)
    dataset = URIRef(HEALTH + "cardiology-registry")
    record.remove((dataset, DCT.accessRights, None))
    if right is not None:
        record.add((dataset, DCT.accessRights, right))
    assert profiles_for(record) == [Profile.DCAT_AP, tier]


def test_the_same_record_made_public_still_validates(health: Graph) -> None:
    record = _copy(health)
    dataset = URIRef(HEALTH + "cardiology-registry")
    record.set((dataset, DCT.accessRights, EU_ACCESS_RIGHT.PUBLIC))
    assert validate(record).conforms


def test_the_non_public_tier_asks_for_what_an_applicant_needs_to_judge_the_data(health: Graph) -> None:
    record = _copy(health)
    dataset = URIRef(HEALTH + "cardiology-registry")
    record.set((dataset, DCT.accessRights, EU_ACCESS_RIGHT.NON_PUBLIC))
    # Release 8 asks a non-public description for contact point, keywords, type and provenance.
    required = (DCAT.contactPoint, DCAT.keyword, DCT.type, DCT.provenance)
    assert _violated(validate(record)) == {
        (str(dataset), str(path)) for path in required if (dataset, path, None) not in record
    }
    for path in required:
        record.remove((dataset, path, None))
    assert _violated(validate(record)) == {(str(dataset), str(path)) for path in required}


def test_an_open_health_distribution_without_licence_is_a_warning(health: Graph) -> None:
    record = _copy(health)
    dataset = URIRef(HEALTH + "cardiology-registry")
    distribution = URIRef(HEALTH + "registry-parquet")
    record.set((dataset, DCT.accessRights, EU_ACCESS_RIGHT.PUBLIC))
    record.remove((distribution, DCT.license, None))
    report = validate(record)
    assert report.conforms
    assert (str(distribution), str(DCT.license)) in {(r.focus_node, r.path) for r in report.warnings}


def test_structured_health_data_must_describe_its_variables(health: Graph) -> None:
    record = _copy(health)
    dataset = URIRef(HEALTH + "cardiology-registry")
    record.remove((dataset, HEALTHDCATAP.hasVariables, None))
    assert not validate(record).conforms
    record.set((dataset, HEALTHDCATAP.hasStructuredData, Literal(False)))
    assert validate(record).conforms


def test_a_health_category_outside_the_ehds_categories_is_refused(health: Graph) -> None:
    record = _copy(health)
    dataset = URIRef(HEALTH + "cardiology-registry")
    record.remove((dataset, HEALTHDCATAP.healthCategory, None))
    record.add((dataset, HEALTHDCATAP.healthCategory, URIRef("https://example.org/categories/horoscopes")))
    [result] = validate(record).violations
    assert (result.focus_node, result.path) == (str(dataset), str(HEALTHDCATAP.healthCategory))
    assert result.constraint.endswith("#NodeConstraintComponent")
    assert result.value == "https://example.org/categories/horoscopes"


def test_wrong_datatypes_and_unknown_vocabulary_terms_are_violations(energy: Graph) -> None:
    record = _copy(energy)
    dataset = URIRef(ENERGY + "consumption-hourly")
    parquet = URIRef(ENERGY + "consumption-parquet")
    record.set((parquet, DCAT.byteSize, Literal("about 700 MB")))
    record.set((dataset, DCT.issued, Literal("15 January 2024")))
    record.set((parquet, DCT["format"], URIRef("http://publications.europa.eu/resource/authority/file-type/NOPE")))
    record.add((dataset, DCT.accrualPeriodicity, URIRef("http://publications.europa.eu/resource/authority/frequency/WEEKLY")))
    report = validate(record, ENERGY_PROFILES)
    found = {(r.focus_node, r.path, r.constraint.rpartition("#")[2]) for r in report.violations}
    assert found == {
        (str(parquet), str(DCAT.byteSize), "DatatypeConstraintComponent"),
        (str(dataset), str(DCT.issued), "NodeConstraintComponent"),
        (str(parquet), str(DCT["format"]), "NodeConstraintComponent"),
        (str(parquet), str(DCT["format"]), "ClassConstraintComponent"),
        (str(dataset), str(DCT.accrualPeriodicity), "MaxCountConstraintComponent"),
    }


def test_a_missing_recommended_property_is_only_a_warning(energy: Graph) -> None:
    record = _copy(energy)
    dataset = URIRef(ENERGY + "consumption-hourly")
    record.remove((dataset, DCAT.keyword, None))
    report = validate(record)
    assert report.conforms
    assert [(w.focus_node, w.path) for w in report.warnings] == [(str(dataset), str(DCAT.keyword))]


def test_without_the_hvd_regulation_the_hvd_rules_do_not_apply(energy: Graph) -> None:
    record = _copy(energy)
    record.remove((None, DCATAP.applicableLegislation, None))
    record.remove((None, DCATAP.hvdCategory, None))
    assert profiles_for(record) == [Profile.DCAT_AP]
    assert validate(record).conforms
    assert not validate(record, ENERGY_PROFILES).conforms


def test_reports_are_deterministic_and_serialise_to_json(energy: Graph) -> None:
    record = _copy(energy)
    for local in ("consumption-parquet", "consumption-csv"):
        record.remove((URIRef(ENERGY + local), DCAT.accessURL, None))
    record.remove((URIRef(ENERGY + "consumption-hourly"), DCAT.keyword, None))
    first, second = validate(record), validate(record)
    assert first == second
    document = json.loads(json.dumps(first.to_json()))
    assert document["conforms"] is False
    assert (document["violations"], document["warnings"]) == (2, 1)
    assert [r["severity"] for r in document["results"]] == ["Violation", "Violation", "Warning"]
    assert [r["focus_node"] for r in document["results"][:2]] == sorted(
        [ENERGY + "consumption-csv", ENERGY + "consumption-parquet"]
    )
    assert all(r["message"] and r["source_shape"] for r in document["results"])


def test_an_unknown_profile_is_a_vocab_error(energy: Graph) -> None:
    with pytest.raises(VocabError) as raised:
        validate(energy, ["dcat-ap-99"])  # type: ignore[list-item]
    assert raised.value.code == "unknown-profile"


def test_literal_datatypes_from_the_health_extension_are_checked(health: Graph) -> None:
    record = _copy(health)
    dataset = URIRef(HEALTH + "cardiology-registry")
    record.set((dataset, HEALTHDCATAP.numberOfRecords, Literal("-3", datatype=XSD.integer)))
    [result] = validate(record).violations
    assert (result.path, result.constraint.rpartition("#")[2]) == (
        str(HEALTHDCATAP.numberOfRecords),
        "DatatypeConstraintComponent",
    )
