"""The CPU-bound half of ingesting: documents in, worked records out, no store and no key.

Per document: parse once with Oxigraph straight into the compact form (``_parse``), normalise
it, split it into records (``_cut``); per record: validate and score on the compact form,
compute the canonical statements once (the harvester's digest, the publisher-proof check and the
node's signature all use them), and flatten it for the index. No rdflib graph is built on this
path except for the index row and for the DQV statements a single publish makes at once. This
runs in the ingest workers (``_pool.py``) or in the node's own process for small batches; the
node then finishes each record (:meth:`catalogue.publish.CataloguePublisher.settle`).

The analysis stages are an :class:`Analysis`: the catalogue's own (:data:`COMPACT_ANALYSIS`), or
a node's injected rdflib validator and scorer, given graphs converted from the compact form.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rdflib import URIRef

from catalogue.index import flatten_record
from catalogue.ingest.compact import CompactRecord
from catalogue.ingest.terms import text_of
from catalogue.normalise import Repair, normalise_compact, repairs_graph
from catalogue.pipeline import _cut
from catalogue.pipeline._documents import Document, WorkSettings
from catalogue.pipeline._parse import parse_compact
from catalogue.pipeline._view import CompactView
from catalogue.publish import (
    STORED_RECORD_MAX_BYTES,
    Assessment,
    Assessor,
    BulkValidator,
    PublishError,
    WorkedRecord,
    conformance_json,
    no_dataset,
    result_json,
    version_quality,
)
from catalogue.quality import assess_compact, minimum_elements_of
from catalogue.signing import RecordSigner, canonical_statements, canonical_statements_of, ntriples_lines
from catalogue.store import LOCAL_SOURCE, prepare_text
from catalogue.validation import validate_compact
from connector.identity import KeyPair, ProofError
from vocab.rdfio import N_TRIPLES, parse_rdf
from vocab.shacl import ValidationReport


@dataclass(frozen=True)
class Analysis:
    """Validation and scoring of compact records (the stages ``catalogue.validation`` and
    ``catalogue.quality`` own)."""

    validate: Callable[[Sequence[CompactRecord]], Iterable[ValidationReport]]
    assess: Callable[[CompactRecord, str, ValidationReport, bool, bool], Assessment]


def _assess_compact(
    record: CompactRecord, dataset: str, report: ValidationReport, signed: bool, verified: bool
) -> Assessment:
    return assess_compact(record, dataset, report, signed=signed, publisher_verified=verified)


COMPACT_ANALYSIS = Analysis(
    validate=lambda records: [validate_compact(record) for record in records], assess=_assess_compact
)


def rdflib_analysis(validate_many: BulkValidator, assess: Assessor) -> Analysis:
    """A node's own validator and scorer (they take rdflib graphs): the cold path, for tests and
    nodes that inject them."""

    def scored(
        record: CompactRecord, dataset: str, report: ValidationReport, signed: bool, verified: bool
    ) -> Assessment:
        return assess(
            record.to_rdflib(), URIRef(text_of(dataset)), report, signed=signed, publisher_verified=verified
        )

    return Analysis(lambda records: validate_many([record.to_rdflib() for record in records]), scored)


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
    subject: str
    position: int
    record_id: str
    dataset: str
    record: CompactRecord
    repairs: tuple[Repair, ...]
    proofs: list[dict[str, Any]]
    proof_error: ProofError | None
    iri_error: PublishError | None


def work_documents(
    documents: Sequence[Document], settings: WorkSettings, analysis: Analysis = COMPACT_ANALYSIS
) -> list[WorkedDocument]:
    """Every record of every document, worked."""
    cuts: list[_Cut] = []
    shells: list[tuple[WorkedDocument, list[_Cut | WorkedItem]]] = []
    for document in documents:
        try:
            slots = _cut_document(document, settings)
        except PublishError as error:
            shells.append((WorkedDocument(document.name, error=error), []))
            continue
        cuts.extend(slot for slot in slots if isinstance(slot, _Cut))
        shells.append((WorkedDocument(document.name), slots))
    reports = list(analysis.validate([cut.record for cut in cuts])) if cuts else []
    report_of = {id(cut): report for cut, report in zip(cuts, reports, strict=True)}
    for shell, slots in shells:
        for slot in slots:
            if isinstance(slot, WorkedItem):
                shell.items.append(slot)
                continue
            worked = _work_record(slot, report_of[id(slot)], settings, analysis)
            shell.items.append(
                WorkedItem(
                    slot.name,
                    _term_text(slot.subject),
                    slot.position,
                    worked,
                    None,
                    slot.iri_error,
                    slot.repairs,
                )
            )
    return [shell for shell, _ in shells]


def _cut_document(document: Document, settings: WorkSettings) -> list[_Cut | WorkedItem]:
    parsed = parse_compact(
        document.data, document.media_type, base=settings.dataset_base + "/", max_bytes=settings.max_bytes
    )
    normalised, repairs = normalise_compact(parsed, owner=settings.owner, skolem_base=settings.node_base)
    subjects = _cut.record_subjects(normalised)
    if not subjects:
        raise no_dataset()
    slots: list[_Cut | WorkedItem] = []
    for position, subject in enumerate(subjects):
        name = document.name if len(subjects) == 1 else f"{document.name}#{_term_text(subject)}"
        try:
            record = _cut.extract(normalised, subject)
        except PublishError as error:
            slots.append(WorkedItem(name, _term_text(subject), position, error=error))
            continue
        mine = _cut.repairs_of(record, repairs)
        record_id, dataset, record = _cut.name(
            record,
            subject,
            source=settings.source,
            local=settings.source == LOCAL_SOURCE,
            dataset_base=settings.dataset_base,
            fresh=uuid.uuid4().hex[:24],
        )
        iri_error = _cut.iri_problem(record)
        record, proofs, proof_error = _cut.take_proofs(record, dataset)
        slots.append(
            _Cut(name, subject, position, record_id, dataset, record, mine, proofs, proof_error, iri_error)
        )
    return slots


def _term_text(term: str) -> str:
    return term if term[:2] == "_:" else text_of(term)


def _work_record(
    cut: _Cut, report: ValidationReport, settings: WorkSettings, analysis: Analysis
) -> WorkedRecord:
    """Score, canonicalise and flatten one validated record (``catalogue.publish.work_record``)."""
    record, dataset = cut.record, URIRef(text_of(cut.dataset))
    verified = settings.owner is not None

    def scored(signed: bool) -> tuple[dict[str, Any], str]:
        assessment = analysis.assess(record, cut.dataset, report, signed, verified)
        quality = dict(assessment.to_json())
        quality["conformance"] = conformance_json(report)
        ehds = minimum_elements_of(record, cut.dataset)
        if ehds is not None:
            quality["ehds_minimum"] = ehds
        if cut.repairs:
            quality["repairs"] = len(cut.repairs)
        dqv = ""
        if settings.with_dqv:  # the bulk paths leave the DQV statements to be made when read
            provenance = repairs_graph(dataset, [repair.to_json() for repair in cut.repairs])
            dqv = "\n".join(ntriples_lines(assessment.to_dqv(dataset) + provenance))
        return quality, dqv

    quality, dqv = scored(bool(cut.proofs))
    unsigned_quality, unsigned_dqv = scored(False) if cut.proofs else (None, None)
    publishers, named = _cut.publishers_of(record, cut.dataset)
    row = flatten_record(
        CompactView(record), dataset, record_id=cut.record_id, record_modified="", version=0, quality=quality
    )
    content = "\n".join(f"{s} {p} {o} ." for s, p, o in record.triples)
    statements = _signed_statements(record, content)
    signer = _signer(settings.key_file, settings.verification_method)
    warnings_json = tuple(result_json(result) for result in report.warnings)
    violations_json = tuple(result_json(result) for result in report.violations)
    return WorkedRecord(
        record_id=cut.record_id,
        dataset=str(dataset),
        statements=tuple(statements),
        content=content,
        publishers=publishers,
        named_publishers=named,
        proofs=tuple(cut.proofs),
        proof_error=cut.proof_error,
        report=report,
        repairs=cut.repairs,
        quality=quality,
        dqv=dqv,
        row=row,
        linked=_cut.linked_of(record),
        unsigned_quality=unsigned_quality,
        unsigned_dqv=unsigned_dqv,
        warnings_json=warnings_json,
        violations_json=violations_json,
        proof=None if signer is None else signer.sign_statements(statements, str(dataset), cut.proofs),
        signed_by=None if signer is None else signer.verification_method,
        # The stored text, as the node will write it unless settling changes the quality.
        store_text=prepare_text(
            cut.record_id, content, version_quality(quality, warnings_json, violations_json, cut.repairs)
        ),
    )


@lru_cache(maxsize=4)  # one node key per process, read once
def _signer(key_file: str | None, verification_method: str | None) -> RecordSigner | None:
    if key_file is None:
        return None
    return RecordSigner(KeyPair.load(Path(key_file)), verification_method, key_file=Path(key_file))


def _signed_statements(record: CompactRecord, content: str) -> list[str]:
    """The canonical statements proofs sign, exactly as a verifier reading ``content`` finds them."""
    found = canonical_statements_of(record.triples)
    if found is not None:
        return found
    # Blank nodes that do not form trees (rare): rdflib's canonical labelling, on the graph a
    # verifier reads back from the stored text.
    return canonical_statements(parse_rdf(content, N_TRIPLES, "urn:sluis:record", STORED_RECORD_MAX_BYTES))
