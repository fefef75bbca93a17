"""Harvested records through the shared ingest pipeline's work stage, a batch at a time.

The CPU-bound part of ingesting a record (parse, normalise, validate, score, canonicalise,
flatten) is the pipeline's :func:`catalogue.pipeline.work_documents`, the same code publishing
and bulk publishing run; a batch large enough to pay for it goes to a pool of worker processes
(:class:`catalogue.pipeline.WorkerPool`, spawned on first use), so one harvest uses every core
the machine gives while the node's own process only settles and writes. What is harvest's own
stays in the harvester: which version a record shows (:mod:`._versions`), its trust, its origin.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from catalogue.harvest._pages import PageRecord
from catalogue.pipeline import (
    MIN_DOCUMENTS_FOR_WORKERS,
    Document,
    WorkedDocument,
    WorkerPool,
    WorkSettings,
    analysis_for,
    work_documents,
)
from catalogue.publish import CataloguePublisher

_N_TRIPLES = "application/n-triples"


class RecordWorker:
    """Works a harvester's changed records; ``workers`` 0 keeps the work in this process."""

    def __init__(self, publisher: CataloguePublisher, workers: int | None = None) -> None:
        self._publisher = publisher
        self._workers = workers
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()  # sources are harvested in threads of their own

    def start(self) -> float:
        """Start the worker processes now (a large harvest is coming); their start-up CPU
        seconds (0 when records are worked in this process)."""
        if self._workers == 0 or not self._publisher.uses_default_checks:
            return 0.0
        with self._lock:
            if self._pool is None:
                self._pool = WorkerPool(self._workers)
            pool = self._pool
        return pool.start()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def work(self, records: Sequence[PageRecord], source_iri: str) -> list[WorkedDocument]:
        """One worked document per record, in order (each holds the record's one dataset)."""
        publisher = self._publisher
        documents = [
            Document(record.dataset, record.content().encode("utf-8"), _N_TRIPLES) for record in records
        ]
        settings = WorkSettings(
            dataset_base=publisher.dataset_base,
            node_base=publisher.node_base,
            max_bytes=publisher.max_bytes,
            source=source_iri,
            # Signed where they are worked (the worker reads the node's key file itself).
            key_file=None if publisher.signer.key_file is None else str(publisher.signer.key_file),
            verification_method=publisher.signer.verification_method,
        )
        pooled = self._workers != 0 and publisher.uses_default_checks
        if not pooled or len(documents) < MIN_DOCUMENTS_FOR_WORKERS:
            return work_documents(documents, settings, analysis_for(publisher))
        with self._lock:
            if self._pool is None:
                self._pool = WorkerPool(self._workers)
            pool = self._pool
        slices = max(1, min(len(documents), pool.workers * 2))
        size = -(-len(documents) // slices)
        futures = [
            pool.submit(documents[start : start + size], settings) for start in range(0, len(documents), size)
        ]
        return [worked for future in futures for worked in future.result()[0]]
