"""A record's statements in a compact, immutable, picklable form built straight from Oxigraph.

rdflib graphs cost about 1.5 ms a record to build and answer each pattern through Python
generators; at thousands of records a second the analysis stages (normalisation, validation,
quality), signing and the store need something cheaper that all of them share. A
:class:`CompactRecord` is the record's statements as tuples of N-Triples term strings
(:mod:`catalogue.ingest.terms`), deduplicated in document order, with a subject -> predicate ->
objects index built once. Strings were measured against Oxigraph terms: as fast to build from
``pyoxigraph.parse`` output, a quarter faster to index, seven times faster to pickle (records
cross process boundaries in the worker pool).

The value is immutable: the statements are a tuple, the index is built in ``__init__`` and only
handed out as read-only mappings, and pickling sends the statements alone (the receiver
rebuilds the index). rdflib graphs are produced and read only at the edges (pages, explanations,
pyshacl) by :meth:`CompactRecord.to_rdflib` / :meth:`CompactRecord.from_rdflib`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import pyoxigraph as ox
from rdflib import Graph
from rdflib.plugins.stores.memory import Memory
from rdflib.term import Node

from catalogue.canonical import canonical_graph
from catalogue.ingest.terms import TermError, from_rdflib, is_blank, to_rdflib

Triple = tuple[str, str, str]
PredicateObjects = Mapping[str, Sequence[str]]

RDF_TYPE: Final = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
_EMPTY: Final[Mapping[str, Sequence[str]]] = {}
_MAX_TREE_DEPTH: Final = 64
"""As ``catalogue.signing.MAX_TREE_DEPTH``: deeper blank-node trees take the general labelling."""
_SYNTAXES: Final = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
}


def rdflib_triples(graph: Graph) -> Iterable[tuple[Node, Node, Node]]:
    """The graph's triples, read straight from rdflib's in-memory store when the graph uses one.

    ``graph.triples((None, None, None))`` costs about 3 µs a triple through rdflib's generators
    and context bookkeeping; the Memory store keeps each context's triples as a set, which is
    exactly this graph's triples. Any other store is read through the public API.
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


class CompactRecord:
    """The statements of one record (or one document before it is split), indexed by subject."""

    __slots__ = ("_out", "_triples")

    def __init__(self, triples: Iterable[Triple]) -> None:
        unique = tuple(dict.fromkeys(triples))
        out: dict[str, dict[str, list[str]]] = {}
        for s, p, o in unique:
            by_p = out.get(s)
            if by_p is None:
                out[s] = {p: [o]}
                continue
            objects = by_p.get(p)
            if objects is None:
                by_p[p] = [o]
            else:
                objects.append(o)
        self._triples = unique
        self._out = out

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_oxigraph(cls, statements: Iterable[ox.Quad | ox.Triple]) -> CompactRecord:
        """From ``pyoxigraph.parse`` output; statements in a named graph or RDF-star are refused.

        A record is one graph: a quad in a named graph would silently merge two graphs, and a
        quoted triple is a statement about a statement no stage here can judge (fail closed).
        """
        triples: list[Triple] = []
        for statement in statements:
            if isinstance(statement, ox.Quad) and not isinstance(statement.graph_name, ox.DefaultGraph):
                raise TermError(
                    f"a statement in the named graph {statement.graph_name} (a record is one graph)"
                )
            s, o = statement.subject, statement.object
            if isinstance(s, ox.Triple) or isinstance(o, ox.Triple):
                raise TermError("quoted triples (RDF-star) are not taken")
            triples.append((str(s), str(statement.predicate), str(o)))
        return cls(triples)

    @classmethod
    def parse(cls, data: bytes, media_type: str, *, base_iri: str | None = None) -> CompactRecord:
        """Parse Turtle, N-Triples or RDF/XML with Oxigraph (size and statement limits: the caller's).

        JSON-LD is not taken here: its contexts go through ``vocab.jsonld``'s offline loader.
        """
        fmt = _SYNTAXES.get(media_type.split(";", 1)[0].strip().lower())
        if fmt is None:
            raise TermError(f"no RDF syntax parsed here for the media type {media_type!r}")
        return cls.from_oxigraph(ox.parse(data, format=fmt, base_iri=base_iri))

    @classmethod
    def from_rdflib(cls, graph: Graph) -> CompactRecord:
        """From an rdflib graph (the cold paths and callers that still hold graphs)."""
        written: dict[Any, str] = {}

        def term(node: Any) -> str:
            found = written.get(node)
            if found is None:
                found = from_rdflib(node)
                written[node] = found
            return found

        return cls((term(s), term(p), term(o)) for s, p, o in rdflib_triples(graph))

    def to_rdflib(self) -> Graph:
        """An rdflib graph of the same statements (blank node ids and lexical forms kept)."""
        graph = Graph(bind_namespaces="none")
        made: dict[str, Any] = {}

        def term(text: str) -> Any:
            found = made.get(text)
            if found is None:
                found = to_rdflib(text)
                made[text] = found
            return found

        for s, p, o in self._triples:
            graph.add((term(s), term(p), term(o)))
        return graph

    # -- reading -----------------------------------------------------------------------------

    @property
    def triples(self) -> tuple[Triple, ...]:
        return self._triples

    def __len__(self) -> int:
        return len(self._triples)

    def __iter__(self) -> Iterator[Triple]:
        return iter(self._triples)

    def __contains__(self, triple: object) -> bool:
        if not (isinstance(triple, tuple) and len(triple) == 3):
            return False
        s, p, o = triple
        return o in self._out.get(s, _EMPTY).get(p, ())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRecord):
            return NotImplemented
        return set(self._triples) == set(other._triples)

    def __hash__(self) -> int:
        return hash(frozenset(self._triples))

    def __repr__(self) -> str:
        return f"CompactRecord({len(self._triples)} statements)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CompactRecord, (self._triples,))

    def subjects(self) -> Iterable[str]:
        """Every subject, in document order."""
        return self._out.keys()

    def index(self) -> Mapping[str, PredicateObjects]:
        """subject -> predicate -> objects (read-only: the lists are the record's own)."""
        return self._out

    def out(self, subject: str) -> PredicateObjects:
        """predicate -> objects of one subject (empty when it has no statements)."""
        return self._out.get(subject, _EMPTY)

    def objects(self, subject: str, predicate: str) -> Sequence[str]:
        return self._out.get(subject, _EMPTY).get(predicate, ())

    def value(self, subject: str, predicate: str) -> str | None:
        """One object of (subject, predicate), the first in document order, or None."""
        found = self._out.get(subject, _EMPTY).get(predicate)
        return found[0] if found else None

    def types(self, subject: str) -> Sequence[str]:
        """The subject's rdf:type objects."""
        return self._out.get(subject, _EMPTY).get(RDF_TYPE, ())

    def subjects_of_type(self, cls: str) -> list[str]:
        """Subjects typed ``cls`` (asserted types only: no subclass reasoning)."""
        return [s for s, by_p in self._out.items() if cls in by_p.get(RDF_TYPE, ())]

    # -- canonical form ----------------------------------------------------------------------

    def canonical_ntriples(self) -> list[str]:
        """The statements as sorted N-Triples lines, blank nodes labelled canonically.

        The labels do not depend on the parser's: when blank nodes form trees (what Turtle's
        ``[ ]`` writes, nearly every record) each is named ``_:t`` + a hash of its own
        statements, nested blank nodes by their names, as ``catalogue.signing`` does; shared or
        cyclic blank nodes, or two with the same description, go to rdflib's canonical
        labelling (rare, and slower).
        """
        if not any(is_blank(s) or is_blank(o) for s, _, o in self._triples):
            return sorted({f"{s} {p} {o} ." for s, p, o in self._triples})
        labels = self._tree_labels()
        if labels is None:  # the general labelling, bounded (catalogue.canonical)
            canonical = CompactRecord.from_rdflib(canonical_graph(self.to_rdflib()))
            return sorted({f"{s} {p} {o} ." for s, p, o in canonical.triples})

        def name(term: str) -> str:
            return labels.get(term, term)

        return sorted({f"{name(s)} {p} {name(o)} ." for s, p, o in self._triples})

    def _tree_labels(self) -> dict[str, str] | None:
        referenced: set[str] = set()
        for _, _, o in self._triples:
            if is_blank(o):
                if o in referenced:
                    return None
                referenced.add(o)
        blanks = [s for s in self._out if is_blank(s)] + [b for b in referenced if b not in self._out]
        labels: dict[str, str] = {}
        visiting: set[str] = set()

        def label(node: str) -> str | None:
            known = labels.get(node)
            if known is not None:
                return known
            if node in visiting or len(visiting) >= _MAX_TREE_DEPTH:
                return None  # cyclic, or deeper than the labelling recurses (then: the general form)
            visiting.add(node)
            lines = []
            for p, objects in self._out.get(node, _EMPTY).items():
                for o in objects:
                    text = label(o) if is_blank(o) else o
                    if text is None:
                        return None
                    lines.append(f"{p} {text}")
            visiting.discard(node)
            found = "_:t" + hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()[:32]
            labels[node] = found
            return found

        for node in blanks:
            if label(node) is None:
                return None
        if len(set(labels.values())) != len(labels):
            return None
        return labels
