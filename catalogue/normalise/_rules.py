"""What the repairs know: the EU tables each property uses, and which concept a code, format,
media type or licence URL means (exactly one, or none).

The rules themselves (``catalogue.normalise._compact``) work on the whole document, so a
publisher node shared by the datasets of a dump is repaired once, the same way for all, and
report each change as a :class:`Repair` naming the statement's subject, the property, the value
as sent and the value now stored. A value is only replaced when exactly one concept of the EU
table fits; anything else is left for validation to report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from catalogue.normalise._iso639 import ISO_639_1_TO_2T, ISO_639_2B_TO_2T
from vocab.authority import AuthorityTables
from vocab.namespaces import (
    DCAT,
    DCT,
    EU_AUTHORITY,
    FOAF,
    PROV,
    RDF,
    RDFS,
    SH,
    SLUIS,
    VCARD,
)

LANGUAGE_SCHEME: Final = EU_AUTHORITY + "language"
FILE_TYPE_SCHEME: Final = EU_AUTHORITY + "file-type"
LICENCE_SCHEME: Final = EU_AUTHORITY + "licence"
IANA_MEDIA_TYPES: Final = "https://www.iana.org/assignments/media-types/"
# Where EU controlled vocabularies are required (DCAT-AP 3.0.1), and which table each uses.
VOCABULARY_OF: Final[dict[URIRef, str]] = {
    DCT.accessRights: EU_AUTHORITY + "access-right",
    DCT.accrualPeriodicity: EU_AUTHORITY + "frequency",
    DCAT.theme: EU_AUTHORITY + "data-theme",
    URIRef("http://data.europa.eu/r5r/availability"): EU_AUTHORITY + "planned-availability",
    URIRef("http://www.w3.org/ns/adms#status"): EU_AUTHORITY + "distribution-status",
}
# Properties whose value is a web page or endpoint: a literal holding an absolute URL means the IRI.
URL_PROPERTIES: Final = (
    DCAT.accessURL,
    DCAT.downloadURL,
    DCAT.landingPage,
    DCAT.endpointURL,
    DCAT.endpointDescription,
    FOAF.homepage,
    FOAF.page,
    DCT.conformsTo,
    DCT.source,
    DCT.references,
    DCT.relation,
    DCT.isReferencedBy,
    VCARD.hasURL,
)
MEDIA_TYPE_PROPERTIES: Final = (DCAT.mediaType, DCAT.compressFormat, DCAT.packageFormat)
DATE_PROPERTIES: Final = (DCT.issued, DCT.modified, DCAT.startDate, DCAT.endDate, DCT.created)
# Types that make a resource a record of its own: typing a linked value so would turn a link into
# another dataset of the document.
RECORD_CLASSES: Final = frozenset(
    {DCAT.Dataset, DCAT.DatasetSeries, DCAT.Catalog, DCAT.CatalogRecord, DCAT.DataService}
)
SKOLEM_PATH: Final = "/.well-known/genid/"
_URL = re.compile(r"^(https?|ftp)://[^\s<>\"{}|\\^`]+$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
_YEAR = re.compile(r"^\d{4}$")
_YEAR_MONTH = re.compile(r"^\d{4}-\d{2}$")
_LANGUAGE_IRI_FORMS = (
    re.compile(r"^https?://id\.loc\.gov/vocabulary/iso639-[12]/([a-z]{2,3})$", re.IGNORECASE),
    re.compile(r"^https?://lexvo\.org/id/iso639-[13]/([a-z]{2,3})$", re.IGNORECASE),
    re.compile(r"^https?://publications\.europa\.eu/resource/authority/language/([a-z]{3})$", re.IGNORECASE),
)
_CC_URL = re.compile(
    r"^https?://(?:www\.)?creativecommons\.org/(licenses|publicdomain)/([a-z-]+)/(\d\.\d)(?:/[a-z]{2,3})?(?:/|/legalcode(?:\.[a-z-]+)?|/deed\.[a-z-]+)?$",
    re.IGNORECASE,
)
_SPDX_URL = re.compile(r"^https?://spdx\.org/licenses/([A-Za-z0-9.+-]+?)(?:\.html|\.json)?$")
_EU_IRI = re.compile(
    r"^https?://publications\.europa\.eu/resource/authority/([a-z-]+)/([^/]+)/?$", re.IGNORECASE
)


@dataclass(frozen=True)
class Repair:
    """One change made to a document before validation (kept with the record as provenance)."""

    rule: str
    subject: str
    property: str
    original: str
    replacement: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "subject": self.subject,
            "property": self.property,
            "original": self.original,
            "replacement": self.replacement,
            "reason": self.reason,
        }


def repairs_graph(dataset: URIRef, repairs: Sequence[Mapping[str, Any]]) -> Graph:
    """The repairs made to a record as provenance, served with the record's quality statements.

    One ``prov:Activity`` per repair, linked from the dataset by ``prov:wasInfluencedBy``, naming
    the rule, the statement's subject and property, the value as sent and the value stored.
    """
    graph = Graph(bind_namespaces="none")
    for number, repair in enumerate(repairs):
        node = URIRef(f"{dataset}#repair-{number + 1}") if "#" not in str(dataset) else BNode()
        graph.add((dataset, PROV.wasInfluencedBy, node))
        graph.add((node, RDF.type, PROV.Activity))
        graph.add((node, RDF.type, SLUIS.Repair))
        graph.add((node, SLUIS.rule, Literal(str(repair.get("rule", "")))))
        graph.add((node, SLUIS.repairedSubject, Literal(str(repair.get("subject", "")))))
        graph.add((node, SLUIS.repairedProperty, URIRef(str(repair.get("property", "")))))
        graph.add((node, SLUIS.originalValue, Literal(str(repair.get("original", "")))))
        graph.add((node, SLUIS.storedValue, Literal(str(repair.get("replacement", "")))))
        graph.add((node, RDFS.comment, Literal(str(repair.get("reason", "")), lang="en")))
    return graph


def term_text(node: Node) -> str:
    if isinstance(node, BNode):
        return f"_:{node}"
    if isinstance(node, Literal):
        suffix = f"@{node.language}" if node.language else (f"^^<{node.datatype}>" if node.datatype else "")
        return f'"{node}"{suffix}'
    return str(node)


# ---- lookups -------------------------------------------------------------------------------


def language_concept(text: str, tables: AuthorityTables) -> str | None:
    """The EU language concept for a code or tag (``it``, ``ita``, ``en-GB``, ``fre``), if any."""
    primary = re.split(r"[-_]", text.strip(), maxsplit=1)[0].lower()
    if not re.fullmatch(r"[a-z]{2,3}", primary):
        return None
    three = ISO_639_1_TO_2T.get(primary) if len(primary) == 2 else ISO_639_2B_TO_2T.get(primary, primary)
    if three is None:
        return None
    return tables.concept_for_code(LANGUAGE_SCHEME, three)


def _key(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


@cache
def _licence_keys(members: frozenset[str]) -> dict[str, str | None]:
    """Licence codes without punctuation (``CC-BY-SA-4.0`` meets ``CC_BYSA_4_0``); clashes are None."""
    keys: dict[str, str | None] = {}
    for iri in members:
        key = _key(iri.rsplit("/", 1)[-1])
        keys[key] = None if key in keys and keys[key] != iri else iri
    return keys


def licence_concept(text: str, tables: AuthorityTables) -> str | None:
    """The EU licence concept meant by a well-known licence URL, SPDX id or EU code, if exactly one."""
    members = frozenset(tables.members.get(LICENCE_SCHEME, ()))
    if not members:
        return None
    value = text.strip()
    if value in members:
        return None
    keys = _licence_keys(members)
    candidate: str | None = None
    cc = _CC_URL.match(value)
    spdx = _SPDX_URL.match(value)
    eu = _EU_IRI.match(value)
    if cc:
        kind, name, version = cc.group(1).lower(), cc.group(2).lower(), cc.group(3)
        candidate = "CC0" if (kind, name) == ("publicdomain", "zero") else f"CC{name}{version}"
    elif spdx:
        candidate = spdx.group(1)
    elif eu and eu.group(1).lower() == "licence":
        candidate = eu.group(2)
    elif re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._+-]{1,40}", value) and not value.isdigit():
        candidate = value
    if candidate is None:
        return None
    return keys.get(_key(candidate))


@cache
def _media_types() -> frozenset[str]:
    text = resources.files("vocab").joinpath("skos", "iana-media-types.txt")
    try:
        lines = text.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return frozenset()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def media_type_iri(text: str) -> str | None:
    """The IANA IRI of a registered media type written as ``type/subtype`` or as another IANA IRI."""
    value = text.strip()
    lowered = value.lower()
    for prefix in (
        "https://www.iana.org/assignments/media-types/",
        "http://www.iana.org/assignments/media-types/",
    ):
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
            break
    else:
        if "://" in lowered:
            return None
    name = lowered.split(";", 1)[0].strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", name):
        return None
    if name not in _media_types():
        return None
    iri = IANA_MEDIA_TYPES + name
    return None if iri == value else iri


# Media types whose EU file type does not share their subtype's name.
_FILE_TYPE_BY_MEDIA_TYPE: Final = {
    "application/vnd.ms-excel": "XLS",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "XLSX",
    "application/msword": "DOC",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "DOCX",
    "application/vnd.oasis.opendocument.spreadsheet": "ODS",
    "application/vnd.oasis.opendocument.text": "ODT",
    "application/ld+json": "JSON_LD",
    "application/rdf+xml": "RDF_XML",
    "text/turtle": "RDF_TURTLE",
    "application/n-triples": "RDF_N_TRIPLES",
    "application/geo+json": "GEOJSON",
    "application/vnd.google-earth.kml+xml": "KML",
    "text/tab-separated-values": "TSV",
    "text/plain": "TXT",
    "application/x-shapefile": "SHP",
    "application/gzip": "GZIP",
    "application/x-tar": "TAR",
}


def file_type_concept(text: str, tables: AuthorityTables) -> str | None:
    """The EU file-type concept for a format name (``CSV``, ``.csv``), media type or IANA IRI."""
    value = text.strip()
    lowered = value.lower()
    for prefix in (
        "https://www.iana.org/assignments/media-types/",
        "http://www.iana.org/assignments/media-types/",
    ):
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
    eu = _EU_IRI.match(value)
    if eu:
        if eu.group(1).lower() != "file-type":
            return None
        found = tables.concept_for_code(FILE_TYPE_SCHEME, eu.group(2))
        return found if found != value else None
    if "://" in lowered:
        return None
    media = lowered.split(";", 1)[0].strip()
    if "/" in media:
        mapped = _FILE_TYPE_BY_MEDIA_TYPE.get(media)
        if mapped:
            return tables.concept_for_code(FILE_TYPE_SCHEME, mapped)
        subtype = media.split("/", 1)[1]
        if re.fullmatch(r"[a-z0-9]+", subtype):
            return tables.concept_for_code(FILE_TYPE_SCHEME, subtype)
        return None
    code = value.lstrip(".")
    if not re.fullmatch(r"[A-Za-z0-9_ -]{1,30}", code):
        return None
    return tables.concept_for_code(FILE_TYPE_SCHEME, code.replace(" ", "_").replace("-", "_"))


@cache
def _range_table() -> dict[tuple[URIRef, URIRef], URIRef]:
    """(class of subject, property) -> class of value, read from our DCAT-AP range shapes."""
    shapes = Graph()
    shapes.parse(
        data=resources.files("vocab").joinpath("shapes", "dcat-ap-ranges.ttl").read_text(encoding="utf-8"),
        format="turtle",
    )
    table: dict[tuple[URIRef, URIRef], URIRef] = {}
    for shape, target in shapes.subject_objects(SH.targetClass):
        for prop in shapes.objects(shape, SH.property):
            path, cls = shapes.value(prop, SH.path), shapes.value(prop, SH["class"])
            if isinstance(target, URIRef) and isinstance(path, URIRef) and isinstance(cls, URIRef):
                table[(target, path)] = cls
    return table


def iter_rules() -> Iterator[str]:
    yield from (
        "literal-url", "language-code", "file-type", "media-type", "licence", "vocabulary-code",
        "date-datatype", "known-concept", "blank-node-agent", "range-type",
    )  # fmt: skip
