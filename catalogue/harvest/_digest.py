"""The change digest of a harvested record: equal for the same description on every harvest.

SHA-256 over the record's canonical N-Triples (:meth:`CompactRecord.canonical_ntriples`) when its
blank nodes form trees, as nearly every record's do. Otherwise (a blank node named twice, or
two with the same description) canonical labelling is rdflib's general algorithm, which takes
seconds on a large record; the digest then labels blank nodes by a few rounds of refinement
instead, which is as stable and costs a pass per round. Only "has it changed?" rests on it: a
proof is always checked over the signer's canonical form.

A page merges what its records say about a shared resource: every health record of a catalogue
page names the same health data access body, each with its own ``[ a ContactPoint ]``, so the
cut of each holds all of them, identical blank nodes under the same statement.
:func:`collapse_duplicate_blanks` keeps one of each such set (the same graph, RDF-equivalent),
which is what the record's publisher signed and stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from catalogue.ingest.compact import CompactRecord, Triple
from catalogue.ingest.terms import is_blank


def record_digest(record: CompactRecord) -> tuple[str, list[str] | None]:
    """(digest, canonical lines when they were cheap to make, else None)."""
    canonical = _canonical_if_cheap(record)
    lines = canonical if canonical is not None else _refined_lines(record)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest(), canonical


def _canonical_if_cheap(record: CompactRecord) -> list[str] | None:
    """:meth:`CompactRecord.canonical_ntriples` when blank nodes form trees (nearly every
    record), labelled once; else None: the general case is rdflib's canonical labelling, which
    takes seconds on a large record."""
    triples = record.triples
    if not any(is_blank(s) or is_blank(o) for s, _, o in triples):
        return sorted({f"{s} {p} {o} ." for s, p, o in triples})
    labels = record._tree_labels()
    if labels is None:
        return None
    return sorted({f"{labels.get(s, s)} {p} {labels.get(o, o)} ." for s, p, o in triples})


#: Rounds of label refinement for records whose blank nodes do not form trees.
_ROUNDS: Final = 4


def _refined_lines(record: CompactRecord) -> list[str]:
    """Sorted lines with each blank node labelled by a few rounds of refinement over what it
    says and what says it (Weisfeiler-Lehman colouring): the same description gives the same
    lines on every harvest, whatever labels the parser chose. Only the change digest uses them
    (a proof is checked over the signer's canonical form, :attr:`PageRecord.statements`)."""
    blanks = {term for s, _, o in record.triples for term in (s, o) if is_blank(term)}
    label = dict.fromkeys(blanks, "_:b")
    for _ in range(_ROUNDS):
        signature: dict[str, list[str]] = {blank: [] for blank in blanks}
        for s, p, o in record.triples:
            if s in signature:
                signature[s].append(f"> {p} {label.get(o, o)}")
            if o in signature:
                signature[o].append(f"< {label.get(s, s)} {p}")
        label = {
            blank: "_:w" + hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()[:32]
            for blank, lines in signature.items()
        }
    return sorted({f"{label.get(s, s)} {p} {label.get(o, o)} ." for s, p, o in record.triples})


def collapse_duplicate_blanks(triples: Sequence[Triple]) -> tuple[list[Triple], dict[str, str]] | None:
    """The statements with identical blank-node trees under the same subject and predicate kept
    once, and the new name of each blank node; None when there are none, or the blank nodes do
    not form trees.

    Only such siblings are merged: the result is a subgraph of the input that the input maps
    onto (each duplicate to the one kept), so both say the same. Identical blank nodes under
    different subjects are not the same statement and are left alone (None: the caller keeps
    the cut as it is).
    """
    out: dict[str, list[tuple[str, str]]] = {}
    referenced: set[str] = set()
    for s, p, o in triples:
        out.setdefault(s, []).append((p, o))
        if is_blank(o):
            if o in referenced:
                return None  # a shared blank node: not a tree
            referenced.add(o)
    labels: dict[str, str] = {}
    visiting: set[str] = set()

    def label(node: str) -> str | None:
        known = labels.get(node)
        if known is not None:
            return known
        if node in visiting:
            return None  # a cycle
        visiting.add(node)
        lines = []
        for p, o in out.get(node, ()):
            text = label(o) if is_blank(o) else o
            if text is None:
                return None
            lines.append(f"{p} {text}")
        visiting.discard(node)
        found = "_:c" + hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()[:32]
        labels[node] = found
        return found

    for node in [*referenced, *(s for s in out if is_blank(s))]:
        if label(node) is None:
            return None
    if len(set(labels.values())) == len(labels):
        return None  # nothing to collapse
    collapsed = list(dict.fromkeys((labels.get(s, s), p, labels.get(o, o)) for s, p, o in triples))
    objects = [o for _, _, o in collapsed if is_blank(o)]
    if len(objects) != len(set(objects)):
        return None  # identical blank nodes under different statements: not the same
    return collapsed, labels


#: Nesting past which a blank node is left as it is (no label: never merged).
_MAX_DEPTH: Final = 64


def collapse_page_blanks(triples: Sequence[Triple]) -> Sequence[Triple]:
    """A whole page with :func:`collapse_duplicate_blanks` applied once, before records are cut.

    The same merge (identical blank-node trees under the same subject and predicate kept once),
    in one pass over the page: merging in every record's cut instead costs a pass over all of
    a shared resource's blank nodes per record that names it. Blank nodes referenced more than
    once, in a cycle, unreferenced or nested deeper than :data:`_MAX_DEPTH` are never merged.
    """
    out: dict[str, list[tuple[str, str]]] = {}
    refs: dict[str, int] = {}
    for s, p, o in triples:
        if is_blank(o):
            refs[o] = refs.get(o, 0) + 1
        if is_blank(s):
            out.setdefault(s, []).append((p, o))
    if not refs:
        return triples
    labels: dict[str, str | None] = {}

    def label(node: str, depth: int) -> str | None:
        if node in labels:
            return labels[node]
        labels[node] = None  # in progress: a cycle back to it finds no label
        if refs.get(node) != 1 or depth > _MAX_DEPTH:
            return None
        lines = []
        for p, o in out.get(node, ()):
            text = label(o, depth + 1) if is_blank(o) else o
            if text is None:
                return None
            lines.append(f"{p} {text}")
        found = "_:c" + hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()[:32]
        labels[node] = found
        return found

    seen: set[tuple[str, str, str]] = set()
    dropped: set[str] = set()
    for s, p, o in triples:
        if not is_blank(o):
            continue
        found = label(o, 0)
        if found is None:
            continue
        if (s, p, found) in seen:
            dropped.add(o)
        else:
            seen.add((s, p, found))
    if not dropped:
        return triples
    pending = list(dropped)
    while pending:  # a dropped tree's blank nodes go with it (each is referenced only there)
        for _, o in out.get(pending.pop(), ()):
            if is_blank(o) and o not in dropped:
                dropped.add(o)
                pending.append(o)
    return [(s, p, o) for s, p, o in triples if s not in dropped and o not in dropped]
