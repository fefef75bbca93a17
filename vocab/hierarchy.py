"""Offline SKOS hierarchies (EHDS purposes, places) for the ODRL ``isA`` / ``isPartOf`` operators.

A usage policy says "purpose isA scientific-research" or "spatial isPartOf EU"; the policy
engine must answer such questions without the network and the same way every time. The
hierarchies are SKOS Turtle files shipped in ``vocab/skos/``; a :class:`Hierarchy` reads one
once into plain dictionaries (term -> broader terms) and answers membership questions with a
precomputed ancestor closure, so an answer costs a dictionary look-up.

``skos:broader`` and ``skos:broaderTransitive`` link a term to its parent, and
``skos:narrower`` / ``skos:narrowerTransitive`` are read as their inverses. ``is_a`` is
reflexive for known terms only: an unknown term is related to nothing, not even itself, so a
policy that names a term we do not know can fail closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Final

from rdflib import Graph, Literal, URIRef

from vocab.namespaces import RDF, SKOS

PURPOSES_FILE: Final = "purposes.ttl"
PLACES_FILE: Final = "places.ttl"
PURPOSE_BASE: Final = "https://w3id.org/sluis/purpose/"
PLACE_BASE: Final = "https://w3id.org/sluis/place/"

# Labels are chosen in this order of language preference; any other language comes next.
_LABEL_LANGUAGES: Final = ("en", "", "nl")


class Hierarchy:
    """A set of SKOS concepts and the broader-than relation between them (a DAG)."""

    def __init__(self, broader: Mapping[str, Iterable[str]], labels: Mapping[str, str] | None = None) -> None:
        parents: dict[str, frozenset[str]] = {term: frozenset(ups) for term, ups in broader.items()}
        for ups in list(parents.values()):
            for up in ups:
                parents.setdefault(up, frozenset())
        self._parents = parents
        self._labels = dict(labels or {})
        self._ancestors = {term: self._closure(term) for term in parents}

    @classmethod
    def from_graph(cls, graph: Graph) -> Hierarchy:
        """Build from a SKOS graph: every ``skos:Concept`` and every term in a broader link."""
        broader: dict[str, set[str]] = {}
        for concept in graph.subjects(RDF.type, SKOS.Concept):
            if isinstance(concept, URIRef):
                broader.setdefault(str(concept), set())
        for predicate in (SKOS.broader, SKOS.broaderTransitive):
            for child, parent in graph.subject_objects(predicate):
                if isinstance(child, URIRef) and isinstance(parent, URIRef):
                    broader.setdefault(str(child), set()).add(str(parent))
        for predicate in (SKOS.narrower, SKOS.narrowerTransitive):
            for parent, child in graph.subject_objects(predicate):
                if isinstance(child, URIRef) and isinstance(parent, URIRef):
                    broader.setdefault(str(child), set()).add(str(parent))
        return cls(broader, _labels(graph))

    @classmethod
    def from_turtle(cls, text: str) -> Hierarchy:
        graph = Graph()
        graph.parse(data=text, format="turtle")
        return cls.from_graph(graph)

    def _closure(self, term: str) -> frozenset[str]:
        seen = {term}
        stack = [term]
        while stack:
            for parent in self._parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return frozenset(seen)

    def knows(self, term: str) -> bool:
        """Whether the term is a concept of this hierarchy."""
        return term in self._parents

    def ancestors(self, term: str) -> frozenset[str]:
        """The term itself and every term above it; empty for an unknown term."""
        return self._ancestors.get(term, frozenset())

    def is_a(self, term: str, ancestor: str) -> bool:
        """Whether ``term`` equals ``ancestor`` or lies below it (only for known terms)."""
        return ancestor in self._ancestors.get(term, ())

    def label(self, term: str) -> str | None:
        """The preferred label (English first), or ``None`` for an unknown or unlabelled term."""
        return self._labels.get(term)

    def terms(self) -> frozenset[str]:
        return frozenset(self._parents)

    def __len__(self) -> int:
        return len(self._parents)

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and term in self._parents


def _labels(graph: Graph) -> dict[str, str]:
    """One ``skos:prefLabel`` per concept, in the order of ``_LABEL_LANGUAGES``."""
    ranked: dict[str, tuple[int, str]] = {}
    for subject, label in graph.subject_objects(SKOS.prefLabel):
        if not isinstance(subject, URIRef) or not isinstance(label, Literal):
            continue
        language = label.language or ""
        rank = _LABEL_LANGUAGES.index(language) if language in _LABEL_LANGUAGES else len(_LABEL_LANGUAGES)
        key = str(subject)
        candidate = (rank, str(label))
        if key not in ranked or candidate < ranked[key]:
            ranked[key] = candidate
    return {term: text for term, (_, text) in ranked.items()}


def skos_text(name: str) -> str:
    """The text of one of our SKOS Turtle files in ``vocab/skos/`` (read from the package)."""
    return resources.files("vocab").joinpath("skos", name).read_text(encoding="utf-8")


@cache
def purposes() -> Hierarchy:
    """Secondary-use purposes of the European Health Data Space (Regulation (EU) 2025/327)."""
    return Hierarchy.from_turtle(skos_text(PURPOSES_FILE))


@cache
def places() -> Hierarchy:
    """EU and EEA, their member states (EU country IRIs) and the Dutch provinces."""
    return Hierarchy.from_turtle(skos_text(PLACES_FILE))
