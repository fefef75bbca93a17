"""The repairs: each rule finds one kind of deviation whose meaning is unambiguous and fixes it.

Every rule works on the whole document (so a publisher node shared by the datasets of a dump is
repaired once, the same way for all) and reports each change as a :class:`Repair` naming the
statement's subject, the property, the value as sent and the value now stored. A value is only
replaced when exactly one concept of the EU table fits; anything else is left for validation to
report.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import XSD
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
from vocab.shacl import vocabularies_graph

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


class _Changes:
    """The statements to swap, collected first so no rule sees a half-changed graph."""

    def __init__(self) -> None:
        self.removed: list[tuple[Node, Node, Node]] = []
        self.added: list[tuple[Node, Node, Node]] = []
        self.repairs: list[Repair] = []

    def replace(self, triple: tuple[Node, Node, Node], new_value: Node, rule: str, reason: str) -> None:
        subject, predicate, value = triple
        self.removed.append(triple)
        self.added.append((subject, predicate, new_value))
        self.repairs.append(
            Repair(rule, term_text(subject), str(predicate), term_text(value), term_text(new_value), reason)
        )

    def add(self, triple: tuple[Node, Node, Node], rule: str, reason: str) -> None:
        subject, predicate, value = triple
        self.added.append(triple)
        self.repairs.append(Repair(rule, term_text(subject), str(predicate), "", term_text(value), reason))

    def apply(self, graph: Graph) -> None:
        for triple in self.removed:
            graph.remove(triple)
        for triple in self.added:
            graph.add(triple)


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


# ---- the rules -----------------------------------------------------------------------------


def _literal_text(node: Node) -> str | None:
    return str(node) if isinstance(node, Literal) else None


def repair_urls(graph: Graph, changes: _Changes) -> None:
    for predicate in URL_PROPERTIES:
        for triple in graph.triples((None, predicate, None)):
            text = _literal_text(triple[2])
            if text is not None and _URL.match(text.strip()):
                changes.replace(
                    triple,
                    URIRef(text.strip()),
                    "literal-url",
                    "an absolute URL written as a literal names that IRI",
                )


def repair_languages(graph: Graph, changes: _Changes, tables: AuthorityTables) -> None:
    for triple in graph.triples((None, DCT.language, None)):
        value = triple[2]
        concept: str | None = None
        if isinstance(value, Literal):
            concept = language_concept(str(value), tables)
        elif isinstance(value, URIRef) and not tables.in_scheme(str(value), LANGUAGE_SCHEME):
            for form in _LANGUAGE_IRI_FORMS:
                match = form.match(str(value))
                if match:
                    concept = language_concept(match.group(1), tables)
                    break
        if concept is not None and concept != str(value):
            changes.replace(
                triple, URIRef(concept), "language-code", "ISO 639 code mapped to the EU language table"
            )


def repair_formats(graph: Graph, changes: _Changes, tables: AuthorityTables) -> None:
    for triple in graph.triples((None, DCT["format"], None)):
        value = triple[2]
        if isinstance(value, BNode) or (
            isinstance(value, URIRef) and tables.in_scheme(str(value), FILE_TYPE_SCHEME)
        ):
            continue
        concept = file_type_concept(str(value), tables)
        if concept is not None:
            changes.replace(
                triple,
                URIRef(concept),
                "file-type",
                "format name or media type mapped to the EU file-type table",
            )
    for predicate in MEDIA_TYPE_PROPERTIES:
        for triple in graph.triples((None, predicate, None)):
            value = triple[2]
            if isinstance(value, BNode):
                continue
            iri = media_type_iri(str(value))
            if iri is not None:
                changes.replace(
                    triple, URIRef(iri), "media-type", "registered media type written as its IANA IRI"
                )


def repair_licences(graph: Graph, changes: _Changes, tables: AuthorityTables) -> None:
    for triple in graph.triples((None, DCT.license, None)):
        value = triple[2]
        if isinstance(value, BNode) or tables.in_scheme(str(value), LICENCE_SCHEME):
            continue
        concept = licence_concept(str(value), tables)
        if concept is not None:
            changes.replace(
                triple, URIRef(concept), "licence", "well-known licence mapped to the EU licence table"
            )


def repair_codes(graph: Graph, changes: _Changes, tables: AuthorityTables) -> None:
    """A code of the right EU table written as a literal, or as an IRI in another spelling."""
    for predicate, scheme in VOCABULARY_OF.items():
        for triple in graph.triples((None, predicate, None)):
            value = triple[2]
            if isinstance(value, BNode) or tables.in_scheme(str(value), scheme):
                continue
            code: str | None = None
            if isinstance(value, Literal):
                code = str(value)
            else:
                eu = _EU_IRI.match(str(value))
                if eu and EU_AUTHORITY + eu.group(1).lower() == scheme:
                    code = eu.group(2)
            if code and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", code.strip()):
                concept = tables.concept_for_code(scheme, code)
                if concept is not None:
                    changes.replace(
                        triple, URIRef(concept), "vocabulary-code", f"code of the EU table {scheme}"
                    )


def repair_known_concepts(graph: Graph, changes: _Changes, tables: AuthorityTables) -> None:
    """A concept of a shipped EU table that the document only types, with a type the table gives.

    Records often restate ``<…/file-type/CSV> a dct:MediaTypeOrExtent``. That says nothing the
    table does not, but it makes the concept a node of the record, and the table copies without
    labels (file types, frequencies, languages) then fail "a concept has a preferred label" on a
    publisher who did nothing wrong. The restated types are dropped; any other statement about the
    concept keeps them all.
    """
    background = vocabularies_graph()
    for subject in {s for s in graph.subjects(RDF.type, None) if isinstance(s, URIRef)}:
        if not tables.schemes_of.get(str(subject)):
            continue
        statements = list(graph.triples((subject, None, None)))
        if all(p == RDF.type and (subject, RDF.type, o) in background for _, p, o in statements):
            for triple in statements:
                changes.removed.append(triple)
                changes.repairs.append(
                    Repair(
                        "known-concept",
                        term_text(subject),
                        str(RDF.type),
                        term_text(triple[2]),
                        "",
                        "the EU table already gives this concept this type",
                    )
                )


def repair_dates(graph: Graph, changes: _Changes) -> None:
    for predicate in DATE_PROPERTIES:
        for triple in graph.triples((None, predicate, None)):
            value = triple[2]
            if not isinstance(value, Literal) or value.language or value.datatype not in (None, XSD.string):
                continue
            text = str(value).strip()
            datatype = (
                XSD.date if _DATE.match(text)
                else XSD.dateTime if _DATETIME.match(text) and len(text) > 16
                else XSD.gYear if _YEAR.match(text)
                else XSD.gYearMonth if _YEAR_MONTH.match(text)
                else None
            )  # fmt: skip
            if datatype is not None:
                changes.replace(
                    triple,
                    Literal(text, datatype=datatype),
                    "date-datatype",
                    f"ISO 8601 text typed {datatype}",
                )


def _skolem(base: str, kind: str, graph: Graph, node: BNode) -> URIRef:
    """A stable IRI for a blank node (RFC 7511 form): the hash of its own statements."""
    lines = sorted(
        f"{term_text(p)} {term_text(o) if not isinstance(o, BNode) else '_'}"
        for p, o in graph.predicate_objects(node)
    )
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:24]
    return URIRef(f"{base.rstrip('/')}{SKOLEM_PATH}{kind}-{digest}")


def rename_node(graph: Graph, old: Node, new: Node) -> None:
    for s, p, o in list(graph.triples((old, None, None))):
        graph.remove((s, p, o))
        graph.add((new, p, o))
    for s, p, o in list(graph.triples((None, None, old))):
        graph.remove((s, p, o))
        graph.add((s, p, new))


def repair_blank_agents(graph: Graph, repairs: list[Repair], *, owner: str | None, skolem_base: str) -> None:
    """Blank-node publishers and creators get an IRI; with a publisher token, the token's.

    An agent must be an IRI to be a facet value, to be the owner a token is checked against and
    to be recognised across records. Contact points are left as they are: DCAT-AP allows blank
    contact points, and nothing is gained by naming them.
    """
    for predicate, kind in ((DCT.publisher, "agent"), (DCT.creator, "agent")):
        for subject, node in sorted(
            {(s, o) for s, o in graph.subject_objects(predicate) if isinstance(o, BNode)}, key=str
        ):
            if (subject, predicate, node) not in graph:
                continue  # renamed already through another link
            if predicate == DCT.publisher and owner is not None:
                new: URIRef = URIRef(owner)
                reason = "blank-node publisher identified as the publisher the token was issued for"
            else:
                new = _skolem(skolem_base, kind, graph, node)
                reason = "blank node given a stable IRI (hash of its description)"
            rename_node(graph, node, new)
            repairs.append(
                Repair(
                    "blank-node-" + kind, term_text(subject), str(predicate), f"_:{node}", str(new), reason
                )
            )


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


def repair_range_types(graph: Graph, changes: _Changes, tables: AuthorityTables) -> None:
    """Untyped values get the class their property's range names (what RDFS would entail)."""
    table = _range_table()
    typed: dict[Node, set[Node]] = {}
    for s, o in graph.subject_objects(RDF.type):
        typed.setdefault(s, set()).add(o)
    for _ in range(3):  # a distribution typed in one pass makes its own values typeable in the next
        new: list[tuple[Node, Node, Node]] = []
        for (cls, predicate), value_class in table.items():
            if value_class in RECORD_CLASSES or value_class == URIRef(
                "http://www.w3.org/2000/01/rdf-schema#Resource"
            ):
                continue
            for subject, types in list(typed.items()):
                if cls not in types:
                    continue
                for value in graph.objects(subject, predicate):
                    if isinstance(value, Literal) or typed.get(value):
                        continue
                    if isinstance(value, URIRef) and tables.schemes_of.get(str(value)):
                        continue  # a concept of a shipped table: its class comes from the table
                    new.append((value, RDF.type, value_class))
        if not new:
            break
        for triple in dict.fromkeys(new):
            typed.setdefault(triple[0], set()).add(triple[2])
            graph.add(triple)
            changes.repairs.append(
                Repair(
                    "range-type",
                    term_text(triple[0]),
                    str(RDF.type),
                    "",
                    str(triple[2]),
                    "the property's range gives the class",
                )
            )


def iter_rules() -> Iterator[str]:
    yield from (
        "literal-url", "language-code", "file-type", "media-type", "licence", "vocabulary-code",
        "date-datatype", "known-concept", "blank-node-agent", "range-type",
    )  # fmt: skip
