"""The pipeline's compact path works a record exactly as the rdflib path (``prepare``) does.

Every seed record and a catalogue dump with repairs to make go through both: the worked record
(identity, canonical statements, verdict, quality, index row, repairs) must be the same, or the
speed-up changed what the catalogue says about a record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rdflib import URIRef

from catalogue.api import CatalogueNode, open_node
from catalogue.config import CatalogueConfig
from catalogue.normalise import normalise
from catalogue.pipeline import Document, WorkSettings, work_documents
from catalogue.publish import extract_record, find_record_subjects, record_graph_of, repairs_in
from catalogue.signing import verify_record
from catalogue.store import LOCAL_SOURCE
from tests.catalogue_quality.test_ingest_pipeline import DUMP

SEED = Path(__file__).resolve().parents[2] / "catalogue" / "seed"
SOURCE = "https://portal.example.it/catalog"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogueNode]:
    opened = open_node(tmp_path_factory.mktemp("node"), CatalogueConfig(public_url="http://127.0.0.1:9"))
    try:
        yield opened
    finally:
        opened.close()


def _documents() -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in sorted(SEED.glob("*.ttl"))] + [("dump", DUMP.encode())]


def _blurred(results: Any) -> list[str]:
    """Results as text with blank node labels blurred (each parser labels them its own way)."""
    return sorted(re.sub(r"_:[A-Za-z0-9]+", "_:", str(result)) for result in results)


@pytest.mark.parametrize(("name", "data"), _documents(), ids=[name for name, _ in _documents()])
def test_compact_and_rdflib_paths_work_a_record_alike(node: CatalogueNode, name: str, data: bytes) -> None:
    publisher = node.publisher
    settings = WorkSettings(publisher.dataset_base, publisher.node_base, publisher.max_bytes, source=SOURCE)
    [worked_document] = work_documents([Document(name, data, "text/turtle")], settings)
    graph = publisher.parse(data, "text/turtle")
    repairs = normalise(graph, skolem_base=publisher.node_base)
    subjects = find_record_subjects(graph)
    assert len(worked_document.items) == len(subjects)
    for item, subject in zip(worked_document.items, subjects, strict=True):
        record = extract_record(graph, subject)
        prepared = publisher.prepare(
            graph,
            owner=None,
            extracted=(subject, record),
            lenient=True,
            repairs=repairs_in(record, repairs),
            source=SOURCE,
            with_dqv=False,
        )
        worked = item.worked
        assert worked is not None, item.error
        assert (worked.record_id, worked.dataset) == (prepared.record_id, str(prepared.dataset))
        assert _blurred(item.repairs) == _blurred(repairs_in(record, repairs))
        assert _blurred(worked.report.results) == _blurred(prepared.report.results)
        assert worked.quality == prepared.version.quality["quality"]
        assert _blurred(worked.warnings_json) == _blurred(prepared.version.quality["warnings"])
        # settling stamps the record; an undated dataset takes that stamp as its date
        undated = prepared.row.modified == prepared.row.record_modified
        assert worked.row.modified == ("" if undated else prepared.row.modified)
        assert replace(worked.row, modified="", record_modified="", version=0) == replace(
            prepared.row, modified="", record_modified="", version=0
        )
        # What the proofs sign: the node's proof over the compact path's statements verifies
        # over the rdflib path's reading of the record, and the other way round.
        signed = publisher.signer.sign_statements(worked.statements, worked.dataset)

        assert verify_record(
            record_graph_of(prepared.version, with_quality=False), worked.dataset, signed, node.key_for
        )
        assert prepared.version.source == SOURCE != LOCAL_SOURCE
        assert URIRef(worked.dataset) == prepared.dataset
