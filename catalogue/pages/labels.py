"""Names for the IRIs a record uses: the SKOS labels of the controlled vocabularies we ship.

Facets and record pages show "Energy" rather than ``…/data-theme/ENER``. Labels are read once
from ``vocab/skos/*.ttl`` (offline), in the reader's language when the vocabulary has it, else
English, else any; an IRI no vocabulary names is shown by its last path segment.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Final

from rdflib import Graph, Literal, URIRef

from vocab.namespaces import SKOS

_FALLBACK_LANGUAGES: Final = ("en", "")


@cache
def _labels() -> dict[str, dict[str, str]]:
    """IRI -> language -> preferred label, over every shipped SKOS file."""
    found: dict[str, dict[str, str]] = {}
    folder = resources.files("vocab").joinpath("skos")
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".ttl"):
            continue
        graph = Graph().parse(data=entry.read_text(encoding="utf-8"), format="turtle")
        for subject, label in graph.subject_objects(SKOS.prefLabel):
            if isinstance(subject, URIRef) and isinstance(label, Literal):
                found.setdefault(str(subject), {}).setdefault(label.language or "", str(label))
    return found


def label(iri: str, language: str = "en") -> str:
    """The label of ``iri`` in ``language`` (then English, then any), or its last segment."""
    names = _labels().get(iri)
    if names:
        for choice in (language, *_FALLBACK_LANGUAGES):
            if choice in names:
                return names[choice]
        return next(iter(names.values()))
    tail = iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    return tail or iri


def terms_under(prefix: str, language: str = "en") -> list[tuple[str, str]]:
    """Every labelled IRI starting with ``prefix`` (one controlled vocabulary), sorted by label."""
    return sorted(
        ((iri, label(iri, language)) for iri in _labels() if iri.startswith(prefix)), key=lambda pair: pair[1]
    )
