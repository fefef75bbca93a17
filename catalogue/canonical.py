"""rdflib's canonical labelling of blank nodes, only where it is affordable.

Signing needs the record's statements with blank nodes named canonically. Blank nodes that form
trees with distinct descriptions (nearly every record) are named by hashes
(:mod:`catalogue.signing`, :meth:`catalogue.ingest.compact.CompactRecord.canonical_ntriples`);
the others go to rdflib's general algorithm, whose cost grows exponentially with symmetric
structures and quadratically with size: 30 blank nodes all linked to each other, two rings of
100, or 100 alike ``[ rdfs:label "CSV" ]`` under one dataset each kept a worker busy for minutes
(one request, one publisher token). Before calling it, :func:`canonical_graph` refines colours
over the blank nodes (what each says and what says it, to a fixed point): the algorithm only
branches over blank nodes that refinement leaves alike, so at most
:data:`MAX_ALIKE_BLANK_NODES` of those (:data:`MAX_LINKED_ALIKE_BLANK_NODES` linked to each
other), and :data:`MAX_CANONICAL_BLANK_NODES` in all, are accepted; past that the record is
refused (400). Real records reaching this path (the corpus: up to 30 blank nodes, 18 alike and linked, in
GeoDCAT-AP and HealthDCAT-AP examples) are inside all three.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Final

from rdflib import BNode, Graph
from rdflib.compare import to_canonical_graph

from catalogue.refusal import PublishError

MAX_CANONICAL_BLANK_NODES: Final = 500
"""Most blank nodes given to the general labelling (its cost grows with their square: 300 cost
0.6 s of CPU here)."""
MAX_ALIKE_BLANK_NODES: Final = 32
"""Most blank nodes that colour refinement cannot tell apart (the general labelling branches
over them: 32 alike ``[ rdfs:label "CSV" ]`` under one dataset cost 1.7 s, 100 more than 20 s;
real records hold a few such, up to 18 in the corpus)."""
MAX_LINKED_ALIKE_BLANK_NODES: Final = 24
"""Most of those linked to each other (rings, cliques, alike nested pairs), where the branching
multiplies: 16 all linked to each other cost 0.4 s, 24 cost 3 s, 32 more than 30 s (a real
record holds 18: alike nested blank nodes)."""
_MAX_ROUNDS: Final = 64


def _alike(graph: Graph, blanks: set[BNode]) -> tuple[int, int]:
    """(blank nodes sharing their colour with another after refinement to a fixed point, those
    of them linked to another such blank node)."""
    colour = dict.fromkeys(blanks, "")
    classes = 1
    for _ in range(_MAX_ROUNDS):
        signature: dict[BNode, list[str]] = {blank: [] for blank in blanks}
        for s, p, o in graph:
            if isinstance(s, BNode):
                signature[s].append(f"> {p.n3()} {colour[o] if isinstance(o, BNode) else o.n3()}")
            if isinstance(o, BNode):
                signature[o].append(f"< {colour[s] if isinstance(s, BNode) else s.n3()} {p.n3()}")
        colour = {
            blank: hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()
            for blank, lines in signature.items()
        }
        now = len(set(colour.values()))
        if now == classes:
            break
        classes = now
    sizes = Counter(colour.values())
    alike = {blank for blank, name in colour.items() if sizes[name] > 1}
    linked = {node for s, _, o in graph if s in alike and o in alike for node in (s, o)}
    return len(alike), len(linked)


def canonical_graph(graph: Graph) -> Graph:
    """rdflib's canonical form of ``graph``, or a 400 when its blank nodes are too costly for it."""
    blanks = {term for s, _, o in graph for term in (s, o) if isinstance(term, BNode)}
    alike, linked = _alike(graph, blanks) if len(blanks) <= MAX_CANONICAL_BLANK_NODES else (0, 0)
    reason = None
    if len(blanks) > MAX_CANONICAL_BLANK_NODES:
        reason = (
            f"{len(blanks)} blank nodes that are shared, form cycles, nest deeper than 64 or are "
            f"described alike (at most {MAX_CANONICAL_BLANK_NODES})"
        )
    elif alike > MAX_ALIKE_BLANK_NODES:
        reason = f"{alike} blank nodes that nothing tells apart (at most {MAX_ALIKE_BLANK_NODES})"
    elif linked > MAX_LINKED_ALIKE_BLANK_NODES:
        reason = (
            f"{linked} blank nodes that nothing tells apart, linked to each other "
            f"(at most {MAX_LINKED_ALIKE_BLANK_NODES})"
        )
    if reason is not None:
        raise PublishError(
            400,
            "blank-nodes-not-canonical",
            "Blank nodes too costly to sign",
            f"the record holds {reason}; give them IRIs, or descriptions that differ",
            [("body", reason)],
        )
    return to_canonical_graph(graph)
