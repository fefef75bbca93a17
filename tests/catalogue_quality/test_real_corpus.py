"""What real publishers produce: every parsable dataset stored, repaired and scored; the rest named.

The corpus (``../shared/corpus/dcat-real/``, beside the conformance data) holds real DCAT-AP
from Italian, Swiss, German, CKAN, GeoDCAT-AP and SEMIC sources: whole catalogue files, one
record per file, and files that do not parse. Nothing of it is valid DCAT-AP 3 as it stands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph

from catalogue.api import CatalogueNode, open_node
from catalogue.config import CatalogueConfig
from catalogue.normalise import normalise
from catalogue.publish import IngestStatus, PublishError
from catalogue.validation import FastValidator
from catalogue.validation._reference import reference_raw
from tests.conftest import CONFORMANCE_DIR
from vocab.shacl import background_for, vocabularies_graph

CORPUS = CONFORMANCE_DIR.parent / "corpus" / "dcat-real"
SOURCE = "https://corpus.example.org/"

pytestmark = pytest.mark.conformance


def _media_type(path: Path) -> str:
    return "text/turtle" if path.suffix == ".ttl" else "application/rdf+xml"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip(f"the real-world DCAT corpus is not at {CORPUS} (it lives beside the conformance data)")
    found: dict[str, Any] = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
    return found


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogueNode]:
    opened = open_node(tmp_path_factory.mktemp("corpus"), CatalogueConfig(public_url="http://127.0.0.1:9"))
    try:
        yield opened
    finally:
        opened.close()


def test_every_dataset_of_every_parsable_file_is_stored_with_its_conformance_and_repairs(
    manifest: dict[str, Any], node: CatalogueNode
) -> None:
    stored: dict[str, Any] = {}
    seen: set[str] = set()
    repaired = 0
    for name, entry in sorted(manifest["whole_files"].items()):
        path = CORPUS / name
        results = node.pipeline.ingest_document(path.read_bytes(), _media_type(path), source=SOURCE + name)
        assert len(results) == entry["datasets"], name
        for result in results:
            assert result.status in (IngestStatus.STORED, IngestStatus.UNCHANGED), (name, result.reason)
            seen.add(result.dataset or "")
            if result.status is IngestStatus.STORED:
                stored.setdefault(result.dataset or "", result)
    # records whose source file held only them (the others came with their whole file)
    for name, entry in sorted(manifest["records"].items()):
        if entry["whole_file"] is not None:
            continue
        path = CORPUS / name
        [result] = node.pipeline.ingest_document(path.read_bytes(), "text/turtle", source=SOURCE + name)
        assert result.status in (IngestStatus.STORED, IngestStatus.UNCHANGED), (name, result.reason)
        seen.add(result.dataset or "")
        if result.status is IngestStatus.STORED:
            stored.setdefault(result.dataset or "", result)
    expected = {e["dataset"] for e in manifest["records"].values() if e["dataset"] is not None}
    assert expected <= seen
    for dataset, result in stored.items():
        version = node.store.current(result.record_id or "")
        assert version is not None, dataset
        conformance = version.quality["quality"]["conformance"]
        assert conformance["violations"] == len(version.quality["violations"]), dataset
        assert sum(conformance["violations_by_profile"].values()) == conformance["violations"]
        assert version.quality["repairs"] == [repair.to_json() for repair in result.repairs]
        repaired += bool(result.repairs)
        for violation in version.quality["violations"]:
            assert violation["explanation"], violation
    # real publishers' deviations are repaired, not refused: most records needed some
    assert repaired > len(stored) // 2


def test_unparsable_files_are_reported_by_name_with_a_line(
    manifest: dict[str, Any], node: CatalogueNode
) -> None:
    failed: dict[str, int | None] = {}
    for name in sorted(manifest["unparsable"]):
        path = CORPUS / name
        with pytest.raises(PublishError) as raised:
            node.pipeline.ingest_document(path.read_bytes(), _media_type(path), source=SOURCE + name)
        assert raised.value.status == 400, name
        failed[name] = raised.value.extra.get("line")
    assert set(failed) == set(manifest["unparsable"])
    assert all(line is not None for line in failed.values()), failed


@pytest.fixture(scope="module")
def official_with_full_vocabularies(official_split_shapes: Graph) -> FastValidator:
    validator = FastValidator(official_split_shapes, vocabularies_graph())
    assert validator.is_fast, validator.fallback_reason
    return validator


def test_with_the_official_shapes_and_full_vocabularies_our_verdicts_are_pyshacls(
    manifest: dict[str, Any], official_with_full_vocabularies: FastValidator
) -> None:
    fast = official_with_full_vocabularies
    compared = 0
    for name in sorted(manifest["records"]):
        graph = Graph()
        graph.parse(CORPUS / name, format="turtle")
        normalise(graph, skolem_base="http://127.0.0.1:9")
        nodes = set(graph.subjects())
        _, fast_results = fast.validate_raw(graph)
        _, ref_results = reference_raw(graph, fast.shapes_graph, background_for(graph), allow_warnings=True)
        ours = {(r.focus, r.path, r.component, r.severity, r.value) for r in fast_results if r.focus in nodes}
        theirs = {
            (r.focus, r.path, r.component, r.severity, r.value) for r in ref_results if r.focus in nodes
        }
        assert ours == theirs, (
            name,
            sorted(map(str, ours - theirs))[:3],
            sorted(map(str, theirs - ours))[:3],
        )
        verdict = not any(r[3] == "Violation" for r in ours)
        assert verdict == (not any(r[3] == "Violation" for r in theirs)), name
        compared += 1
    assert compared == len(manifest["records"])
