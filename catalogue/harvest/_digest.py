"""The change digest of a harvested record: equal for the same description on every harvest.

SHA-256 over the record's canonical N-Triples (:meth:`CompactRecord.canonical_ntriples`) when its
blank nodes form trees, as nearly every record's do. Otherwise (a blank node named twice, or
two with the same description) canonical labelling is rdflib's general algorithm, which takes
seconds on a large record; the digest then labels blank nodes by a few rounds of refinement
instead, which is as stable and costs a pass per round. Only "has it changed?" rests on it: a
proof is always checked over the signer's canonical form.
"""

from __future__ import annotations

import hashlib
from typing import Final

from catalogue.ingest.compact import CompactRecord
from catalogue.ingest.terms import is_blank


def record_digest(record: CompactRecord) -> tuple[str, list[str] | None]:
    """(digest, canonical lines when they were cheap to make, else None)."""
    canonical = _canonical_if_cheap(record)
    lines = canonical if canonical is not None else _refined_lines(record)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest(), canonical


def _canonical_if_cheap(record: CompactRecord) -> list[str] | None:
    """The canonical lines when blank nodes form trees (nearly every record), else None: the
    general case is rdflib's canonical labelling, which takes seconds on a large record."""
    if any(is_blank(s) or is_blank(o) for s, _, o in record.triples) and record._tree_labels() is None:
        return None
    return record.canonical_ntriples()


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
