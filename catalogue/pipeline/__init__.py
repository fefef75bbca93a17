"""The one ingest pipeline for publishing, bulk publishing and harvesting.

``IngestPipeline(publisher).ingest(documents, source=…, owner=…, mode=…, trust=…)`` takes RDF
documents (records, catalogue dumps, harvested pages) and returns, per document, what became of
each of its records (stored, unchanged, quarantined, rejected, with repairs, violations and
quality). The CPU-bound stages run in a pool of worker processes sized to the machine; each batch
is written to store and index all or nothing, also across a crash. See ``_pipeline.py``.
"""

from catalogue.pipeline._documents import Document, IngestMode, WorkSettings
from catalogue.pipeline._pipeline import (
    DEFAULT_BATCH_DOCUMENTS,
    MIN_DOCUMENTS_FOR_WORKERS,
    DocumentResult,
    IngestPipeline,
    analysis_for,
)
from catalogue.pipeline._pool import WorkerPool, default_workers, long_lived_frozen
from catalogue.pipeline._work import WorkedDocument, WorkedItem, work_documents

__all__ = [
    "DEFAULT_BATCH_DOCUMENTS",
    "MIN_DOCUMENTS_FOR_WORKERS",
    "Document",
    "DocumentResult",
    "IngestMode",
    "IngestPipeline",
    "WorkSettings",
    "WorkedDocument",
    "WorkedItem",
    "WorkerPool",
    "analysis_for",
    "default_workers",
    "long_lived_frozen",
    "work_documents",
]
