"""SHACL validation of DCAT-AP 3 / HVD / HealthDCAT-AP records with the shapes Sluis writes.

The shapes (``vocab/shapes/*.ttl``) and the SKOS subsets of the EU vocabularies they check
(``vocab/skos/*.ttl``) ship with the package, so validation never needs the network. This
module is the *reference* path: it runs pySHACL. Faster validators must give the same results
on the same shapes, so the rules that decide a result are spelled out here:

* **Data = record + vocabularies.** The record graph is validated together with
  :func:`vocabularies_graph` (SKOS concepts with their ``skos:inScheme`` and types, the
  subclass links records rely on, the legal acts records cite). pySHACL's ``ont_graph`` only
  copies class and property axioms, not concept data, so we take the union ourselves.
* **No inference.** ``sh:class`` follows ``rdfs:subClassOf`` in the data (SHACL's own rule), and
  the few subclass links DCAT-AP needs are stated in ``vocab/skos/background.ttl``. RDFS
  entailment would add ``rdf:type rdfs:Resource`` to everything, cost time, and make results
  depend on the entailment regime; we do not need it.
* **Only the record's nodes are reported.** A result whose focus node is not a subject of the
  record graph concerns a vocabulary entry (e.g. a country with no bounding box) and is
  dropped: a publisher cannot fix our vocabularies.
* **Top-level results only**, with duplicates (same focus node, path, constraint component,
  severity and value from two profiles' shapes) reported once, sorted deterministically.
* **Conformance** means no result of severity Violation; warnings and infos never fail a record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Final

import pyoxigraph as ox
import pyshacl
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from vocab.errors import VocabError
from vocab.namespaces import (
    DCAT,
    DCATAP,
    DCT,
    EU_ACCESS_RIGHT,
    HEALTHDCATAP,
    RDF,
    RDFS,
    SH,
)

logger = logging.getLogger(__name__)

HVD_LEGISLATION: Final = URIRef("http://data.europa.eu/eli/reg_impl/2023/138/oj")
"""The ELI of Implementing Regulation (EU) 2023/138; naming it makes a record a high-value dataset."""


class Profile(StrEnum):
    """A set of shapes a record can be validated against."""

    DCAT_AP = "dcat-ap-3"
    HVD = "dcat-ap-hvd"
    HEALTH_PUBLIC = "healthdcat-ap-public"
    HEALTH_RESTRICTED = "healthdcat-ap-restricted"
    HEALTH_NON_PUBLIC = "healthdcat-ap-non-public"


PROFILE_SHAPE_FILES: Final[dict[Profile, tuple[str, ...]]] = {
    Profile.DCAT_AP: (
        "dcat-ap-core.ttl",
        "dcat-ap-ranges.ttl",
        "dcat-ap-vocabularies.ttl",
        "dcat-ap-recommended.ttl",
    ),
    Profile.HVD: ("dcat-ap-hvd.ttl",),
    Profile.HEALTH_PUBLIC: ("healthdcat-ap.ttl", "healthdcat-ap-public.ttl"),
    Profile.HEALTH_RESTRICTED: ("healthdcat-ap.ttl", "healthdcat-ap-restricted.ttl"),
    Profile.HEALTH_NON_PUBLIC: ("healthdcat-ap.ttl", "healthdcat-ap-non-public.ttl"),
}
"""Which of our shape files make up each profile (all in ``vocab/shapes/``)."""

VOCABULARY_FILES: Final[tuple[str, ...]] = (
    "background.ttl",
    "eu-access-right.ttl",
    "eu-adms.ttl",
    "eu-continent.ttl",
    "eu-country.ttl",
    "eu-data-theme.ttl",
    "eu-dataset-type.ttl",
    "eu-distribution-status.ttl",
    "eu-file-type.ttl",
    "eu-frequency.ttl",
    "eu-hvd-category.ttl",
    "eu-language.ttl",
    "eu-licence.ttl",
    "eu-place.ttl",
    "eu-planned-availability.ttl",
    "hdeu-health-categories.ttl",
    "hdeu-publisher-types.ttl",
)
"""The SKOS files (in ``vocab/skos/``) loaded as background data for validation.

The purpose and place hierarchies are not among them: no shape checks them; they serve
``vocab.hierarchy`` for usage policies.
"""

# Access rights decide the HealthDCAT-AP tier; the order is from the least to the most strict.
_HEALTH_TIER_BY_ACCESS_RIGHT: Final[dict[URIRef, Profile]] = {
    EU_ACCESS_RIGHT.PUBLIC: Profile.HEALTH_PUBLIC,
    EU_ACCESS_RIGHT.RESTRICTED: Profile.HEALTH_RESTRICTED,
    EU_ACCESS_RIGHT.NON_PUBLIC: Profile.HEALTH_NON_PUBLIC,
}
_HEALTH_TIERS_BY_STRICTNESS: Final = (
    Profile.HEALTH_PUBLIC,
    Profile.HEALTH_RESTRICTED,
    Profile.HEALTH_NON_PUBLIC,
)
_SEVERITY_ORDER: Final = {"Violation": 0, "Warning": 1, "Info": 2}


@dataclass(frozen=True)
class ValidationResult:
    """One SHACL result, with terms as strings (IRIs as is, blank nodes as ``_:id``)."""

    focus_node: str
    path: str | None
    constraint: str
    severity: str
    message: str
    value: str | None
    source_shape: str | None

    def sort_key(self) -> tuple[int, str, str, str, str, str]:
        return (
            _SEVERITY_ORDER.get(self.severity, len(_SEVERITY_ORDER)),
            self.focus_node,
            self.path or "",
            self.constraint,
            self.value or "",
            self.source_shape or "",
        )


@dataclass
class ValidationReport:
    """The outcome of validating one record: conforms when no result is a violation."""

    conforms: bool
    results: list[ValidationResult] = field(default_factory=list)

    @property
    def violations(self) -> list[ValidationResult]:
        return [result for result in self.results if result.severity == "Violation"]

    @property
    def warnings(self) -> list[ValidationResult]:
        return [result for result in self.results if result.severity == "Warning"]

    def to_json(self) -> dict[str, Any]:
        return {
            "conforms": self.conforms,
            "violations": len(self.violations),
            "warnings": len(self.warnings),
            "results": [asdict(result) for result in self.results],
        }


def _read_turtle(folder: str, name: str, into: Graph) -> None:
    text = resources.files("vocab").joinpath(folder, name).read_text(encoding="utf-8")
    into.parse(data=text, format="turtle")


@cache
def _shapes_for(profiles: tuple[Profile, ...]) -> Graph:
    graph = Graph()
    loaded: set[str] = set()
    for profile in profiles:
        for name in PROFILE_SHAPE_FILES[profile]:
            if name not in loaded:
                loaded.add(name)
                _read_turtle("shapes", name, graph)
    return graph


def _normalise(profiles: Iterable[Profile | str]) -> tuple[Profile, ...]:
    try:
        chosen = {Profile(profile) for profile in profiles}
    except ValueError as error:
        raise VocabError(f"unknown validation profile: {error}", code="unknown-profile") from error
    if not chosen:
        raise VocabError("at least one validation profile is needed", code="unknown-profile")
    return tuple(sorted(chosen))


def shapes_graph(profiles: Iterable[Profile]) -> Graph:
    """The union of our shape files for these profiles (cached: do not modify the graph)."""
    return _shapes_for(_normalise(profiles))


@cache
def vocabularies_graph() -> Graph:
    """The EU tables and background facts validation reads (cached: do not modify it).

    Validation needs a concept's types, its schemes and an English label (shapes ask concepts
    for a ``skos:prefLabel``), not its labels in every EU language, its codes or where the table
    came from: those are left out here (``vocab.authority`` serves them), which halves the
    background every validator indexes.
    """
    graph = Graph()
    for name in VOCABULARY_FILES:
        if not name.startswith(("eu-", "hdeu-")):
            _read_turtle("skos", name, graph)
            continue
        # The generated tables are plain: Oxigraph parses them several times faster than rdflib.
        data = resources.files("vocab").joinpath("skos", name).read_bytes()
        for triple in ox.parse(data, format=ox.RdfFormat.TURTLE):
            predicate, value = triple.predicate.value, triple.object
            english_label = (
                predicate == str(SKOS_PREF_LABEL)
                and isinstance(value, ox.Literal)
                and value.language in (None, "en")
            )
            if predicate not in _BACKGROUND_PREDICATES and not english_label:
                continue
            subject = triple.subject
            if not isinstance(subject, ox.NamedNode):
                continue
            if isinstance(value, ox.NamedNode):
                obj: Node = URIRef(value.value)
            elif isinstance(value, ox.Literal):
                obj = Literal(value.value, lang=value.language) if value.language else Literal(value.value)
            else:
                continue
            graph.add((URIRef(subject.value), URIRef(predicate), obj))
    return graph


SKOS_PREF_LABEL: Final = URIRef("http://www.w3.org/2004/02/skos/core#prefLabel")
_BACKGROUND_PREDICATES: Final = frozenset(
    str(p)
    for p in (RDF.type, URIRef("http://www.w3.org/2004/02/skos/core#inScheme"), RDFS.subClassOf, DCT.title)
)


# Vocabulary facts are read this many links away from the record's own nodes: a value's type
# and scheme (one link) and the scheme's own type (two links). No shape of ours looks further.
BACKGROUND_DEPTH: Final = 2


@cache
def _class_axioms() -> Graph:
    graph = Graph()
    for triple in vocabularies_graph().triples((None, RDFS.subClassOf, None)):
        graph.add(triple)
    return graph


def background_for(data: Graph) -> Graph:
    """The part of :func:`vocabularies_graph` a record's validation can depend on.

    Every subclass axiom, plus the vocabulary facts about the IRIs the record mentions, and
    about the IRIs those facts mention (``BACKGROUND_DEPTH``). Results about the record's own
    nodes are the same as with the whole vocabulary graph, but the entries the record never
    mentions are not validated for nothing: this keeps one validation near the cost of the
    record alone instead of that of the ~1,300-triple vocabulary.
    """
    vocabularies = vocabularies_graph()
    background = Graph()
    background += _class_axioms()
    frontier = {node for triple in data for node in triple if isinstance(node, URIRef)}
    visited: set[URIRef] = set()
    for _ in range(BACKGROUND_DEPTH):
        following: set[URIRef] = set()
        for node in frontier - visited:
            visited.add(node)
            for predicate, value in vocabularies.predicate_objects(node):
                background.add((node, predicate, value))
                if isinstance(value, URIRef):
                    following.add(value)
        frontier = following
    return background


def _is_health_record(data: Graph) -> bool:
    namespace = str(HEALTHDCATAP)
    if any(str(predicate).startswith(namespace) for predicate in data.predicates(unique=True)):
        return True
    return any(str(cls).startswith(namespace) for cls in data.objects(None, RDF.type, unique=True))


def _health_tier(data: Graph) -> Profile:
    """The strictest tier among the health datasets' access rights; none or unknown = non-public.

    A record without access rights gets the strictest tier, so a missing statement can never
    lower the bar (the missing access rights are then reported as a violation).
    """
    namespace = str(HEALTHDCATAP)
    datasets = set(data.subjects(RDF.type, DCAT.Dataset))
    health_datasets = {
        s for s in datasets if any(str(p).startswith(namespace) for p in data.predicates(s, None))
    }
    chosen = health_datasets or datasets
    tiers = []
    for dataset in chosen:
        rights = list(data.objects(dataset, DCT.accessRights))
        if not rights:
            tiers.append(Profile.HEALTH_NON_PUBLIC)
        for right in rights:
            known = _HEALTH_TIER_BY_ACCESS_RIGHT.get(right) if isinstance(right, URIRef) else None
            tiers.append(known or Profile.HEALTH_NON_PUBLIC)
    if not tiers:
        return Profile.HEALTH_NON_PUBLIC
    return max(tiers, key=_HEALTH_TIERS_BY_STRICTNESS.index)


def profiles_for(data: Graph) -> list[Profile]:
    """The profiles a record must satisfy: DCAT-AP always, HVD and a health tier when they apply."""
    chosen = [Profile.DCAT_AP]
    if (None, DCATAP.applicableLegislation, HVD_LEGISLATION) in data:
        chosen.append(Profile.HVD)
    if _is_health_record(data):
        chosen.append(_health_tier(data))
    return chosen


def _term(node: Node | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, BNode):
        return f"_:{node}"
    return str(node)


def _path_text(report: Graph, path: Node | None) -> str | None:
    """An IRI path as the IRI; an inverse path as ``^IRI``; other complex paths as ``_:id``."""
    if path is None or isinstance(path, URIRef):
        return _term(path)
    inverse = report.value(path, SH.inversePath)
    if isinstance(inverse, URIRef):
        return f"^{inverse}"
    return _term(path)


def _shape_name(shapes: Graph | None, shape: Node | None) -> str | None:
    """A named shape as its IRI; a blank property shape as the IRI of the node shape holding it."""
    if isinstance(shape, URIRef):
        return str(shape)
    if shapes is None or shape is None:
        return None
    holder = shapes.value(None, SH.property, shape)
    return str(holder) if isinstance(holder, URIRef) else None


def results_from_report(report: Graph, data: Graph, shapes: Graph | None = None) -> list[ValidationResult]:
    """The top-level results of a pySHACL report graph about nodes of ``data``, deduplicated and sorted.

    Public so that tests (and faster validators) can read reports of other shape sets with
    exactly the same rules. ``shapes`` (the shapes graph validated against) lets a result of an
    anonymous property shape name the node shape it belongs to.
    """
    subjects = set(data.subjects(unique=True))
    candidates: list[ValidationResult] = []
    for report_node in report.subjects(RDF.type, SH.ValidationReport):
        for result in report.objects(report_node, SH.result):
            focus = report.value(result, SH.focusNode)
            if focus not in subjects:
                continue
            severity_node = report.value(result, SH.resultSeverity)
            severity = str(severity_node).rpartition("#")[2] if severity_node is not None else "Violation"
            messages = sorted(
                str(m) for m in report.objects(result, SH.resultMessage) if isinstance(m, Literal)
            )
            candidates.append(
                ValidationResult(
                    focus_node=_term(focus) or "",
                    path=_path_text(report, report.value(result, SH.resultPath)),
                    constraint=str(report.value(result, SH.sourceConstraintComponent)),
                    severity=severity,
                    message=messages[0] if messages else "",
                    value=_term(report.value(result, SH.value)),
                    source_shape=_shape_name(shapes, report.value(result, SH.sourceShape)),
                )
            )
    # Sorted before deduplication, so the copy kept (its message and shape) never depends on
    # the order in which the report graph happens to list results.
    candidates.sort(key=lambda r: (r.sort_key(), r.message))
    seen: set[tuple[str, str | None, str, str, str | None]] = set()
    results: list[ValidationResult] = []
    for item in candidates:
        key = (item.focus_node, item.path, item.constraint, item.severity, item.value)
        if key not in seen:
            seen.add(key)
            results.append(item)
    return results


def run_pyshacl(data: Graph, shapes: Graph, background: Graph | None) -> list[ValidationResult]:
    """Validate ``data`` (plus ``background``) against ``shapes`` with pySHACL, by our rules."""
    union = Graph()
    union += data
    if background is not None:
        union += background
    try:
        _conforms, report, _text = pyshacl.validate(
            union,
            shacl_graph=shapes,
            inference="none",
            advanced=False,
            allow_warnings=True,
            inplace=True,
        )
    except Exception as error:  # pySHACL raises many types for malformed shapes or data
        raise VocabError(f"SHACL validation could not run: {error}", code="shacl-error") from error
    if not isinstance(report, Graph):
        raise VocabError("SHACL validation gave no report graph", code="shacl-error")
    return results_from_report(report, data, shapes)


def validate(data: Graph, profiles: Iterable[Profile] | None = None) -> ValidationReport:
    """Validate a record against our shapes for ``profiles`` (default: :func:`profiles_for`)."""
    chosen: Sequence[Profile] = profiles_for(data) if profiles is None else _normalise(profiles)
    results = run_pyshacl(data, shapes_graph(chosen), background_for(data))
    conforms = not any(result.severity == "Violation" for result in results)
    logger.debug(
        "validated record",
        extra={"profiles": [str(p) for p in chosen], "results": len(results), "conforms": conforms},
    )
    return ValidationReport(conforms=conforms, results=results)


_SHAPES_BASE: Final = "https://w3id.org/sluis/shapes/"


def profile_of_shape(shape: str | None) -> str:
    """The profile family a result's source shape belongs to (for conformance by profile).

    Our shape IRIs live under ``https://w3id.org/sluis/shapes/<file>#``: HealthDCAT-AP shapes
    (every tier and the shared health vocabulary shapes) count as ``healthdcat-ap``, the HVD
    file as ``dcat-ap-hvd``, everything else as ``dcat-ap-3``.
    """
    name = (shape or "").removeprefix(_SHAPES_BASE)
    if name.startswith("healthdcat-ap"):
        return "healthdcat-ap"
    if name.startswith("dcat-ap-hvd"):
        return Profile.HVD.value
    return Profile.DCAT_AP.value


__all__ = [
    "BACKGROUND_DEPTH",
    "HVD_LEGISLATION",
    "PROFILE_SHAPE_FILES",
    "VOCABULARY_FILES",
    "Profile",
    "ValidationReport",
    "ValidationResult",
    "background_for",
    "profile_of_shape",
    "profiles_for",
    "results_from_report",
    "run_pyshacl",
    "shapes_graph",
    "validate",
    "vocabularies_graph",
]
