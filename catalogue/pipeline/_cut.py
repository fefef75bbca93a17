"""Cutting records out of a compact document: the compact counterparts of ``catalogue.publish``'s
``find_record_subjects``, ``extract_record``, ``name_record``, ``iri_problem`` and the taking of
publisher proofs, giving the same records, names and refusals (the tests compare both paths).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Final

from catalogue.ingest.compact import RDF_TYPE, CompactRecord
from catalogue.ingest.terms import iri, is_blank, is_literal, literal_parts, text_of
from catalogue.normalise import Repair
from catalogue.publish import (
    _IRI_FORBIDDEN,
    MAX_DISTRIBUTIONS,
    MAX_IRI_CHARS,
    MAX_RECORD_STATEMENTS,
    MAX_RECORDS_PER_DOCUMENT,
    RESERVED_IRI_PREFIXES,
    PublishError,
    record_id_for,
    record_too_large,
    reserved_iri,
    too_many_distributions,
    too_many_records,
)
from catalogue.signing import MAX_PROOF_CHARS, MAX_PUBLISHER_PROOFS, PUBLISHER_PROOF
from connector.identity import ProofError
from vocab.namespaces import DCAT, DCT

_DCAT = str(DCAT)
_RECORD_TYPES: Final = (iri(_DCAT + "Dataset"), iri(_DCAT + "DatasetSeries"))
_SERVICE: Final = iri(_DCAT + "DataService")
_BOUNDARIES: Final = frozenset({*_RECORD_TYPES, iri(_DCAT + "Catalog"), iri(_DCAT + "CatalogRecord")})
_DISTRIBUTION: Final = iri(_DCAT + "distribution")
_PUBLISHER: Final = iri(str(DCT.publisher))
_PROOF: Final = iri(str(PUBLISHER_PROOF))
_LINKS: Final = tuple(
    iri(_DCAT + name) for name in ("inSeries", "accessService", "servesDataset", "prev", "first", "last")
)


def record_subjects(document: CompactRecord) -> list[str]:
    """Every dataset and series of the document (or, failing those, every data service), in the
    order ``find_record_subjects`` gives them."""
    found = {s for kind in _RECORD_TYPES for s in document.subjects_of_type(kind)}
    if not found:
        found = set(document.subjects_of_type(_SERVICE))
    primaries = sorted(found, key=text_of)
    if len(primaries) > MAX_RECORDS_PER_DOCUMENT:
        raise too_many_records(len(primaries))
    return primaries


def extract(document: CompactRecord, subject: str) -> CompactRecord:
    """What ``subject`` reaches through resources described in the document; other records are
    boundaries (linked, not included)."""
    index = document.index()
    distributions = len(document.objects(subject, _DISTRIBUTION))
    if distributions > MAX_DISTRIBUTIONS:
        raise too_many_distributions(distributions)
    triples: list[tuple[str, str, str]] = []
    seen = {subject}
    pending = [subject]
    while pending:
        node = pending.pop()
        for predicate, objects in index.get(node, {}).items():
            for value in objects:
                triples.append((node, predicate, value))
                if len(triples) > MAX_RECORD_STATEMENTS:
                    raise record_too_large()
                if value in seen or is_literal(value):
                    continue
                seen.add(value)
                described = index.get(value)
                if not described or not _BOUNDARIES.isdisjoint(described.get(RDF_TYPE, ())):
                    continue
                pending.append(value)
    return CompactRecord(triples)


def names_of(record: CompactRecord) -> set[str]:
    """How repairs name the record's resources (an IRI as itself, a blank node both ways)."""
    names: set[str] = set()
    for subject in record.subjects():
        names.add(text_of(subject))
        if is_blank(subject):
            names.add(subject)
    return names


def repairs_of(record: CompactRecord, repairs: Sequence[Repair]) -> tuple[Repair, ...]:
    if not repairs:  # most documents need none: naming every resource would be for nothing
        return ()
    names = names_of(record)
    return tuple(repair for repair in repairs if repair.subject in names)


def rename(record: CompactRecord, old: str, new: str) -> CompactRecord:
    return CompactRecord((new if s == old else s, p, new if o == old else o) for s, p, o in record.triples)


def shape_digest_of(record: CompactRecord) -> str:
    """``_shape_of`` in ``catalogue.publish``: the statements with blank nodes blurred, as text."""
    lines = sorted(
        " ".join("_" if is_blank(term) else _term_text(term) for term in triple) for triple in record.triples
    )
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _term_text(term: str) -> str:
    """``catalogue.normalise.term_text`` of the rdflib term this text stands for."""
    if not is_literal(term):
        return text_of(term)
    lexical, language, datatype = literal_parts(term)
    suffix = f"@{language}" if language else (f"^^<{datatype}>" if datatype else "")
    return f'"{lexical}"{suffix}'


def name(
    record: CompactRecord, subject: str, *, source: str, local: bool, dataset_base: str, fresh: str
) -> tuple[str, str, CompactRecord]:
    """(record id, dataset term, record) as ``catalogue.publish.name_record`` names them.

    ``fresh`` is the id a blank-node dataset published here gets (random, from the caller).
    """
    if is_blank(subject):
        if local:
            dataset = iri(f"{dataset_base}/{fresh}")
            return fresh, dataset, rename(record, subject, dataset)
        minted = iri(f"{dataset_base}/{record_id_for(source + chr(10) + shape_digest_of(record))}")
        record = rename(record, subject, minted)
        subject = minted
    return record_id_for(text_of(subject)), subject, record


def iri_problem(record: CompactRecord) -> PublishError | None:
    """``catalogue.publish.iri_problem`` on the compact form."""
    checked: set[str] = set()
    for triple in record.triples:
        for term in triple:
            if term[:1] == "<" and term not in checked:
                checked.add(term)
                text = term[1:-1]
                if len(text) > MAX_IRI_CHARS or not _IRI_FORBIDDEN.isdisjoint(text) or ":" not in text:
                    return PublishError(
                        400,
                        "invalid-iri",
                        "Invalid IRI",
                        f"{text[:200]!r} is not an absolute IRI",
                        [("body", f"IRI {text[:200]!r} is not absolute or holds forbidden characters")],
                    )
                if text.startswith(RESERVED_IRI_PREFIXES):
                    return reserved_iri(text)
    return None


def take_proofs(
    record: CompactRecord, dataset: str
) -> tuple[CompactRecord, list[dict[str, Any]], ProofError | None]:
    """The record without its publisher proofs, the proofs (parsed JSON), or why they cannot be read."""
    found = record.objects(dataset, _PROOF)
    if not found:
        return record, [], None
    kept = CompactRecord((s, p, o) for s, p, o in record.triples if not (s == dataset and p == _PROOF))
    if len(found) > MAX_PUBLISHER_PROOFS:
        return (
            kept,
            [],
            ProofError(
                "too_many_proofs", f"a record may carry at most {MAX_PUBLISHER_PROOFS} publisher proofs"
            ),
        )
    proofs: list[dict[str, Any]] = []
    for value in found:
        text = literal_parts(value)[0] if is_literal(value) else ""
        if len(text) > MAX_PROOF_CHARS:
            return (
                kept,
                [],
                ProofError(
                    "malformed_proof", f"a publisher proof is longer than {MAX_PROOF_CHARS} characters"
                ),
            )
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return (
                record,
                [],
                ProofError("malformed_proof", "sluis:recordProof must be a JSON object literal"),
            )
        proofs.append(parsed)
    return kept, proofs, None


def publishers_of(record: CompactRecord, dataset: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every dct:publisher as text, those that are IRIs) of the dataset."""
    values = record.objects(dataset, _PUBLISHER)
    return tuple(text_of(v) for v in values), tuple(v[1:-1] for v in values if v[:1] == "<")


def linked_of(record: CompactRecord) -> tuple[str, ...]:
    """IRIs the record links to as other records and does not describe (validation context)."""
    index = record.index()
    found = {
        value[1:-1]
        for by_p in index.values()
        for link in _LINKS
        for value in by_p.get(link, ())
        if value[:1] == "<" and not index.get(value, {}).get(RDF_TYPE)
    }
    return tuple(sorted(found))
