"""Fixtures of the catalogue-quality tests: the official DCAT-AP shapes and examples, the seed records."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph

from catalogue.seed import seed_files

SPLIT_SHAPE_FILES = (
    "shapes.ttl",
    "range.ttl",
    "mdr-vocabularies.shape.ttl",
    "shapes_recommended.ttl",
    "deprecateduris.ttl",
)


@pytest.fixture(scope="session")
def dcat_ap_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "dcat-ap"


@pytest.fixture(scope="session")
def official_split_shapes(dcat_ap_dir: Path) -> Graph:
    """The official DCAT-AP 3.0.1 split shapes, read in place (never copied)."""
    graph = Graph()
    for name in SPLIT_SHAPE_FILES:
        graph.parse(dcat_ap_dir / "shapes" / "dcat-ap-3.0.1" / "split" / name)
    return graph


@pytest.fixture(scope="session")
def official_examples(dcat_ap_dir: Path) -> dict[str, Graph]:
    """Every official DCAT-AP 3.0.1, HVD and HealthDCAT-AP Turtle example that parses."""
    found: dict[str, Graph] = {}
    folders = ("dcat-ap-3.0.1", "dcat-ap-hvd-3.0.0", "healthdcat-ap-ehds2-draft")
    for folder in folders:
        for path in sorted((dcat_ap_dir / "examples" / folder).glob("*.ttl")):
            graph = Graph()
            try:
                graph.parse(path)
            except Exception:  # three upstream examples are known not to parse
                continue
            found[f"{folder}/{path.name}"] = graph
    assert len(found) >= 25
    return found


@pytest.fixture(scope="session")
def seed_graphs() -> dict[str, Graph]:
    return {path.stem: Graph().parse(path) for path in seed_files()}
