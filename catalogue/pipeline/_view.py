"""A record's compact form seen as what flattening for the index reads (``catalogue.index.Statements``).

Building an rdflib graph of every record only to read a dozen of its values cost a fifth of the
worked record; this view converts just the terms asked for. Literals are made as a parser makes
them (rdflib normalises some typed lexical forms), so the index row is the one the rdflib path
gave.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from catalogue.ingest.compact import CompactRecord
from catalogue.ingest.terms import from_rdflib, literal_parts


class CompactView:
    """``objects(subject, predicate)`` over a compact record, in rdflib terms."""

    def __init__(self, record: CompactRecord) -> None:
        self._record = record

    def objects(self, subject: Node, predicate: URIRef) -> Iterator[Node]:
        for value in self._record.objects(from_rdflib(subject), from_rdflib(predicate)):
            yield _as_parsed(value)


@lru_cache(maxsize=65_536)  # vocabulary IRIs and common values repeat across records
def _as_parsed(term: str) -> Node:
    kind = term[:1]
    if kind == "<":
        return URIRef(term[1:-1])
    if kind == "_":
        return BNode(term[2:])
    lexical, language, datatype = literal_parts(term)
    if language:
        return Literal(lexical, lang=language)
    if datatype:
        return Literal(lexical, datatype=URIRef(datatype))
    return Literal(lexical)
