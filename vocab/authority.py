"""The EU authority tables Sluis ships, as lookups: membership, labels, codes.

Validation reads the tables as RDF (``vocab.shacl.vocabularies_graph``); normalisation, facet
labels and violation messages need plain questions answered fast and without rdflib pattern
queries: *is this IRI a concept of that scheme*, *what is its label in Dutch*, *which concept has
the code "CSV"*, *name a few members of this scheme*. :func:`tables` reads every SKOS file in
``vocab/skos/`` once (Oxigraph's parser) and keeps these lookups.

Labels: a concept's ``skos:prefLabel`` per language. The generated tables leave out a label that
is the same as the English one (place names, mostly), so :meth:`AuthorityTables.label` falls
back to English, then to any label, then to the concept's code.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Final

import pyoxigraph as ox

SKOS_NS: Final = "http://www.w3.org/2004/02/skos/core#"
_IN_SCHEME: Final = SKOS_NS + "inScheme"
_PREF_LABEL: Final = SKOS_NS + "prefLabel"
_NOTATION: Final = SKOS_NS + "notation"
_EXACT_MATCH: Final = SKOS_NS + "exactMatch"
_DC_IDENTIFIER: Final = "http://purl.org/dc/elements/1.1/identifier"
_RDF_TYPE: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_CONCEPT_SCHEME: Final = SKOS_NS + "ConceptScheme"
SKOS_FOLDER: Final = "skos"
# How many members a violation message names (the rest are one request away: the scheme IRI).
EXAMPLES_IN_MESSAGES: Final = 5


@dataclass
class AuthorityTables:
    """Every concept scheme shipped in ``vocab/skos``, indexed for lookups (read-only once built)."""

    members: dict[str, set[str]] = field(default_factory=dict)
    """scheme IRI -> its concepts' IRIs."""
    schemes_of: dict[str, set[str]] = field(default_factory=dict)
    """concept IRI -> the schemes it is in."""
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    """concept or scheme IRI -> language tag -> prefLabel."""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    """scheme IRI -> upper-cased code (last IRI segment, notation, identifier) -> concept IRI."""
    matches: dict[str, str] = field(default_factory=dict)
    """an IRI a concept declares as ``skos:exactMatch`` -> the concept."""

    def in_scheme(self, concept: str, scheme: str) -> bool:
        return scheme in self.schemes_of.get(concept, ())

    def concept_for_code(self, scheme: str, code: str) -> str | None:
        """The concept of ``scheme`` whose code is ``code`` (case-insensitive), if exactly known."""
        return self.codes.get(scheme, {}).get(code.strip().upper())

    def label(self, iri: str, languages: Sequence[str] = ()) -> str | None:
        """The prefLabel in the first of ``languages`` that has one, else English, else any."""
        by_language = self.labels.get(iri)
        if not by_language:
            return None
        for language in (*languages, "en"):
            primary = language.split("-")[0].lower()
            found = by_language.get(primary)
            if found:
                return found
        return by_language.get("") or next(iter(sorted(by_language.items())))[1]

    def display(self, iri: str, languages: Sequence[str] = ()) -> str:
        """A label for people: the prefLabel, or the concept's code made readable."""
        found = self.label(iri, languages)
        if found:
            return found
        code = iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
        return code.replace("_", " ") if code else iri

    def examples(self, scheme: str, near: str | None = None, count: int = EXAMPLES_IN_MESSAGES) -> list[str]:
        """A few members of ``scheme`` to show a provider: those sharing a prefix with ``near`` first."""
        members = sorted(self.members.get(scheme, ()))
        if not members:
            return []
        if near:
            code = near.rstrip("/").rsplit("/", 1)[-1].upper()
            for width in range(min(len(code), 4), 0, -1):
                close = [m for m in members if m.rsplit("/", 1)[-1].upper().startswith(code[:width])]
                if close:
                    rest = [m for m in members if m not in close]
                    return (close + rest)[:count]
        return members[:count]

    def scheme_label(self, scheme: str) -> str:
        return self.label(scheme) or scheme


def _code_of(iri: str) -> str:
    return iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1].upper()


def _read(files: Iterable[tuple[str, bytes]]) -> AuthorityTables:
    tables = AuthorityTables()
    pending_codes: list[tuple[str, str]] = []
    for name, data in files:
        for quad in ox.parse(data, format=ox.RdfFormat.TURTLE, base_iri=f"urn:sluis:vocab:{name}"):
            subject, predicate, value = quad.subject, quad.predicate.value, quad.object
            if not isinstance(subject, ox.NamedNode):
                continue
            iri = subject.value
            if predicate == _IN_SCHEME and isinstance(value, ox.NamedNode):
                tables.members.setdefault(value.value, set()).add(iri)
                tables.schemes_of.setdefault(iri, set()).add(value.value)
            elif (
                predicate == _RDF_TYPE and isinstance(value, ox.NamedNode) and value.value == _CONCEPT_SCHEME
            ):
                tables.members.setdefault(iri, set())
            elif predicate == _PREF_LABEL and isinstance(value, ox.Literal):
                language = (value.language or "").lower()
                tables.labels.setdefault(iri, {}).setdefault(language, value.value)
            elif predicate in (_NOTATION, _DC_IDENTIFIER) and isinstance(value, ox.Literal):
                pending_codes.append((iri, value.value))
            elif predicate == _EXACT_MATCH and isinstance(value, ox.NamedNode):
                tables.matches.setdefault(value.value, iri)
    for iri, schemes in tables.schemes_of.items():
        for scheme in schemes:
            tables.codes.setdefault(scheme, {}).setdefault(_code_of(iri), iri)
    for iri, code in pending_codes:
        for scheme in tables.schemes_of.get(iri, ()):
            tables.codes.setdefault(scheme, {}).setdefault(code.strip().upper(), iri)
    return tables


_lock = threading.Lock()
_tables: AuthorityTables | None = None


def tables() -> AuthorityTables:
    """The shipped tables (read once, on first use; about a second for the full EU tables)."""
    global _tables
    if _tables is None:
        with _lock:
            if _tables is None:
                folder = resources.files("vocab").joinpath(SKOS_FOLDER)
                files = sorted(
                    (entry.name, entry.read_bytes())
                    for entry in folder.iterdir()
                    if entry.name.endswith(".ttl")
                )
                _tables = _read(files)
    return _tables


__all__ = ["EXAMPLES_IN_MESSAGES", "AuthorityTables", "tables"]
