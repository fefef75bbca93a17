"""The lineage record of an AI job, as PROV-O JSON-LD.

Evidence for the EU AI Act's training-data documentation: which datasets went into the job,
exactly which bytes (SHA-256 of every result received), under which agreement and purpose, and
where the job ran. The context is inline (no remote context is ever needed to read it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.jobs.data import ReadRecord

LINEAGE_CONTEXT: dict[str, Any] = {
    "prov": "http://www.w3.org/ns/prov#",
    "dct": "http://purl.org/dc/terms/",
    "dcat": "http://www.w3.org/ns/dcat#",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "sluis": "https://w3id.org/sluis/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "spdx": "http://spdx.org/rdf/terms#",
    "used": {"@id": "prov:used", "@type": "@id"},
    "wasAssociatedWith": {"@id": "prov:wasAssociatedWith", "@type": "@id"},
    "wasDerivedFrom": {"@id": "prov:wasDerivedFrom", "@type": "@id"},
    "wasGeneratedBy": {"@id": "prov:wasGeneratedBy", "@type": "@id"},
    "startedAtTime": {"@id": "prov:startedAtTime", "@type": "xsd:dateTime"},
    "endedAtTime": {"@id": "prov:endedAtTime", "@type": "xsd:dateTime"},
    "generatedAtTime": {"@id": "prov:generatedAtTime", "@type": "xsd:dateTime"},
    "atLocation": {"@id": "prov:atLocation", "@type": "@id"},
    "purpose": {"@id": "sluis:purpose", "@type": "@id"},
    "agreement": {"@id": "sluis:agreement", "@type": "@id"},
    "transfer": {"@id": "sluis:transfer"},
    "provider": {"@id": "sluis:provider", "@type": "@id"},
    "query": {"@id": "sluis:query"},
    "queryHash": {"@id": "sluis:queryHash"},
    "rows": {"@id": "sluis:rows", "@type": "xsd:integer"},
    "bytes": {"@id": "sluis:bytes", "@type": "xsd:integer"},
    "checksum": {"@id": "spdx:checksum"},
    "algorithm": {"@id": "spdx:algorithm", "@type": "@id"},
    "checksumValue": {"@id": "spdx:checksumValue"},
}
SHA256 = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"


@dataclass(frozen=True)
class DatasetUse:
    """One dataset the job read through one transfer, under one agreement."""

    dataset_id: str
    provider_id: str
    agreement_id: str
    transfer_id: str
    purpose: str | None
    reads: tuple[ReadRecord, ...]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def lineage_record(
    job_id: str, consumer_id: str, purpose: str, compute_site: str | None, started: datetime,
    uses: Sequence[DatasetUse], ended: datetime | None = None,
) -> dict[str, Any]:
    """The PROV-O document: the job as a ``prov:Activity`` that used each read result (a
    ``prov:Entity`` with its SHA-256), each derived from a dataset under an agreement."""
    activity = f"urn:sluis:job:{job_id}"
    graph: list[dict[str, Any]] = []
    used: list[str] = []
    for use in uses:
        graph.append(
            {"@id": use.dataset_id, "@type": ["dcat:Dataset", "prov:Entity"], "provider": use.provider_id}
        )
        graph.append({"@id": use.agreement_id, "@type": "odrl:Agreement", "provider": use.provider_id,
                      "purpose": use.purpose})
        for number, read in enumerate(use.reads, start=1):
            entity = f"urn:sluis:read:{use.transfer_id}:{number}"
            used.append(entity)
            graph.append({
                "@id": entity, "@type": "prov:Entity", "wasDerivedFrom": use.dataset_id,
                "agreement": use.agreement_id, "transfer": use.transfer_id,
                "generatedAtTime": _stamp(read.at),
                "query": read.sql or "SELECT * FROM data", "queryHash": read.query_hash,
                "rows": read.rows, "bytes": read.bytes,
                "checksum": {
                    "@type": "spdx:Checksum", "algorithm": SHA256, "checksumValue": read.content_sha256,
                },
            })
    job: dict[str, Any] = {
        "@id": activity, "@type": "prov:Activity", "dct:identifier": job_id,
        "wasAssociatedWith": consumer_id, "purpose": purpose, "startedAtTime": _stamp(started),
        "endedAtTime": _stamp(ended or datetime.now(UTC)), "used": used,
    }
    if compute_site:
        job["atLocation"] = compute_site
    return {"@context": LINEAGE_CONTEXT, "@graph": [job, *graph]}
