"""A stored record made ready for its page: metadata, distributions, quality, conformance, offers.

Everything is read from the record as stored (its own triples, the quality assessment made when
it was published) plus one validation run now, so the conformance issues shown are those of the
shapes in force today. Offers that the record itself carries (``odrl:hasPolicy`` on the dataset
or a distribution) are parsed by the policy engine and read out as sentences; a policy the
engine cannot parse is shown as such, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.term import Node

from catalogue.pages.bounded import BoundedRecord, bounded_record
from catalogue.pages.labels import label
from catalogue.quality import DIMENSIONS, INDICATORS
from catalogue.store import LOCAL_SOURCE, RecordVersion
from policies import PolicyError, parse_policy
from policies.sentences import Sentence, policy_sentences
from vocab.namespaces import DCAT, DCT, FOAF, RDF
from vocab.shacl import ValidationReport

ODRL: Final = Namespace("http://www.w3.org/ns/odrl/2/")
# What each MQA dimension means, for the reader of a quality breakdown.
DIMENSION_MEANING: Final = {
    "findability": "Can people find it: keywords, themes, place and time covered.",
    "accessibility": "Can people reach the data: working access and download addresses.",
    "interoperability": "Can tools read it: formats and media types from shared vocabularies, "
    "open and machine-readable formats, conformance to DCAT-AP.",
    "reusability": "May people reuse it: licence, access rights, contact point and publisher.",
    "contextuality": "Is it described in context: rights, file size, dates of issue and change.",
}
# A record's policies are small; a subgraph bigger than this is not a policy we read out.
MAX_POLICY_TRIPLES: Final = 5000
MAX_CONFORMANCE_ISSUES: Final = 50


@dataclass(frozen=True)
class Distribution:
    title: str
    format: str | None
    license: str | None
    access_url: str | None
    download_url: str | None
    media_type: str | None


@dataclass(frozen=True)
class Offer:
    id: str
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True)
class RecordView:
    record_id: str
    dataset: str
    title: str
    description: str
    publisher: str | None
    publisher_name: str | None
    keywords: list[str]
    themes: list[tuple[str, str]]
    spatial: list[tuple[str, str]]
    access_rights: list[tuple[str, str]]
    temporal: str | None
    distributions: list[Distribution]
    dsp_endpoints: list[str]
    quality: dict[str, Any]
    dimensions: list[dict[str, Any]]
    raise_quality: list[dict[str, Any]]
    trust: dict[str, bool]
    issues: list[dict[str, str]]
    offers: list[Offer]
    version: int
    modified: str
    source: str
    owner: str
    signed: bool
    local: bool
    languages: list[str] = field(default_factory=list)
    more_keywords: int = 0
    more_distributions: int = 0
    partial: bool = False


def _text(graph: Graph, subject: Node, predicate: URIRef, language: str) -> str:
    values = [value for value in graph.objects(subject, predicate) if isinstance(value, Literal)]
    for choice in (language, "en", None):
        for value in values:
            if value.language == choice:
                return str(value)
    return str(values[0]) if values else ""


def _iris(graph: Graph, subject: Node, predicate: URIRef) -> list[str]:
    return sorted(str(value) for value in graph.objects(subject, predicate) if isinstance(value, URIRef))


def _named(graph: Graph, subject: Node, predicate: URIRef, language: str) -> list[tuple[str, str]]:
    return [(iri, label(iri, language)) for iri in _iris(graph, subject, predicate)]


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _subgraph(graph: Graph, root: Node) -> Graph:
    """The policy node and everything reachable from it (blank or named), within the bound."""
    found = Graph()
    stack = [root]
    seen: set[Node] = set()
    while stack and len(found) < MAX_POLICY_TRIPLES:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for predicate, value in graph.predicate_objects(node):
            found.add((node, predicate, value))
            if isinstance(value, BNode | URIRef) and predicate != RDF.type:
                stack.append(value)
    return found


def _offers(bounded: BoundedRecord, subjects: list[Node]) -> list[Offer]:
    graph = bounded.graph
    offers: list[Offer] = []
    for subject in subjects:
        for policy in graph.objects(subject, ODRL.hasPolicy):
            name = str(policy)
            try:
                subgraph = _subgraph(graph, policy)
                if isinstance(policy, BNode):
                    raise PolicyError("blank-policy", "the policy has no IRI, so it cannot be named")
                if bounded.cut_within(set(subgraph.subjects()) | {policy}):
                    # Read out in part, a policy could seem to allow what a left-out rule forbids.
                    raise PolicyError("policy-too-large", "it holds more rules than a page reads out")
                parsed = parse_policy(subgraph.serialize(format="turtle"), "text/turtle")
                offers.append(Offer(name, policy_sentences(parsed)))
            except (PolicyError, ValueError) as error:
                offers.append(
                    Offer(
                        name,
                        (
                            Sentence(
                                "permission",
                                name,
                                f"This policy could not be read: {error}. Requests under it are refused.",
                                (name,),
                            ),
                        ),
                    )
                )
    return offers


def _dimensions(quality: dict[str, Any]) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = []
    dimensions = quality.get("dimensions") if isinstance(quality.get("dimensions"), dict) else {}
    for name in DIMENSIONS:
        value = dimensions.get(name, {}) if isinstance(dimensions, dict) else {}
        earned = value.get("earned", 0) if isinstance(value, dict) else 0
        possible = value.get("possible", 0) if isinstance(value, dict) else 0
        shown.append(
            {
                "name": name,
                "earned": earned,
                "possible": possible,
                "meaning": DIMENSION_MEANING[name],
                "percent": round(100 * earned / possible) if possible else 0,
            }
        )
    return shown


def raise_quality(quality: dict[str, Any]) -> list[dict[str, Any]]:
    """The indicators that did not earn all their points, largest gain first, with what to add."""
    checks = {indicator.key: indicator for indicator in INDICATORS}
    missing: list[dict[str, Any]] = []
    for item in quality.get("indicators", []) if isinstance(quality.get("indicators"), list) else []:
        if not isinstance(item, dict):
            continue
        key = item.get("indicator")
        indicator = checks.get(str(key))
        earned, possible = item.get("earned", 0), item.get("possible", 0)
        if (
            indicator is None
            or not isinstance(earned, int)
            or not isinstance(possible, int)
            or earned >= possible
        ):
            continue
        missing.append(
            {
                "label": indicator.label,
                "gain": possible - earned,
                "checks": indicator.checks,
                "dimension": indicator.dimension,
            }
        )
    return sorted(missing, key=lambda item: -item["gain"])


def title_in(version: RecordVersion, language: str) -> tuple[str, str | None]:
    """The record's title in ``language`` when it has one (else English, else any) and its language.

    A search page asks this of every hit, so only the dataset's titles are picked out of the
    stored text (Oxigraph's parser; no rdflib graph of a record that may be 50,000 statements).
    """
    dataset, title = ox.NamedNode(version.dataset), ox.NamedNode(str(DCT.title))
    values = [
        (quad.object.value, quad.object.language or None)
        for quad in ox.parse(version.content.encode("utf-8"), ox.RdfFormat.N_TRIPLES)
        if quad.subject == dataset and quad.predicate == title and isinstance(quad.object, ox.Literal)
    ]
    for choice in (language.lower(), "en", None):
        for value, tag in values:
            if tag == choice:
                return value, tag
    return values[0] if values else ("", None)


def view(
    version: RecordVersion,
    report: ValidationReport | None,
    language: str = "en",
    bounded: BoundedRecord | None = None,
) -> RecordView:
    """The page's view of ``version``, from a bounded part of it (see :mod:`.bounded`)."""
    bounded = bounded or bounded_record(version, language)
    graph = bounded.graph
    dataset = URIRef(version.dataset)
    distributions: list[Distribution] = []
    subjects: list[Node] = [dataset]
    dsp: list[str] = []
    for node in sorted(graph.objects(dataset, DCAT.distribution), key=str):
        subjects.append(node)
        formats = _iris(graph, node, DCT["format"])
        licences = _iris(graph, node, DCT.license)
        distributions.append(
            Distribution(
                _text(graph, node, DCT.title, language) or "Distribution",
                label(formats[0], language) if formats else None,
                label(licences[0], language) if licences else None,
                _first(_iris(graph, node, DCAT.accessURL)),
                _first(_iris(graph, node, DCAT.downloadURL)),
                _first(_iris(graph, node, DCAT.mediaType)),
            )
        )
        for service in graph.objects(node, DCAT.accessService):
            dsp.extend(
                url for url in _iris(graph, service, DCAT.endpointURL) if url.rstrip("/").endswith("/dsp")
            )
    publisher = _first(_iris(graph, dataset, DCT.publisher))
    publisher_name = None
    if publisher:
        publisher_name = _text(graph, URIRef(publisher), FOAF.name, language) or None
    temporal = None
    for period in graph.objects(dataset, DCT.temporal):
        start = _text(graph, period, DCAT.startDate, language)
        end = _text(graph, period, DCAT.endDate, language)
        if start or end:
            temporal = f"{start or '…'} to {end or '…'}"
    quality_json = (
        version.quality.get("quality", version.quality) if isinstance(version.quality, dict) else {}
    )
    quality = quality_json if isinstance(quality_json, dict) else {}
    trust = quality.get("trust") if isinstance(quality.get("trust"), dict) else {}
    issues = []
    if report is not None:
        for result in report.results[:MAX_CONFORMANCE_ISSUES]:
            issues.append(
                {
                    "severity": result.severity,
                    "path": label(result.path) if result.path else "",
                    "message": result.message,
                    "focus": result.focus_node,
                }
            )
    languages = sorted(
        {
            value.language
            for value in graph.objects(dataset, DCT.title)
            if isinstance(value, Literal) and value.language
        }
    )
    return RecordView(
        record_id=version.record_id,
        dataset=version.dataset,
        title=_text(graph, dataset, DCT.title, language) or version.dataset,
        description=_text(graph, dataset, DCT.description, language),
        publisher=publisher,
        publisher_name=publisher_name,
        keywords=sorted(
            {
                str(k)
                for k in graph.objects(dataset, DCAT.keyword)
                if isinstance(k, Literal) and k.language in (language, "en", None)
            }
        ),
        themes=_named(graph, dataset, DCAT.theme, language),
        spatial=_named(graph, dataset, DCT.spatial, language),
        access_rights=_named(graph, dataset, DCT.accessRights, language),
        temporal=temporal,
        distributions=distributions,
        dsp_endpoints=sorted(set(dsp)),
        quality=quality,
        dimensions=_dimensions(quality),
        raise_quality=raise_quality(quality),
        trust={str(k): bool(v) for k, v in (trust or {}).items()},
        issues=issues,
        offers=_offers(bounded, subjects),
        version=version.version,
        modified=version.modified.isoformat(timespec="seconds"),
        source=version.source,
        owner=version.owner,
        signed=version.proof is not None,
        local=version.source == LOCAL_SOURCE,
        languages=languages,
        more_keywords=bounded.left_out(dataset, DCAT.keyword),
        more_distributions=bounded.left_out(dataset, DCAT.distribution),
        partial=bounded.truncated or bool(bounded.more),
    )
