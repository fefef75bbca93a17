"""The repairs of :mod:`catalogue.normalise._rules`, run on a document's compact form.

The rules and their lookups (which EU concept a code, format or licence URL means) are the ones
``docs/normalisation.md`` lists; this module applies them to N-Triples term strings instead of an
rdflib graph, which is what made normalisation cost ~6 ms a record (each rule asked rdflib for
its predicate's statements through Python generators). A compact record is immutable, so the
result is a new record plus the repairs; :func:`catalogue.normalise.normalise` keeps the old
in-place contract for rdflib graphs by applying the difference.

The statements after normalisation are the same set the in-place version produces, and the
repairs the same list up to order within a rule (the rdflib version followed its store's index
order; this one follows the document's).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Final

from rdflib import Literal, URIRef

from catalogue.ingest.compact import RDF_TYPE, CompactRecord, Triple
from catalogue.ingest.terms import (
    from_rdflib,
    iri,
    is_blank,
    is_iri,
    is_literal,
    literal,
    literal_parts,
    text_of,
    to_rdflib,
)
from catalogue.normalise._rules import (
    _DATE,
    _DATETIME,
    _EU_IRI,
    _LANGUAGE_IRI_FORMS,
    _URL,
    _YEAR,
    _YEAR_MONTH,
    DATE_PROPERTIES,
    FILE_TYPE_SCHEME,
    LANGUAGE_SCHEME,
    LICENCE_SCHEME,
    MEDIA_TYPE_PROPERTIES,
    RECORD_CLASSES,
    SKOLEM_PATH,
    URL_PROPERTIES,
    VOCABULARY_OF,
    Repair,
    _range_table,
    file_type_concept,
    language_concept,
    licence_concept,
    media_type_iri,
)
from vocab.authority import AuthorityTables
from vocab.namespaces import DCT, EU_AUTHORITY, RDFS, XSD
from vocab.shacl import vocabularies_graph

_URLS: Final = tuple(from_rdflib(p) for p in URL_PROPERTIES)
_MEDIA_TYPES: Final = tuple(from_rdflib(p) for p in MEDIA_TYPE_PROPERTIES)
_DATES: Final = tuple(from_rdflib(p) for p in DATE_PROPERTIES)
_VOCABULARIES: Final = tuple((from_rdflib(p), scheme) for p, scheme in VOCABULARY_OF.items())
_LANGUAGE: Final = from_rdflib(DCT.language)
_FORMAT: Final = from_rdflib(DCT["format"])
_LICENSE: Final = from_rdflib(DCT.license)
_PUBLISHER: Final = from_rdflib(DCT.publisher)
_CREATOR: Final = from_rdflib(DCT.creator)
_RECORD_CLASSES: Final = frozenset(from_rdflib(c) for c in RECORD_CLASSES)
_RESOURCE: Final = from_rdflib(RDFS.Resource)
_RDF_TYPE_IRI: Final = text_of(RDF_TYPE)
_STRING_LIKE: Final = (None, str(XSD.string))
_DATE_TYPES: Final = (
    (_DATE, str(XSD.date)),
    (_DATETIME, str(XSD.dateTime)),
    (_YEAR, str(XSD.gYear)),
    (_YEAR_MONTH, str(XSD.gYearMonth)),
)

ByPredicate = dict[str, list[tuple[str, str]]]


def term_text(term: str) -> str:
    """How a repair names a term: an IRI as itself, ``_:id``, a literal with its tag or datatype."""
    if is_literal(term):
        lexical, language, datatype = literal_parts(term)
        suffix = f"@{language}" if language else (f"^^<{datatype}>" if datatype else "")
        return f'"{lexical}"{suffix}'
    return text_of(term) if is_iri(term) else term


class _Edits:
    """The statements to swap, collected first so no rule sees a half-changed document."""

    def __init__(self) -> None:
        self.removed: set[Triple] = set()
        self.added: list[Triple] = []
        self.repairs: list[Repair] = []

    def replace(self, triple: Triple, new_value: str, rule: str, reason: str) -> None:
        subject, predicate, value = triple
        self.removed.add(triple)
        self.added.append((subject, predicate, new_value))
        self.repairs.append(
            Repair(
                rule, term_text(subject), text_of(predicate), term_text(value), term_text(new_value), reason
            )
        )

    def applied(self, triples: Iterable[Triple]) -> list[Triple]:
        return [t for t in triples if t not in self.removed] + self.added


def _by_predicate(triples: Iterable[Triple]) -> ByPredicate:
    found: ByPredicate = {}
    for s, p, o in triples:
        found.setdefault(p, []).append((s, o))
    return found


def normalise_compact(
    record: CompactRecord,
    *,
    owner: str | None = None,
    skolem_base: str,
    vocabularies: AuthorityTables,
) -> tuple[CompactRecord, list[Repair]]:
    """The repaired document and every repair made, in rule order (see ``normalise``)."""
    by_p = _by_predicate(record.triples)
    edits = _Edits()
    _urls(by_p, edits)
    _languages(by_p, edits, vocabularies)
    _formats(by_p, edits, vocabularies)
    _licences(by_p, edits, vocabularies)
    _codes(by_p, edits, vocabularies)
    _dates(by_p, edits)
    _known_concepts(record, edits, vocabularies)
    if not edits.removed and not edits.added:
        triples: list[Triple] = list(record.triples)
    else:
        triples = list(dict.fromkeys(edits.applied(record.triples)))
    repairs = list(edits.repairs)
    triples = _blank_agents(triples, repairs, owner=owner, skolem_base=skolem_base)
    triples = _range_types(triples, repairs, vocabularies)
    return CompactRecord(triples), repairs


# ---- the rules ------------------------------------------------------------------------------


def _urls(by_p: ByPredicate, edits: _Edits) -> None:
    for predicate in _URLS:
        for s, o in by_p.get(predicate, ()):
            if not is_literal(o):
                continue
            text = literal_parts(o)[0].strip()
            if _URL.match(text):
                edits.replace(
                    (s, predicate, o),
                    iri(text),
                    "literal-url",
                    "an absolute URL written as a literal names that IRI",
                )


def _languages(by_p: ByPredicate, edits: _Edits, tables: AuthorityTables) -> None:
    for s, value in by_p.get(_LANGUAGE, ()):
        concept: str | None = None
        text = text_of(value)
        if is_literal(value):
            concept = language_concept(text, tables)
        elif is_iri(value) and not tables.in_scheme(text, LANGUAGE_SCHEME):
            for form in _LANGUAGE_IRI_FORMS:
                match = form.match(text)
                if match:
                    concept = language_concept(match.group(1), tables)
                    break
        if concept is not None and concept != text:
            edits.replace(
                (s, _LANGUAGE, value),
                iri(concept),
                "language-code",
                "ISO 639 code mapped to the EU language table",
            )


def _formats(by_p: ByPredicate, edits: _Edits, tables: AuthorityTables) -> None:
    for s, value in by_p.get(_FORMAT, ()):
        if is_blank(value) or (is_iri(value) and tables.in_scheme(text_of(value), FILE_TYPE_SCHEME)):
            continue
        concept = file_type_concept(text_of(value), tables)
        if concept is not None:
            edits.replace(
                (s, _FORMAT, value),
                iri(concept),
                "file-type",
                "format name or media type mapped to the EU file-type table",
            )
    for predicate in _MEDIA_TYPES:
        for s, value in by_p.get(predicate, ()):
            if is_blank(value):
                continue
            found = media_type_iri(text_of(value))
            if found is not None:
                edits.replace(
                    (s, predicate, value),
                    iri(found),
                    "media-type",
                    "registered media type written as its IANA IRI",
                )


def _licences(by_p: ByPredicate, edits: _Edits, tables: AuthorityTables) -> None:
    for s, value in by_p.get(_LICENSE, ()):
        if is_blank(value) or tables.in_scheme(text_of(value), LICENCE_SCHEME):
            continue
        concept = licence_concept(text_of(value), tables)
        if concept is not None:
            edits.replace(
                (s, _LICENSE, value),
                iri(concept),
                "licence",
                "well-known licence mapped to the EU licence table",
            )


def _codes(by_p: ByPredicate, edits: _Edits, tables: AuthorityTables) -> None:
    """A code of the right EU table written as a literal, or as an IRI in another spelling."""
    for predicate, scheme in _VOCABULARIES:
        for s, value in by_p.get(predicate, ()):
            if is_blank(value) or tables.in_scheme(text_of(value), scheme):
                continue
            code: str | None = None
            if is_literal(value):
                code = text_of(value)
            else:
                eu = _EU_IRI.match(text_of(value))
                if eu and EU_AUTHORITY + eu.group(1).lower() == scheme:
                    code = eu.group(2)
            if code and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", code.strip()):
                concept = tables.concept_for_code(scheme, code)
                if concept is not None:
                    edits.replace(
                        (s, predicate, value),
                        iri(concept),
                        "vocabulary-code",
                        f"code of the EU table {scheme}",
                    )


def _dates(by_p: ByPredicate, edits: _Edits) -> None:
    for predicate in _DATES:
        for s, value in by_p.get(predicate, ()):
            if not is_literal(value):
                continue
            lexical, language, datatype = literal_parts(value)
            if language or datatype not in _STRING_LIKE:
                continue
            text = lexical.strip()
            chosen = next(
                (
                    dt
                    for pattern, dt in _DATE_TYPES
                    if pattern.match(text) and (dt != str(XSD.dateTime) or len(text) > 16)
                ),
                None,
            )
            if chosen is None:
                continue
            # rdflib writes the lexical form it normalises to; the stored value is that form.
            stored = str(Literal(text, datatype=URIRef(chosen)))
            edits.replace(
                (s, predicate, value),
                literal(stored, datatype=chosen),
                "date-datatype",
                f"ISO 8601 text typed {chosen}",
            )


@cache
def _vocabulary_types() -> dict[str, frozenset[str]]:
    """concept -> its rdf:type objects in the shipped vocabularies (read once a process)."""
    found: dict[str, set[str]] = {}
    for concept, kind in vocabularies_graph().subject_objects(to_rdflib(RDF_TYPE)):
        found.setdefault(from_rdflib(concept), set()).add(from_rdflib(kind))
    return {concept: frozenset(kinds) for concept, kinds in found.items()}


def _known_concepts(record: CompactRecord, edits: _Edits, tables: AuthorityTables) -> None:
    """A concept of a shipped EU table that the document only types, with a type the table gives."""
    background = _vocabulary_types()
    for subject, by_p in record.index().items():
        if not is_iri(subject) or RDF_TYPE not in by_p or not tables.schemes_of.get(text_of(subject)):
            continue
        if len(by_p) != 1:
            continue
        given = background.get(subject, frozenset())
        kinds = by_p[RDF_TYPE]
        if all(kind in given for kind in kinds):
            for kind in kinds:
                edits.removed.add((subject, RDF_TYPE, kind))
                edits.repairs.append(
                    Repair(
                        "known-concept",
                        term_text(subject),
                        _RDF_TYPE_IRI,
                        term_text(kind),
                        "",
                        "the EU table already gives this concept this type",
                    )
                )


def _skolem(base: str, kind: str, triples: Sequence[Triple], node: str) -> str:
    """A stable IRI for a blank node (RFC 7511 form): the hash of its own statements."""
    lines = sorted(
        f"{term_text(p)} {term_text(o) if not is_blank(o) else '_'}" for s, p, o in triples if s == node
    )
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:24]
    return iri(f"{base.rstrip('/')}{SKOLEM_PATH}{kind}-{digest}")


def _rename(triples: list[Triple], old: str, new: str) -> list[Triple]:
    renamed = [(new if s == old else s, p, new if o == old else o) for s, p, o in triples]
    return list(dict.fromkeys(renamed))


def _sort_key(pair: tuple[str, str]) -> str:
    """The order the rdflib version renamed in: ``str()`` of the pair of rdflib terms."""
    return str((to_rdflib(pair[0]), to_rdflib(pair[1])))


def _blank_agents(
    triples: list[Triple], repairs: list[Repair], *, owner: str | None, skolem_base: str
) -> list[Triple]:
    """Blank-node publishers and creators get an IRI; with a publisher token, the token's."""
    for predicate in (_PUBLISHER, _CREATOR):
        pairs = {(s, o) for s, p, o in triples if p == predicate and is_blank(o)}
        for subject, node in sorted(pairs, key=_sort_key):
            if (subject, predicate, node) not in set(triples):
                continue  # renamed already through another link
            if predicate == _PUBLISHER and owner is not None:
                new = iri(owner)
                reason = "blank-node publisher identified as the publisher the token was issued for"
            else:
                new = _skolem(skolem_base, "agent", triples, node)
                reason = "blank node given a stable IRI (hash of its description)"
            triples = _rename(triples, node, new)
            repairs.append(
                Repair("blank-node-agent", term_text(subject), text_of(predicate), node, text_of(new), reason)
            )
    return triples


@cache
def _range_by_class() -> dict[str, tuple[tuple[str, str], ...]]:
    """class of subject -> (property, class of value) from the range shapes, as terms.

    Ranges to record classes (typing a link so would make it another record) and to
    rdfs:Resource (says nothing) are left out.
    """
    found: dict[str, list[tuple[str, str]]] = {}
    for (cls, predicate), value_class in _range_table().items():
        value = from_rdflib(value_class)
        if value in _RECORD_CLASSES or value == _RESOURCE:
            continue
        found.setdefault(from_rdflib(cls), []).append((from_rdflib(predicate), value))
    return {cls: tuple(ranges) for cls, ranges in found.items()}


def _range_types(triples: list[Triple], repairs: list[Repair], tables: AuthorityTables) -> list[Triple]:
    """Untyped values get the class their property's range names (what RDFS would entail)."""
    typed: dict[str, set[str]] = {}
    out: dict[str, dict[str, list[str]]] = {}
    for s, p, o in triples:
        out.setdefault(s, {}).setdefault(p, []).append(o)
        if p == RDF_TYPE:
            typed.setdefault(s, set()).add(o)
    ranges = _range_by_class()
    for _ in range(3):  # a distribution typed in one pass makes its own values typeable in the next
        new: list[Triple] = []
        for subject, types in list(typed.items()):
            for cls in types:
                for predicate, value_class in ranges.get(cls, ()):
                    for value in out.get(subject, {}).get(predicate, ()):
                        if is_literal(value) or typed.get(value):
                            continue
                        if is_iri(value) and tables.schemes_of.get(text_of(value)):
                            continue  # a concept of a shipped table: its class comes from the table
                        new.append((value, RDF_TYPE, value_class))
        if not new:
            break
        for triple in dict.fromkeys(new):
            typed.setdefault(triple[0], set()).add(triple[2])
            out.setdefault(triple[0], {}).setdefault(RDF_TYPE, []).append(triple[2])
            triples.append(triple)
            repairs.append(
                Repair(
                    "range-type",
                    term_text(triple[0]),
                    _RDF_TYPE_IRI,
                    "",
                    text_of(triple[2]),
                    "the property's range gives the class",
                )
            )
    return triples
