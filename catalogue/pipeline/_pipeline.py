"""The one ingest pipeline: direct publishing, bulk publishing and harvesting all come through here.

A call takes documents (a record, a catalogue dump, a harvested page) and goes batch by batch:

1. **work** (``_work.py``), in the worker processes when the batch is large enough to pay for
   them, else here: parse once, normalise, split into records, validate, score, canonicalise
   (the canonical statements are computed once and shared by the publisher-proof check, the
   node's signature and a harvester's digest), flatten for the index;
2. **settle** under the writer lock, in this process: the record's identity against the store
   (409 for a dataset already published here, a new version for a harvested one), the owner,
   the publisher's proof, strict or lenient verdict, the trust check, the node's signature;
3. **commit** the batch: store and index in one batch under the write journal
   (``RecordStore.pending``), so a batch is all or nothing, also across a ``kill -9``
   (:mod:`catalogue.reconcile`).

Records that need the store to be worked (one linking to a record the store holds, whose
description validation must see) are worked again in this process with that context, so the
verdicts are always those of :meth:`CataloguePublisher.prepare`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, field, replace

from rdflib import URIRef

from catalogue.index import TRUST_UNTRUSTED
from catalogue.normalise import normalise
from catalogue.pipeline._documents import Document, IngestMode, WorkSettings
from catalogue.pipeline._pool import WorkerPool, long_lived_frozen
from catalogue.pipeline._work import (
    COMPACT_ANALYSIS,
    Analysis,
    WorkedDocument,
    WorkedItem,
    rdflib_analysis,
    work_documents,
)
from catalogue.publish import (
    CataloguePublisher,
    IngestStatus,
    PreparedRecord,
    PublishError,
    RecordResult,
    TrustCheck,
    extract_record,
    find_record_subjects,
    repairs_in,
)
from catalogue.store import LOCAL_SOURCE

# Documents per batch: each batch is one store/index write (one journal entry) and one unit of
# loss on a crash; 500 one-record documents is a few MB of N-Quads.
DEFAULT_BATCH_DOCUMENTS = 500
# Below this many documents a batch is worked here. A worker costs seconds of CPU to start (it
# imports the stack and compiles the shapes it meets), what ~2,000 records cost to work: small
# publishes and harvested pages of a few records are done before a worker would be ready.
MIN_DOCUMENTS_FOR_WORKERS = 200


@dataclass(frozen=True)
class DocumentResult:
    """One document's outcome: an error for the whole document, or one result per record."""

    name: str
    records: list[RecordResult] = field(default_factory=list)
    error: PublishError | None = None


@dataclass(frozen=True)
class _Call:
    source: str
    owner: str | None
    lenient: bool
    trust: TrustCheck | None
    atomic: bool
    bulk: bool
    with_dqv: bool


class IngestPipeline:
    """Documents in, records stored and indexed; see the module docstring for the stages."""

    def __init__(
        self,
        publisher: CataloguePublisher,
        *,
        workers: int | None = None,
        batch_documents: int = DEFAULT_BATCH_DOCUMENTS,
    ) -> None:
        self.publisher = publisher
        self.batch_documents = max(1, batch_documents)
        self._pool = WorkerPool(workers)
        self._worker_cpu: list[float] = []
        self._worker_compiling: list[float] = []

    def close(self) -> None:
        self._pool.close()

    @property
    def worker_cpu_seconds(self) -> float:
        """CPU seconds the worker processes spent on batches so far (start-up not included)."""
        return sum(self._worker_cpu)

    @property
    def worker_compile_seconds(self) -> float:
        """Of :attr:`worker_cpu_seconds`, what the workers spent compiling the shapes of profile
        combinations they met for the first time (once per worker and combination)."""
        return sum(self._worker_compiling)

    def start_workers(self) -> float:
        """Start the worker processes before the first batch (a bulk run); their start-up CPU seconds."""
        return self._pool.start()

    # ---- entry points ---------------------------------------------------------------------------
    def ingest(
        self,
        documents: Iterable[Document],
        *,
        source: str = LOCAL_SOURCE,
        owner: str | None = None,
        mode: IngestMode = IngestMode.LENIENT,
        trust: TrustCheck | None = None,
        atomic: bool = False,
        with_dqv: bool = False,
        bulk: bool = True,
        on_document: Callable[[DocumentResult], None] | None = None,
    ) -> list[DocumentResult]:
        """Ingest ``documents``; one :class:`DocumentResult` per document, in order.

        * ``source``: ``catalogue.store.LOCAL_SOURCE`` for publishing here, else the harvest
          source's IRI: a record's identity is then (source, dataset IRI), ingesting it again
          makes a new version (or nothing, ``unchanged``), and a dataset held through another
          source or published here gets no second record;
        * ``owner``: the publisher IRI a token vouches for (it must be the records'
          ``dct:publisher``), or None (harvest, bulk import: the record's own publisher owns it);
        * ``mode``: strict rejects records with violations; lenient stores them with their
          conformance in their quality;
        * ``trust``: called with each record's dataset IRI and canonical statements; a reason
          returned quarantines the record (stored, never shown as trusted);
        * ``atomic``: all records of the call or none: the first rejection raises its
          :class:`PublishError` (naming the dataset) and nothing is written;
        * ``with_dqv``: make the DQV statements now (single publishes) instead of at first read;
        * ``bulk``: batches of only new records go through the store's bulk loader;
        * ``on_document``: called with each document's result once its batch is committed
          (progress).

        A document that cannot be read, or holds no dataset, is a ``DocumentResult`` with its
        ``error`` (400 with line and column, 413, 415, 422) unless ``atomic``, when it raises.
        """
        call = _Call(source, owner, mode is IngestMode.LENIENT, trust, atomic, bulk, with_dqv)
        settings = WorkSettings(
            dataset_base=self.publisher.dataset_base,
            node_base=self.publisher.node_base,
            max_bytes=self.publisher.max_bytes,
            source=source,
            owner=owner,
            with_dqv=with_dqv,
            key_file=None if self.publisher.signer.key_file is None else str(self.publisher.signer.key_file),
            verification_method=self.publisher.signer.verification_method,
        )
        results: list[DocumentResult] = []
        batches = _batches(documents, self.batch_documents if not atomic else None)
        with ExitStack() as frozen:  # while workers send worked records (see long_lived_frozen)
            for batch, worked in self._worked(batches, settings, frozen):
                finished = self._settle_and_commit(batch, worked, call)
                for document in finished:
                    if on_document is not None:
                        on_document(document)
                results.extend(finished)
        return results

    def ingest_document(
        self,
        data: bytes,
        media_type: str,
        *,
        name: str = "",
        source: str = LOCAL_SOURCE,
        owner: str | None = None,
        mode: IngestMode = IngestMode.LENIENT,
        trust: TrustCheck | None = None,
        atomic: bool = False,
        with_dqv: bool = False,
        bulk: bool = True,
    ) -> list[RecordResult]:
        """One document; raises its document-level :class:`PublishError` (harvest pages, dumps)."""
        [result] = self.ingest(
            [Document(name, data, media_type)],
            source=source,
            owner=owner,
            mode=mode,
            trust=trust,
            atomic=atomic,
            with_dqv=with_dqv,
            bulk=bulk,
        )
        if result.error is not None:
            raise result.error
        return result.records

    def publish_document(
        self, data: bytes, media_type: str, *, owner: str | None, strict: bool = True
    ) -> list[RecordResult]:
        """Direct publishing (``POST /datasets``) of a document with one dataset or many (a dump).

        Strict: every record must conform, or nothing is written (the first failure is raised).
        Not strict: every record that can be stored is, with its conformance in its quality; a
        document whose records were all rejected raises the first record's error, so a
        single-record document answers exactly as a single publish.
        """
        results = self.ingest_document(
            data,
            media_type,
            owner=owner,
            mode=IngestMode.STRICT if strict else IngestMode.LENIENT,
            atomic=strict,
            with_dqv=True,
            bulk=False,  # one transaction: a single publish never uses the bulk loader
        )
        if not any(result.status is not IngestStatus.REJECTED for result in results):
            first = next((result.error for result in results if result.error is not None), None)
            if first is not None:
                raise first
        return results

    # ---- stage 1: work -------------------------------------------------------------------------
    def _worked(
        self, batches: Iterator[list[Document]], settings: WorkSettings, frozen: ExitStack
    ) -> Iterator[tuple[list[Document], list[WorkedDocument]]]:
        """Each batch with its worked documents; the next batch is worked while one is written.

        The first batch sent to the workers freezes the node's long-lived objects until the call
        ends (``frozen``), so receiving worked records does not set off full collections.
        """
        ahead: tuple[list[Document], list[Future[tuple[list[WorkedDocument], float, float]]]] | None = None
        pooled = False
        for batch in batches:
            if not self._use_workers(batch):
                if ahead is not None:
                    yield ahead[0], self._gathered(ahead[1])
                    ahead = None
                yield batch, self._work_here(batch, settings)
                continue
            if not pooled:
                frozen.enter_context(long_lived_frozen())
                pooled = True
            submitted = (batch, self._submit(batch, settings))
            if ahead is not None:
                yield ahead[0], self._gathered(ahead[1])
            ahead = submitted
        if ahead is not None:
            yield ahead[0], self._gathered(ahead[1])

    def _gathered(
        self, futures: Sequence[Future[tuple[list[WorkedDocument], float, float]]]
    ) -> list[WorkedDocument]:
        documents: list[WorkedDocument] = []
        for future in futures:
            worked, seconds, compiling = future.result()
            documents.extend(worked)
            self._worker_cpu.append(seconds)
            self._worker_compiling.append(compiling)
        return documents

    def _use_workers(self, batch: Sequence[Document]) -> bool:
        return len(batch) >= MIN_DOCUMENTS_FOR_WORKERS and self.publisher.uses_default_checks

    def _submit(
        self, batch: Sequence[Document], settings: WorkSettings
    ) -> list[Future[tuple[list[WorkedDocument], float, float]]]:
        # Twice as many slices as workers evens out documents of different sizes.
        slices = max(1, min(len(batch), self._pool.workers * 2))
        size = -(-len(batch) // slices)
        return [
            self._pool.submit(batch[start : start + size], settings) for start in range(0, len(batch), size)
        ]

    def _work_here(self, batch: Sequence[Document], settings: WorkSettings) -> list[WorkedDocument]:
        return work_documents(batch, settings, analysis_for(self.publisher))

    # ---- stages 2 and 3: settle and commit ----------------------------------------------------
    def _settle_and_commit(
        self, batch: Sequence[Document], worked: Sequence[WorkedDocument], call: _Call
    ) -> list[DocumentResult]:
        ready: list[tuple[int, PreparedRecord, WorkedItem, IngestStatus]] = []
        outcomes: list[list[RecordResult]] = [[] for _ in batch]
        errors: list[PublishError | None] = [None] * len(batch)
        seen: set[str] = set()
        with self.publisher.writing():
            for position, (document, done) in enumerate(zip(batch, worked, strict=True)):
                if done.error is not None:
                    if call.atomic:
                        raise done.error
                    errors[position] = done.error
                    continue
                for item in done.items:
                    settled = self._settle(document, item, call, seen)
                    if isinstance(settled, RecordResult):
                        outcomes[position].append(settled)
                    else:
                        ready.append((position, settled[0], item, settled[1]))
            if ready:
                self.publisher.commit([prepared for _, prepared, _, _ in ready], bulk=call.bulk)
        for position, prepared, item, status in ready:
            quality = dict(prepared.version.quality.get("quality", {}))
            outcomes[position].append(
                RecordResult(
                    status,
                    str(prepared.dataset),
                    prepared.record_id,
                    prepared.version.version,
                    prepared.created,
                    item.repairs,
                    tuple(prepared.report.violations),
                    tuple(prepared.report.warnings),
                    quality,
                    reason=quality.get("quarantined"),
                    name=item.name,
                )
            )
        return [
            DocumentResult(document.name, outcomes[position], errors[position])
            for position, document in enumerate(batch)
        ]

    def _settle(
        self, document: Document, item: WorkedItem, call: _Call, seen: set[str]
    ) -> RecordResult | tuple[PreparedRecord, IngestStatus]:
        worked = item.worked
        try:
            if worked is None:  # cutting the record out of its document failed
                raise item.error or PublishError(
                    422, "no-record", "No record", "the record could not be cut out", [("body", "no record")]
                )
            existing = self.publisher.existing_for(
                worked.record_id, URIRef(worked.dataset), source=call.source
            )
            if item.iri_error is not None:
                raise item.iri_error
            if self._needs_context(worked.linked):
                prepared = self._prepare_here(document, item, call)
            else:
                prepared = self.publisher.settle(
                    worked,
                    owner=call.owner,
                    existing=existing,
                    lenient=call.lenient,
                    trust=call.trust,
                    source=call.source,
                )
            if prepared.record_id in seen:
                raise PublishError(
                    409,
                    "duplicate-in-batch",
                    "Dataset twice in one batch",
                    f"{prepared.dataset} appears twice",
                    [("body", "duplicate dataset")],
                )
        except PublishError as error:
            if call.atomic:
                error.extra.setdefault("dataset", item.subject)
                raise
            report = worked.report if worked is not None else None
            return RecordResult(
                IngestStatus.REJECTED,
                item.subject,
                repairs=item.repairs,
                violations=tuple(report.violations) if report else (),
                warnings=tuple(report.warnings) if report else (),
                reason=error.detail,
                error=error,
                name=item.name,
            )
        seen.add(prepared.record_id)
        if call.source != LOCAL_SOURCE and existing is not None:
            unchanged = self._unchanged(prepared, item, existing_source=existing.source, call=call)
            if unchanged is not None:
                return unchanged
        quality = prepared.version.quality.get("quality", {})
        if quality.get("quarantined"):
            # Stored and findable, never shown as trusted (the trust facet says so).
            facets = {**prepared.row.facets, "trust": (TRUST_UNTRUSTED,)}
            return replace(prepared, row=replace(prepared.row, facets=facets)), IngestStatus.QUARANTINED
        return prepared, IngestStatus.STORED

    def _unchanged(
        self, prepared: PreparedRecord, item: WorkedItem, *, existing_source: str, call: _Call
    ) -> RecordResult | None:
        """A harvested record held already: from another path (kept as it is) or unchanged."""
        current = self.publisher.store.current(prepared.record_id)
        if current is None:
            return None
        elsewhere = not current.deleted and current.source != call.source
        same = not current.deleted and sorted(current.content.splitlines()) == sorted(
            prepared.version.content.splitlines()
        )
        if not (elsewhere or same):
            return None
        return RecordResult(
            IngestStatus.UNCHANGED,
            str(prepared.dataset),
            prepared.record_id,
            current.version,
            repairs=item.repairs,
            violations=tuple(prepared.report.violations),
            warnings=tuple(prepared.report.warnings),
            quality=dict(current.quality.get("quality", {})),
            reason=f"held from {current.source}" if elsewhere else None,
            name=item.name,
        )

    def _needs_context(self, linked: Sequence[str]) -> bool:
        return any(self.publisher.store.record_for_dataset(target) for target in linked)

    def _prepare_here(self, document: Document, item: WorkedItem, call: _Call) -> PreparedRecord:
        """Work the record again in this process, validated with the linked records it names."""
        graph = self.publisher.parse(document.data, document.media_type)
        repairs = normalise(graph, owner=call.owner, skolem_base=self.publisher.node_base)
        subject = find_record_subjects(graph)[item.position]
        record = extract_record(graph, subject)
        return self.publisher.prepare(
            graph,
            owner=call.owner,
            extracted=(subject, record),
            lenient=call.lenient,
            repairs=repairs_in(record, repairs),
            source=call.source,
            trust=call.trust,
            with_dqv=call.with_dqv,
        )


def analysis_for(publisher: CataloguePublisher) -> Analysis:
    """The validation and scoring ``publisher`` runs: the catalogue's own on the compact form, or
    the validator and scorer injected into it (on graphs converted from the compact form)."""
    if publisher.uses_default_checks:
        return COMPACT_ANALYSIS
    return rdflib_analysis(publisher.validate_many, publisher.assess)


def _batches(documents: Iterable[Document], size: int | None) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for document in documents:
        batch.append(document)
        if size is not None and len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
