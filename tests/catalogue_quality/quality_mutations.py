"""Systematically broken DCAT-AP records, for comparing the fast validator with pyshacl.

Each mutation is a small, named edit of a valid record: a mandatory property removed, a value
of the wrong datatype or node kind, a value of the wrong class, a code that is not in its
controlled vocabulary. A fixed random seed picks combinations, so the test is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD

from vocab.namespaces import DCAT, DCATAP, DCT, FOAF, HEALTHDCATAP, VCARD

EU = "http://publications.europa.eu/resource/authority/"
SEED = 20260501

# Properties a valid record must have (DCAT-AP 3 and our HealthDCAT-AP tiers).
MANDATORY = (
    RDF.type, DCT.title, DCT.description, DCAT.accessURL, FOAF.name, DCT.identifier,
    DCAT.distribution, DCT.accessRights, DCATAP.applicableLegislation, HEALTHDCATAP.healthCategory,
    HEALTHDCATAP.hdab, DCT.publisher, FOAF.mbox,
)  # fmt: skip
OUT_OF_VOCABULARY = {
    DCAT.theme: URIRef(EU + "data-theme/NOT_A_THEME"),
    DCT["format"]: URIRef(EU + "file-type/NOT_A_FORMAT"),
    DCT.language: URIRef(EU + "language/XXX"),
    DCT.accessRights: URIRef(EU + "access-right/SOMETIMES"),
    DCT.accrualPeriodicity: URIRef(EU + "frequency/NOW_AND_THEN"),
    DCT.spatial: URIRef(EU + "country/ATLANTIS"),
    HEALTHDCATAP.healthCategory: URIRef("https://w3id.org/sluis/health-category/astrology"),
    DCATAP.availability: URIRef(EU + "planned-availability/FOREVER"),
}


@dataclass(frozen=True)
class Mutation:
    name: str
    graph: Graph


def _copy(graph: Graph) -> Graph:
    copy = Graph()
    for triple in graph:
        copy.add(triple)
    return copy


def _replace_objects(graph: Graph, predicate: URIRef, make: Callable[[object], object]) -> Graph | None:
    found = list(graph.triples((None, predicate, None)))
    if not found:
        return None
    copy = _copy(graph)
    for s, p, o in found:
        copy.remove((s, p, o))
        copy.add((s, p, make(o)))  # type: ignore[arg-type]
    return copy


def single_mutations(graph: Graph) -> Iterator[Mutation]:
    """Every single-edit mutation of ``graph``."""
    for predicate in MANDATORY:
        subjects = sorted({s for s, _, _ in graph.triples((None, predicate, None))}, key=str)
        for subject in subjects[:2]:
            copy = _copy(graph)
            copy.remove((subject, predicate, None))
            yield Mutation(f"remove {predicate} of {subject}", copy)
    wrong_literals = {
        DCT.title: lambda o: Literal(42),
        DCT.description: lambda o: URIRef("https://example.org/not-a-description"),
        DCAT.keyword: lambda o: BNode(),
        DCAT.startDate: lambda o: Literal("the first of May", datatype=XSD.date),
        DCT.issued: lambda o: Literal("2020-13-45", datatype=XSD.date),
        DCAT.accessURL: lambda o: Literal(str(o)),
        FOAF.name: lambda o: URIRef("https://example.org/a-name"),
        DCT.identifier: lambda o: BNode(),
        FOAF.mbox: lambda o: Literal(str(o)),
    }
    for predicate, make in wrong_literals.items():
        copy = _replace_objects(graph, predicate, make)
        if copy is not None:
            yield Mutation(f"wrong kind of value for {predicate}", copy)
    wrong_classes = {
        DCT.publisher: VCARD.Organization,
        DCAT.distribution: DCAT.Dataset,
        DCAT.contactPoint: FOAF.Organization,
        HEALTHDCATAP.hdab: DCAT.Dataset,
    }
    for predicate, cls in wrong_classes.items():
        targets = sorted({o for _, _, o in graph.triples((None, predicate, None))}, key=str)
        if not targets:
            continue
        copy = _copy(graph)
        for target in targets:
            copy.remove((target, RDF.type, None))
            copy.add((target, RDF.type, cls))
        yield Mutation(f"values of {predicate} typed {cls}", copy)
    for predicate, bad in OUT_OF_VOCABULARY.items():
        copy = _replace_objects(graph, predicate, lambda o, bad=bad: bad)
        if copy is not None:
            yield Mutation(f"{predicate} not in its vocabulary", copy)


def mutations(graph: Graph, *, combined: int = 3, rng: random.Random | None = None) -> list[Mutation]:
    """All single mutations plus ``combined`` random pairs applied together (fixed seed)."""
    singles = list(single_mutations(graph))
    rng = rng or random.Random(SEED)
    pairs = []
    for _ in range(combined):
        first, second = rng.sample(singles, 2)
        merged = _copy(first.graph)
        # Apply the second edit as a graph difference on top of the first.
        for triple in graph - second.graph:
            merged.remove(triple)
        for triple in second.graph - graph:
            merged.add(triple)
        pairs.append(Mutation(f"{first.name} + {second.name}", merged))
    return singles + pairs
