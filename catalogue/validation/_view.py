"""Plain-dict indexes over RDF graphs, and the merged view one record is validated on.

rdflib's store answers one triple pattern in a few microseconds through generators; a record
validation asks a few hundred of them. Indexing each record once into dicts (subject -> predicate
-> objects and the inverse) and looking values up there is what makes the fast validator fast.

The background (SKOS vocabularies, class hierarchies) is indexed once per validator; a record's
view overlays the record's triples on it without copying the background, so it behaves as the
set union of the two graphs, which is what pyshacl sees when given ``record + background``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from rdflib import BNode, Graph, URIRef
from rdflib.namespace import RDF, RDFS
from rdflib.plugins.stores.memory import Memory
from rdflib.term import Node

PredicateMap = dict[Node, list[Node]]
Index = dict[Node, PredicateMap]

EMPTY: Final[Mapping[Node, list[Node]]] = {}
RDF_TYPE: Final = RDF.type
SUBCLASS_OF: Final = RDFS.subClassOf


def triples_of(graph: Graph) -> Iterable[tuple[Node, Node, Node]]:
    """The graph's triples, read straight from rdflib's in-memory store when the graph uses one.

    ``graph.triples((None, None, None))`` costs about 3 µs a triple through rdflib's generators
    and context bookkeeping, more than the whole validation of a small record; the Memory
    store keeps each context's triples as a set, which is exactly this graph's triples.
    Any other store is read through the public API.
    """
    store = graph.store
    if type(store) is Memory:
        try:
            context = store._Memory__ctx_to_str(graph)  # type: ignore[attr-defined]
            found = store._Memory__contextTriples.get(context)  # type: ignore[attr-defined]
        except AttributeError:  # a future rdflib without these internals
            found = None
        if isinstance(found, set):
            return found
    return graph.triples((None, None, None))


def iris_by_text(canon: Mapping[Node, Node]) -> dict[str, Node]:
    """The IRIs of an interning table, keyed by their plain string."""
    return {str.__str__(t): t for t in canon if type(t) is URIRef}


def index_triples(
    triples: Iterable[tuple[Node, Node, Node]],
    known_iris: Mapping[str, Node] | None = None,
    inverse_predicates: frozenset[Node] | None = None,
) -> tuple[Index, Index]:
    """Index triples both ways: ``out[s][p] -> [o...]`` and ``inn[o][p] -> [s...]``.

    IRIs and blank nodes are interned (IRIs to the object in ``known_iris`` when it has one,
    others to one object per call), so that later lookups match by identity; literals are kept
    as they are. With ``inverse_predicates``, ``inn`` only holds those predicates: the only ones
    a compiled shapes graph ever reads backwards.
    """
    out: Index = {}
    inn: Index = {}
    # Interning tables keyed by the plain string of an IRI or blank-node id: a lookup then
    # compares C strings instead of calling rdflib's Python-level term equality.
    iris: dict[str, Node] = {}
    blanks: dict[str, Node] = {}
    known = known_iris if known_iris is not None else {}
    for s, p, o in triples:
        if type(s) is URIRef:
            key = str.__str__(s)
            s = known.get(key) or iris.setdefault(key, s)
        elif type(s) is BNode:
            s = blanks.setdefault(str.__str__(s), s)
        if type(p) is URIRef:
            key = str.__str__(p)
            p = known.get(key) or iris.setdefault(key, p)
        kind = type(o)
        if kind is URIRef:
            key = str.__str__(o)
            o = known.get(key) or iris.setdefault(key, o)
        elif kind is BNode:
            o = blanks.setdefault(str.__str__(o), o)
        by_p = out.get(s)
        if by_p is None:
            out[s] = {p: [o]}
        else:
            objs = by_p.get(p)
            if objs is None:
                by_p[p] = [o]
            else:
                objs.append(o)
        if inverse_predicates is not None and p not in inverse_predicates:
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
    return out, inn


def _overlay(data: Index, background: Index) -> Index:
    """Data entries, merged with the background's entry for the same node (set union)."""
    merged: Index = {}
    for node, by_p in data.items():
        base = background.get(node)
        if base is None:
            merged[node] = by_p
            continue
        union = {p: list(vals) for p, vals in base.items()}
        for p, vals in by_p.items():
            have = union.get(p)
            if have is None:
                union[p] = vals
            else:
                union[p] = list(dict.fromkeys([*have, *vals]))
        merged[node] = union
    return merged


class Background:
    """The fixed part of every data graph: indexed once, with a memoised class hierarchy."""

    def __init__(self, graph: Graph, canon: dict[Node, Node]) -> None:
        for triple in triples_of(graph):
            for term in triple:
                canon.setdefault(term, term)
        self.canon = canon
        self.out, self.inn = index_triples(triples_of(graph), iris_by_text(canon))
        self._supers: dict[Node, frozenset[Node]] = {}

    def superclasses(self, cls: Node) -> frozenset[Node]:
        """``cls`` and everything it is an rdfs:subClassOf, transitively (reflexive)."""
        found = self._supers.get(cls)
        if found is None:
            found = _closure(cls, self.out)
            self._supers[cls] = found
        return found


def _closure(start: Node, *indexes: Mapping[Node, Mapping[Node, list[Node]]]) -> frozenset[Node]:
    seen = {start}
    todo = [start]
    while todo:
        node = todo.pop()
        for index in indexes:
            for sup in index.get(node, EMPTY).get(SUBCLASS_OF, ()):
                if sup not in seen:
                    seen.add(sup)
                    todo.append(sup)
    return frozenset(seen)


class View:
    """The union of one record graph and the background, read through dict lookups."""

    __slots__ = ("_bg", "_bg_inn", "_bg_out", "_inn", "_out", "data_inn", "data_out")

    def __init__(self, background: Background, data_out: Index, data_inn: Index) -> None:
        self._bg = background
        self._bg_out = background.out
        self._bg_inn = background.inn
        self.data_out = data_out
        self.data_inn = data_inn
        self._out = _overlay(data_out, background.out)
        self._inn = _overlay(data_inn, background.inn)

    def out(self, node: Node) -> Mapping[Node, list[Node]]:
        found = self._out.get(node)
        if found is None:
            return self._bg_out.get(node, EMPTY)
        return found

    def inn(self, node: Node) -> Mapping[Node, list[Node]]:
        found = self._inn.get(node)
        if found is None:
            return self._bg_inn.get(node, EMPTY)
        return found

    def is_instance(self, node: Node, cls: Node) -> bool:
        """SHACL instance: ``node rdf:type/rdfs:subClassOf* cls`` (the record adds no subclass axioms)."""
        supers = self._bg.superclasses
        # superclasses() is reflexive, so ``t == cls`` needs no separate (slow) comparison.
        return any(cls in supers(t) for t in self.out(node).get(RDF_TYPE, ()))


class TrackingView(View):
    """A view that remembers which nodes' triples were read, to know what a record could change."""

    __slots__ = ("read_in", "read_out")

    def __init__(self, background: Background) -> None:
        super().__init__(background, {}, {})
        self.read_out: set[Node] = set()
        self.read_in: set[Node] = set()

    def out(self, node: Node) -> Mapping[Node, list[Node]]:
        self.read_out.add(node)
        return super().out(node)

    def inn(self, node: Node) -> Mapping[Node, list[Node]]:
        self.read_in.add(node)
        return super().inn(node)
