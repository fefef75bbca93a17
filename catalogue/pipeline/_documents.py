"""What goes into the ingest pipeline: documents, the publishing mode, and the per-call settings.

Plain, picklable values: a batch of documents crosses into worker processes as bytes and comes
back as strings and rows (``catalogue.publish.WorkedRecord``), never as rdflib graphs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from catalogue.store import LOCAL_SOURCE


class IngestMode(StrEnum):
    """What a record with SHACL violations becomes."""

    STRICT = "strict"
    """Rejected (the 422 of direct publishing); a failing publisher proof is a 422 too."""
    LENIENT = "lenient"
    """Stored with its conformance in its quality (harvesting; lenient publisher tokens); a
    failing publisher proof quarantines the record."""


@dataclass(frozen=True)
class Document:
    """One RDF document: a record, or a catalogue dump that is split into records.

    ``name`` labels its results (a file name, a URL); a dump's records are ``name#dataset``.
    """

    name: str
    data: bytes
    media_type: str


@dataclass(frozen=True)
class WorkSettings:
    """What a worker needs to turn documents into worked records (the same for a whole call)."""

    dataset_base: str
    node_base: str
    max_bytes: int
    source: str = LOCAL_SOURCE
    owner: str | None = None
    with_dqv: bool = False
    key_file: str | None = None
    """The node's key file, when the records are signed where they are worked."""
    verification_method: str | None = None
