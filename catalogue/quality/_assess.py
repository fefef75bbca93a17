"""Score one dataset record the way data.europa.eu's MQA does, plus our trust indicators.

Everything is judged from the record and the shipped vocabularies: no network I/O. The two MQA
indicators that need an HTTP request (access/download URL accessibility) are judged by the form
of the URL instead; ``docs/quality.md`` says why and what that misses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final
from urllib.parse import urlsplit

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, SKOS, XSD

from catalogue.ingest.compact import CompactRecord
from catalogue.ingest.terms import from_rdflib, iri, iri_text, is_iri, text_of
from catalogue.quality._methodology import (
    DIMENSION_MAXIMUM,
    DIMENSIONS,
    INDICATORS,
    MAXIMUM_POINTS,
    Indicator,
    band_for,
)
from catalogue.validation import profiles_of, validator_for
from vocab.namespaces import (
    DCAT,
    DCT,
    DQV,
    EU_ACCESS_RIGHT,
    EU_FILE_TYPE,
    EU_LICENCE,
    PROV,
    SLUIS,
    bind_prefixes,
)
from vocab.shacl import Profile, ValidationReport, vocabularies_graph

# Formats (EU file-type codes) an open toolchain reads without a vendor's software.
NON_PROPRIETARY: Final = frozenset(
    {
        "CSV", "TSV", "JSON", "JSON_LD", "XML", "RDF", "RDF_XML", "RDF_TURTLE", "RDF_N_TRIPLES",
        "N3", "PARQUET", "ARROW", "AVRO", "HDF5", "NETCDF", "GEOJSON", "GML", "KML", "GPKG", "ODS",
        "TXT", "HTML", "PDF", "PNG", "JPEG", "TIFF", "GEOTIFF", "ZIP", "GZIP", "TAR", "SPARQLQ",
        "OAPI_FEATURES", "WFS_SRVC", "WMS_SRVC",
    }
)  # fmt: skip
# Formats whose content a program can parse into records without human reading.
MACHINE_READABLE: Final = frozenset(
    {
        "CSV", "TSV", "JSON", "JSON_LD", "XML", "RDF", "RDF_XML", "RDF_TURTLE", "RDF_N_TRIPLES",
        "N3", "PARQUET", "ARROW", "AVRO", "HDF5", "NETCDF", "GEOJSON", "GML", "KML", "GPKG", "ODS",
        "XLS", "XLSX", "SHP", "SPARQLQ", "OAPI_FEATURES", "WFS_SRVC",
    }
)  # fmt: skip
DCT_FORMAT: Final = from_rdflib(DCT["format"])
IANA_MEDIA_TYPES: Final = "https://www.iana.org/assignments/media-types/"
EU_FILE_TYPE_SCHEME: Final = iri(str(EU_FILE_TYPE).rstrip("/"))
EU_LICENCE_SCHEME: Final = iri(str(EU_LICENCE).rstrip("/"))
EU_ACCESS_RIGHT_SCHEME: Final = iri(str(EU_ACCESS_RIGHT).rstrip("/"))
HEALTH_TIERS: Final = (Profile.HEALTH_PUBLIC, Profile.HEALTH_RESTRICTED, Profile.HEALTH_NON_PUBLIC)
TRUST_INDICATORS: Final = ("signed", "publisher_verified", "health_tier_complete")


@dataclass(frozen=True)
class IndicatorScore:
    """Points one indicator earned out of its weight, and the reason in a few words."""

    key: str
    dimension: str
    earned: int
    possible: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "indicator": self.key,
            "dimension": self.dimension,
            "earned": self.earned,
            "possible": self.possible,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class QualityAssessment:
    """An MQA-compatible score for one dataset, with our trust indicators beside it."""

    total: int
    maximum: int
    band: str
    dimensions: dict[str, int]
    indicators: tuple[IndicatorScore, ...]
    trust: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "maximum": self.maximum,
            "band": self.band,
            "dimensions": {
                d: {"earned": self.dimensions.get(d, 0), "possible": DIMENSION_MAXIMUM[d]} for d in DIMENSIONS
            },
            "indicators": [i.to_json() for i in self.indicators],
            "trust": dict(self.trust),
        }

    def to_dqv(self, dataset: URIRef) -> Graph:
        """The assessment as DQV: one dqv:QualityMeasurement per indicator, dimension and total."""
        graph = Graph()
        bind_prefixes(graph)
        assessment = URIRef(f"{dataset}#quality")
        graph.add((assessment, RDF.type, DQV.QualityMetadata))
        graph.add((assessment, PROV.wasAttributedTo, SLUIS.qualityAssessor))

        def measure(key: str, value: Literal) -> None:
            node = URIRef(f"{dataset}#quality-{key}")
            graph.add((node, RDF.type, DQV.QualityMeasurement))
            graph.add((node, DQV.computedOn, dataset))
            graph.add((node, DQV.isMeasurementOf, SLUIS[key]))
            graph.add((node, DQV.value, value))
            graph.add((dataset, DQV.hasQualityMeasurement, node))
            graph.add((node, PROV.wasGeneratedBy, assessment))

        for score in self.indicators:
            measure(score.key, Literal(score.earned, datatype=XSD.integer))
            graph.add((SLUIS[score.key], RDF.type, DQV.Metric))
            graph.add((SLUIS[score.key], DQV.inDimension, SLUIS[score.dimension]))
            graph.add((SLUIS[score.key], DQV.expectedDataType, XSD.integer))
        for dimension, points in self.dimensions.items():
            measure(dimension, Literal(points, datatype=XSD.integer))
            graph.add((SLUIS[dimension], RDF.type, DQV.Dimension))
        measure("qualityScore", Literal(self.total, datatype=XSD.integer))
        measure("qualityBand", Literal(self.band))
        for key, value in self.trust.items():
            measure(_camel(key), Literal(value))
        graph.add((dataset, DQV.hasQualityMetadata, assessment))
        return graph


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _is_public_http_url(term: str) -> bool:
    """An absolute http(s) URL whose host is a name with a dot or a public IP address."""
    if not is_iri(term):
        return False
    try:
        parts = urlsplit(iri_text(term))
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return "." in host and host != "localhost" and not host.endswith(".localhost")


@cache
def _vocabulary_schemes() -> dict[str, frozenset[str]]:
    """concept -> the schemes the shipped vocabularies put it in (skos:inScheme), read once a process."""
    found: dict[str, set[str]] = {}
    for concept, scheme in vocabularies_graph().subject_objects(SKOS.inScheme):
        found.setdefault(from_rdflib(concept), set()).add(from_rdflib(scheme))
    return {concept: frozenset(schemes) for concept, schemes in found.items()}


_IN_SCHEME: Final = from_rdflib(SKOS.inScheme)
_DISTRIBUTION: Final = from_rdflib(DCAT.distribution)
_FILE_TYPE_PREFIX: Final = str(EU_FILE_TYPE)


class _Record:
    """The dataset node, its distributions, and lookups into the shipped vocabularies."""

    def __init__(self, record: CompactRecord, dataset: str) -> None:
        self.record = record
        self.dataset = dataset
        self.distributions = list(record.objects(dataset, _DISTRIBUTION))
        self.schemes = _vocabulary_schemes()

    def has(self, subject: str, predicate: str) -> bool:
        return bool(self.record.objects(subject, predicate))

    def in_scheme(self, node: str, scheme: str) -> bool:
        return scheme in self.schemes.get(node, ()) or scheme in self.record.objects(node, _IN_SCHEME)

    def share(self, indicator: Indicator, test: Callable[[str], bool]) -> IndicatorScore:
        total = len(self.distributions)
        if total == 0:
            return IndicatorScore(indicator.key, indicator.dimension, 0, indicator.weight, "no distributions")
        passed = sum(1 for d in self.distributions if test(d))
        earned = round(indicator.weight * passed / total)
        detail = f"{passed} of {total} distributions"
        return IndicatorScore(indicator.key, indicator.dimension, earned, indicator.weight, detail)

    def flag(self, indicator: Indicator, ok: bool, detail: str) -> IndicatorScore:
        earned = indicator.weight if ok else 0
        return IndicatorScore(indicator.key, indicator.dimension, earned, indicator.weight, detail)

    def file_type_codes(self, distribution: str) -> set[str]:
        codes = set()
        for fmt in self.record.objects(distribution, DCT_FORMAT):
            text = text_of(fmt)
            if text.startswith(_FILE_TYPE_PREFIX):
                codes.add(text[len(_FILE_TYPE_PREFIX) :])
        return codes


_PRESENCE: Final = {
    "keywordUsage": from_rdflib(DCAT.keyword),
    "categories": from_rdflib(DCAT.theme),
    "geoSearch": from_rdflib(DCT.spatial),
    "timeBasedSearch": from_rdflib(DCT.temporal),
    "accessRestrictions": from_rdflib(DCT.accessRights),
    "contactPoint": from_rdflib(DCAT.contactPoint),
    "publisher": from_rdflib(DCT.publisher),
}
_ACCESS_URL: Final = from_rdflib(DCAT.accessURL)
_DOWNLOAD_URL: Final = from_rdflib(DCAT.downloadURL)
_MEDIA_TYPE: Final = from_rdflib(DCAT.mediaType)
_LICENSE: Final = from_rdflib(DCT.license)
_RIGHTS: Final = from_rdflib(DCT.rights)
_BYTE_SIZE: Final = from_rdflib(DCAT.byteSize)
_ISSUED: Final = from_rdflib(DCT.issued)
_MODIFIED: Final = from_rdflib(DCT.modified)
_ACCESS_RIGHTS: Final = from_rdflib(DCT.accessRights)


def _score(record: _Record, indicator: Indicator, report: ValidationReport) -> IndicatorScore:
    r, ds = record.record, record.dataset
    key = indicator.key
    predicate = _PRESENCE.get(key)
    if predicate is not None:
        present = record.has(ds, predicate)
        return record.flag(indicator, present, "present" if present else "missing")
    if key == "accessRestrictionsVocabulary":
        rights = r.objects(ds, _ACCESS_RIGHTS)
        ok = bool(rights) and all(record.in_scheme(x, EU_ACCESS_RIGHT_SCHEME) for x in rights)
        return record.flag(indicator, ok, "EU access-right table" if ok else "not from the EU table")
    if key == "dcatApCompliance":
        ok = report.conforms
        return record.flag(indicator, ok, "no violations" if ok else f"{len(report.violations)} violations")
    tests: dict[str, Callable[[str], bool]] = {
        "accessUrlAccessibility": lambda d: any(_is_public_http_url(u) for u in r.objects(d, _ACCESS_URL)),
        "downloadUrl": lambda d: record.has(d, _DOWNLOAD_URL),
        "downloadUrlAccessibility": lambda d: any(
            _is_public_http_url(u) for u in r.objects(d, _DOWNLOAD_URL)
        ),
        "format": lambda d: record.has(d, DCT_FORMAT),
        "mediaType": lambda d: record.has(d, _MEDIA_TYPE),
        "formatMediaTypeVocabulary": lambda d: (
            any(record.in_scheme(f, EU_FILE_TYPE_SCHEME) for f in r.objects(d, DCT_FORMAT))
            or any(text_of(m).startswith(IANA_MEDIA_TYPES) for m in r.objects(d, _MEDIA_TYPE))
        ),
        "nonProprietary": lambda d: bool(record.file_type_codes(d) & NON_PROPRIETARY),
        "machineReadable": lambda d: bool(record.file_type_codes(d) & MACHINE_READABLE),
        "licenceInformation": lambda d: record.has(d, _LICENSE),
        "licenceVocabulary": lambda d: any(
            record.in_scheme(lic, EU_LICENCE_SCHEME) for lic in r.objects(d, _LICENSE)
        ),
        "rights": lambda d: record.has(d, _RIGHTS),
        "fileSize": lambda d: record.has(d, _BYTE_SIZE),
        "dateOfIssue": lambda d: record.has(d, _ISSUED) or record.has(ds, _ISSUED),
        "modificationDate": lambda d: record.has(d, _MODIFIED) or record.has(ds, _MODIFIED),
    }
    return record.share(indicator, tests[key])


def health_tier_complete(graph: Graph) -> bool:
    """:func:`tier_complete` of an rdflib graph."""
    return tier_complete(CompactRecord.from_rdflib(graph))


def tier_complete(record: CompactRecord) -> bool:
    """True when the record is HealthDCAT-AP and its tier's shapes report nothing at all.

    Nothing at all means every mandatory *and* recommended health property is there: the tier
    is complete, not merely valid.
    """
    tiers = [p for p in profiles_of(record) if p in HEALTH_TIERS]
    if not tiers:
        return False
    return all(not validator_for([tier]).validate_compact(record).results for tier in tiers)


def assess(
    graph: Graph,
    dataset: URIRef,
    report: ValidationReport,
    *,
    signed: bool,
    publisher_verified: bool,
) -> QualityAssessment:
    """:func:`assess_compact` of an rdflib graph (pages and callers that still hold graphs)."""
    return assess_compact(
        CompactRecord.from_rdflib(graph),
        from_rdflib(dataset),
        report,
        signed=signed,
        publisher_verified=publisher_verified,
    )


def assess_compact(
    record: CompactRecord,
    dataset: str,
    report: ValidationReport,
    *,
    signed: bool,
    publisher_verified: bool,
) -> QualityAssessment:
    """Score ``dataset`` (a term) in ``record`` (its validation ``report`` decides DCAT-AP compliance)."""
    scored = _Record(record, dataset)
    scores = tuple(_score(scored, indicator, report) for indicator in INDICATORS)
    dimensions = {d: sum(s.earned for s in scores if s.dimension == d) for d in DIMENSIONS}
    total = sum(dimensions.values())
    trust = {
        "signed": signed,
        "publisher_verified": publisher_verified,
        "health_tier_complete": tier_complete(record),
    }
    return QualityAssessment(
        total=total,
        maximum=MAXIMUM_POINTS,
        band=band_for(total),
        dimensions=dimensions,
        indicators=scores,
        trust=trust,
    )
