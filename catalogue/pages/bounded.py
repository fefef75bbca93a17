"""The part of a stored record a page shows: a bounded graph, and how much was left out.

A record may hold 50,000 statements (45,000 keywords, 1,000 distributions); parsing all of it
into rdflib and sorting every value took seconds per anonymous page view. A page shows a few
dozen values per property anyway, so the stored N-Triples are read with Oxigraph's native parser
(milliseconds) and only what the page can show becomes an rdflib graph: at most
:data:`MAX_VALUES` values per (subject, property) in the reader's language and as many in
others, walked from the dataset, and :data:`MAX_STATEMENTS` statements in all. What was left
out is counted per (subject, property) so the page can say "and K more" and link to the full
RDF.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

import pyoxigraph as ox
from rdflib import Graph, URIRef
from rdflib.term import Node

from catalogue.render import RdflibTerms
from catalogue.store import RecordVersion

MAX_VALUES: Final = 50
"""Values shown per (subject, property): keywords, distributions, themes, titles…"""

MAX_STATEMENTS: Final = 5_000
"""Statements a page's graph holds at most, whatever the record holds."""

_Subject = ox.NamedNode | ox.BlankNode


@dataclass
class BoundedRecord:
    """The statements a page may show, and per (subject, property) IRI how many were left out."""

    graph: Graph
    more: dict[tuple[str, str], int] = field(default_factory=dict)
    truncated: bool = False

    def left_out(self, subject: Node, predicate: URIRef) -> int:
        return self.more.get((str(subject), str(predicate)), 0)

    def cut_within(self, nodes: set[Node]) -> bool:
        """Whether anything was left out of statements about ``nodes`` (or the walk stopped)."""
        names = {str(node) for node in nodes}
        return self.truncated or any(subject in names for subject, _ in self.more)


def bounded_record(version: RecordVersion, language: str = "en") -> BoundedRecord:
    """The record's statements reachable from its dataset, at most so many per property."""
    by_subject: dict[_Subject, list[ox.Triple]] = {}
    for quad in ox.parse(version.content.encode("utf-8"), ox.RdfFormat.N_TRIPLES):
        subject = quad.subject
        if isinstance(subject, ox.NamedNode | ox.BlankNode):
            by_subject.setdefault(subject, []).append(ox.Triple(subject, quad.predicate, quad.object))
    preferred = {language.lower(), "en", ""}
    bounded = BoundedRecord(Graph())
    terms = RdflibTerms()
    start = ox.NamedNode(version.dataset)
    queue: deque[_Subject] = deque([start])
    seen: set[_Subject] = {start}
    while queue:
        subject = queue.popleft()
        kept: dict[tuple[str, bool], int] = {}
        name = str(terms.node(subject))
        for triple in by_subject.get(subject, ()):
            value = triple.object
            shown = not isinstance(value, ox.Literal) or (value.language or "") in preferred
            key = (triple.predicate.value, shown)
            if kept.get(key, 0) >= MAX_VALUES:
                more_key = (name, triple.predicate.value)
                bounded.more[more_key] = bounded.more.get(more_key, 0) + 1
                continue
            if len(bounded.graph) >= MAX_STATEMENTS:
                bounded.truncated = True
                return bounded
            kept[key] = kept.get(key, 0) + 1
            bounded.graph.add((terms.node(subject), terms.node(triple.predicate), terms.value(value)))
            if isinstance(value, ox.NamedNode | ox.BlankNode) and value not in seen and value in by_subject:
                seen.add(value)
                queue.append(value)
    return bounded
