"""Normalisation: repair what real publishers get wrong in ways whose meaning is unambiguous.

Runs on a parsed document before it is split into records and validated, on both the publish
and the harvest paths. Real DCAT-AP (CKAN exports, national profiles, GeoDCAT-AP conversions)
writes ``"it"`` where DCAT-AP 3 wants ``<…/language/ITA>``, ``"CSV"`` or ``"text/csv"`` where
it wants an EU file-type concept, a Creative Commons URL where it wants an EU licence concept,
blank nodes for publishers, literal access URLs, untyped dates and untyped range values. Each
rule here changes a value only when exactly one correct value exists, and reports the change
as a :class:`Repair` (rule, subject, property, value as sent, value stored, reason); the
pipeline keeps the repairs with the record (its quality JSON and its DQV/PROV statements), so
nothing is changed silently. ``docs/normalisation.md`` lists the rules.

What is *not* repaired stays for validation to report: unknown codes (``FRE`` is the one
exception: the ISO 639-2 bibliographic code of French has exactly one terminology code),
free-text licences, names of languages, anything a person would have to decide.
"""

from __future__ import annotations

from rdflib import Graph

from catalogue.ingest.compact import CompactRecord
from catalogue.ingest.terms import to_rdflib
from catalogue.normalise._compact import normalise_compact as _normalise_compact
from catalogue.normalise._rules import (
    Repair,
    file_type_concept,
    iter_rules,
    language_concept,
    licence_concept,
    media_type_iri,
    repairs_graph,
    term_text,
)
from vocab.authority import AuthorityTables, tables


def normalise_compact(
    record: CompactRecord,
    *,
    owner: str | None = None,
    skolem_base: str,
    vocabularies: AuthorityTables | None = None,
) -> tuple[CompactRecord, list[Repair]]:
    """The repaired document and every repair made, in rule order.

    ``owner`` is the publisher IRI of the token a document was published with (a blank-node
    publisher is that publisher); ``skolem_base`` is the node's public URL, under which blank
    nodes that need a name get a ``/.well-known/genid/…`` IRI derived from their description
    (the same description always gets the same IRI, so re-harvesting does not mint new ones).
    """
    known = vocabularies if vocabularies is not None else tables()
    return _normalise_compact(record, owner=owner, skolem_base=skolem_base, vocabularies=known)


def normalise(
    graph: Graph,
    *,
    owner: str | None = None,
    skolem_base: str,
    vocabularies: AuthorityTables | None = None,
) -> list[Repair]:
    """Repair ``graph`` in place (:func:`normalise_compact`, the difference applied); return the repairs."""
    before = CompactRecord.from_rdflib(graph)
    after, repairs = normalise_compact(
        before, owner=owner, skolem_base=skolem_base, vocabularies=vocabularies
    )
    old, new = set(before.triples), set(after.triples)
    for s, p, o in old - new:
        graph.remove((to_rdflib(s), to_rdflib(p), to_rdflib(o)))
    for s, p, o in new - old:
        graph.add((to_rdflib(s), to_rdflib(p), to_rdflib(o)))
    return repairs


__all__ = [
    "Repair",
    "file_type_concept",
    "iter_rules",
    "language_concept",
    "licence_concept",
    "media_type_iri",
    "normalise",
    "normalise_compact",
    "repairs_graph",
    "term_text",
]
