"""Plain-dict indexes over a record's statements, and the merged view one record is validated on.

Terms are N-Triples strings (:mod:`catalogue.ingest.terms`): they hash and compare in C, where
rdflib terms run Python code on every dict lookup, and a record validation asks a few hundred
lookups. Indexing each record once (subject -> predicate -> objects and the inverse) and reading
values there is what makes the fast validator fast.

The background (SKOS vocabularies, class hierarchies) is indexed once per validator; a record's
view overlays the record's statements on it without copying the background, so it behaves as the
set union of the two graphs, which is what pyshacl sees when given ``record + background``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from catalogue.ingest.compact import RDF_TYPE, CompactRecord
from catalogue.ingest.compact import rdflib_triples as triples_of

__all__ = ["EMPTY", "SUBCLASS_OF", "Background", "TrackingView", "View", "index_triples", "triples_of"]

PredicateMap = dict[str, list[str]]
Index = dict[str, PredicateMap]

EMPTY: Final[Mapping[str, list[str]]] = {}
SUBCLASS_OF: Final = "<http://www.w3.org/2000/01/rdf-schema#subClassOf>"


def index_triples(
    triples: Sequence[tuple[str, str, str]], inverse_predicates: frozenset[str] | None = None
) -> tuple[Index, Index]:
    """Index statements both ways: ``out[s][p] -> [o...]`` and ``inn[o][p] -> [s...]``.

    With ``inverse_predicates``, ``inn`` only holds those predicates: the only ones a compiled
    shapes graph ever reads backwards.
    """
    out: Index = {}
    for s, p, o in triples:
        by_p = out.get(s)
        if by_p is None:
            out[s] = {p: [o]}
        else:
            objs = by_p.get(p)
            if objs is None:
                by_p[p] = [o]
            else:
                objs.append(o)
    return out, inverse_index(triples, inverse_predicates)


def inverse_index(triples: Iterable[tuple[str, str, str]], predicates: frozenset[str] | None) -> Index:
    """``inn[o][p] -> [s...]``, for ``predicates`` only when given (a record has ``out`` already)."""
    inn: Index = {}
    for s, p, o in triples:
        if predicates is not None and p not in predicates:
            continue
        by_p = inn.get(o)
        if by_p is None:
            inn[o] = {p: [s]}
        else:
            subs = by_p.get(p)
            if subs is None:
                by_p[p] = [s]
            else:
                subs.append(s)
    return inn


def _overlay(data: Mapping[str, Mapping[str, Sequence[str]]], background: Index) -> Index:
    """Data entries, merged with the background's entry for the same node (set union)."""
    merged: Index = {}
    for node, by_p in data.items():
        base = background.get(node)
        if base is None:
            merged[node] = by_p  # type: ignore[assignment]  # read-only from here on
            continue
        union = {p: list(vals) for p, vals in base.items()}
        for p, vals in by_p.items():
            have = union.get(p)
            if have is None:
                union[p] = list(vals)
            else:
                union[p] = list(dict.fromkeys([*have, *vals]))
        merged[node] = union
    return merged


class Background:
    """The fixed part of every data graph: indexed once, with a memoised class hierarchy."""

    def __init__(self, record: CompactRecord) -> None:
        self.out, self.inn = index_triples(record.triples)
        self._supers: dict[str, frozenset[str]] = {}

    def superclasses(self, cls: str) -> frozenset[str]:
        """``cls`` and everything it is an rdfs:subClassOf, transitively (reflexive)."""
        found = self._supers.get(cls)
        if found is None:
            found = _closure(cls, self.out)
            self._supers[cls] = found
        return found


def _closure(start: str, index: Index) -> frozenset[str]:
    seen = {start}
    todo = [start]
    while todo:
        node = todo.pop()
        for sup in index.get(node, EMPTY).get(SUBCLASS_OF, ()):
            if sup not in seen:
                seen.add(sup)
                todo.append(sup)
    return frozenset(seen)


class View:
    """The union of one record and the background, read through dict lookups."""

    __slots__ = ("_bg", "_bg_inn", "_bg_out", "_inn", "_out", "data_inn", "data_out")

    def __init__(
        self,
        background: Background,
        data_out: Mapping[str, Mapping[str, Sequence[str]]],
        data_inn: Index,
    ) -> None:
        self._bg = background
        self._bg_out = background.out
        self._bg_inn = background.inn
        self.data_out = data_out
        self.data_inn = data_inn
        self._out = _overlay(data_out, background.out)
        self._inn = _overlay(data_inn, background.inn)

    def out(self, node: str) -> Mapping[str, list[str]]:
        found = self._out.get(node)
        if found is None:
            return self._bg_out.get(node, EMPTY)
        return found

    def inn(self, node: str) -> Mapping[str, list[str]]:
        found = self._inn.get(node)
        if found is None:
            return self._bg_inn.get(node, EMPTY)
        return found

    def is_instance(self, node: str, cls: str) -> bool:
        """SHACL instance: ``node rdf:type/rdfs:subClassOf* cls`` (the record adds no subclass axioms)."""
        supers = self._bg.superclasses
        return any(cls in supers(t) for t in self.out(node).get(RDF_TYPE, ()))


class TrackingView(View):
    """A view that remembers which nodes' statements were read, to know what a record could change."""

    __slots__ = ("read_in", "read_out")

    def __init__(self, background: Background) -> None:
        super().__init__(background, {}, {})
        self.read_out: set[str] = set()
        self.read_in: set[str] = set()

    def out(self, node: str) -> Mapping[str, list[str]]:
        self.read_out.add(node)
        return super().out(node)

    def inn(self, node: str) -> Mapping[str, list[str]]:
        self.read_in.add(node)
        return super().inn(node)
