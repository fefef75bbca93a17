"""The CPU-bound half of ingesting: documents in, worked records out, no store and no key.

Parse, normalise, split into records, validate (without the context of linked records, which
lives in the store), score, canonicalise and flatten for the index. This runs in the ingest
workers (``_pool.py``) or in the node's own process for small batches; the node then finishes
each record (:meth:`catalogue.publish.CataloguePublisher.settle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rdflib import Graph, URIRef
from rdflib.term import Node

from catalogue.normalise import Repair, normalise, term_text
from catalogue.pipeline._documents import Document, WorkSettings
from catalogue.publish import (
    Assessor,
    BulkValidator,
    PublishError,
    WorkedRecord,
    extract_record,
    find_record_subject,
    find_record_subjects,
    iri_problem,
    name_record,
    parse_document,
    repairs_in,
    statements_by_subject,
    take_proofs,
    work_record,
)
from connector.identity import ProofError


@dataclass(frozen=True)
class WorkedItem:
    """One record of a document: worked, or the reason it could not be."""

    name: str
    subject: str
    position: int
    """Index of the record's subject among the document's (to redo it in the node's process)."""
    worked: WorkedRecord | None = None
    error: PublishError | None = None
    """Cutting the record out failed (413): nothing else was done."""
    iri_error: PublishError | None = None
    """An IRI is unusable: raised by the node after the record's identity checks."""
    repairs: tuple[Repair, ...] = ()


@dataclass(frozen=True)
class WorkedDocument:
    name: str
    items: list[WorkedItem] = field(default_factory=list)
    error: PublishError | None = None
    """The document cannot be read or holds no dataset: no record of it goes further."""


@dataclass
class _Cut:
    name: str
    subject: Node
    position: int
    record_id: str
    dataset: URIRef
    record: Graph
    repairs: tuple[Repair, ...]
    proofs: list[dict[str, Any]]
    proof_error: ProofError | None
    iri_error: PublishError | None


def work_documents(
    documents: Sequence[Document],
    settings: WorkSettings,
    *,
    validate_many: BulkValidator,
    assess: Assessor,
) -> list[WorkedDocument]:
    """Every record of every document, worked; validation runs once over the whole batch."""
    cuts: list[_Cut] = []
    shells: list[tuple[WorkedDocument, list[_Cut | WorkedItem]]] = []
    for document in documents:
        slots: list[_Cut | WorkedItem] = []
        try:
            slots = _cut(document, settings)
        except PublishError as error:
            shells.append((WorkedDocument(document.name, error=error), []))
            continue
        cuts.extend(slot for slot in slots if isinstance(slot, _Cut))
        shells.append((WorkedDocument(document.name), slots))
    reports = validate_many([cut.record for cut in cuts]) if cuts else []
    report_of = {id(cut): report for cut, report in zip(cuts, reports, strict=True)}
    for shell, slots in shells:
        for slot in slots:
            if isinstance(slot, WorkedItem):
                shell.items.append(slot)
                continue
            worked = work_record(
                slot.record,
                slot.dataset,
                slot.record_id,
                report=report_of[id(slot)],
                repairs=slot.repairs,
                proofs=slot.proofs,
                proof_error=slot.proof_error,
                assess=assess,
                publisher_verified=settings.owner is not None,
                with_dqv=settings.with_dqv,
            )
            shell.items.append(
                WorkedItem(
                    slot.name,
                    term_text(slot.subject),
                    slot.position,
                    worked=worked,
                    iri_error=slot.iri_error,
                    repairs=slot.repairs,
                )
            )
    return [shell for shell, _ in shells]


def _cut(document: Document, settings: WorkSettings) -> list[_Cut | WorkedItem]:
    graph = parse_document(
        document.data, document.media_type, base=settings.dataset_base + "/", max_bytes=settings.max_bytes
    )
    repairs = normalise(graph, owner=settings.owner, skolem_base=settings.node_base)
    subjects = find_record_subjects(graph)
    if not subjects:
        find_record_subject(graph)  # raises the no-dataset problem
    by_subject = statements_by_subject(graph)
    slots: list[_Cut | WorkedItem] = []
    for position, subject in enumerate(subjects):
        name = document.name if len(subjects) == 1 else f"{document.name}#{term_text(subject)}"
        try:
            record = extract_record(graph, subject, by_subject)
        except PublishError as error:
            slots.append(WorkedItem(name, term_text(subject), position, error=error))
            continue
        mine = repairs_in(record, repairs)
        record_id, dataset, record = name_record(
            record, subject, source=settings.source, dataset_base=settings.dataset_base
        )
        iri_error = iri_problem(record)
        proofs, proof_error = take_proofs(record, dataset)
        slots.append(
            _Cut(name, subject, position, record_id, dataset, record, mine, proofs, proof_error, iri_error)
        )
    return slots
