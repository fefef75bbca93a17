"""The fast validator gives pyshacl's results: same focus node, path, constraint, severity, value.

Compared on the official DCAT-AP 3.0.1 / HVD / HealthDCAT-AP shapes and on ours, over the official
examples that parse, every seed record, and systematically broken records.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import FOAF, RDF, SKOS

from catalogue.ingest.compact import CompactRecord
from catalogue.validation import FastValidator, RawResult, validate_record
from catalogue.validation._records import profiles_in_one_pass
from catalogue.validation._reference import reference_raw
from catalogue.validation._report import result_key
from tests.catalogue_quality.quality_mutations import mutations
from vocab import shacl

pytestmark = pytest.mark.conformance

Key = tuple[object, ...]


def raw_keys(results: Iterable[RawResult]) -> set[Key]:
    return {(r.focus, r.path, r.component, r.severity, r.value) for r in results}


def assert_same_raw(fast: FastValidator, graph: Graph, label: str) -> int:
    """Fast and pyshacl agree on ``graph``; returns how many results they both gave."""
    fast_conforms, fast_results = fast.validate_raw(graph)
    ref_conforms, ref_results = reference_raw(
        graph, fast.shapes_graph, fast.background_graph, allow_warnings=fast.allow_warnings
    )
    fast_set, ref_set = raw_keys(fast_results), raw_keys(ref_results)
    assert fast_set == ref_set, (
        f"{label}: only fast {sorted(map(str, fast_set - ref_set))[:5]}, "
        f"only pyshacl {sorted(map(str, ref_set - fast_set))[:5]}"
    )
    assert fast_conforms == ref_conforms, label
    return len(ref_set)


def assert_same_report(graph: Graph, label: str) -> bool:
    """Our profiles: validate_record equals vocab.shacl.validate; returns conformance."""
    assert profiles_in_one_pass(graph) == shacl.profiles_for(graph), label
    fast = validate_record(graph)
    reference = shacl.validate(graph)
    fast_keys = {result_key(r) for r in fast.results}
    ref_keys = {result_key(r) for r in reference.results}
    assert fast_keys == ref_keys, (
        f"{label}: only fast {sorted(map(str, fast_keys - ref_keys))[:5]}, "
        f"only pyshacl {sorted(map(str, ref_keys - fast_keys))[:5]}"
    )
    assert fast.conforms == reference.conforms, label
    return reference.conforms


@pytest.fixture(scope="module")
def official_fast(official_split_shapes: Graph) -> FastValidator:
    validator = FastValidator(official_split_shapes)
    assert validator.is_fast, validator.fallback_reason
    return validator


def test_official_shapes_agree_on_every_official_example(
    official_fast: FastValidator, official_examples: dict[str, Graph]
) -> None:
    total = sum(assert_same_raw(official_fast, g, name) for name, g in official_examples.items())
    assert total > 100  # the examples are fragments: most report something


@pytest.mark.parametrize(
    ("folder", "files"),
    [
        ("dcat-ap-hvd-3.0.0", ("hvd-SHACL.ttl",)),
        ("healthdcat-ap-ehds2-draft", ("HealthDCAT-AP_protected-shapes.ttl",)),
        ("healthdcat-ap-ehds2-draft", ("HealthDCAT-AP_sensitive-shapes.ttl",)),
    ],
)
def test_hvd_and_health_official_shapes_agree_on_every_official_example(
    dcat_ap_dir: Path, official_examples: dict[str, Graph], folder: str, files: tuple[str, ...]
) -> None:
    shapes = Graph()
    for name in files:
        shapes.parse(dcat_ap_dir / "shapes" / folder / name)
    fast = FastValidator(shapes)
    assert fast.is_fast, fast.fallback_reason
    for name, graph in official_examples.items():
        assert_same_raw(fast, graph, name)


def test_official_shapes_agree_on_every_seed_record(
    official_fast: FastValidator, seed_graphs: dict[str, Graph]
) -> None:
    for name, graph in seed_graphs.items():
        assert_same_raw(official_fast, graph, name)


def test_our_shapes_agree_with_the_reference_on_official_examples_and_seed_records(
    official_examples: dict[str, Graph], seed_graphs: dict[str, Graph]
) -> None:
    outcomes = [assert_same_report(g, n) for n, g in {**official_examples, **seed_graphs}.items()]
    assert not all(outcomes)
    assert any(outcomes)


@pytest.mark.parametrize("seed_name", ["entsoe-actual-total-load", "thl-hilmo"])
def test_fast_validator_agrees_on_systematically_broken_records(
    seed_name: str, seed_graphs: dict[str, Graph], official_fast: FastValidator
) -> None:
    broken = mutations(seed_graphs[seed_name])
    assert len(broken) >= 15
    failing = 0
    for mutation in broken:
        if not assert_same_report(mutation.graph, f"{seed_name}: {mutation.name}"):
            failing += 1
        assert_same_raw(official_fast, mutation.graph, f"official, {seed_name}: {mutation.name}")
    # Not vacuous: most edits break the record under our shapes (some, such as removing the
    # type of a contact point, only take a node out of a shape's targets).
    assert failing >= len(broken) * 0.6


def test_background_focus_nodes_are_revalidated_when_a_record_touches_them(
    official_split_shapes: Graph, seed_graphs: dict[str, Graph]
) -> None:
    """Concepts of the background are focus nodes too; a record adding to one changes its results."""
    background = Graph()
    for triple in shacl.vocabularies_graph().triples((None, SKOS.inScheme, None)):
        concept = triple[0]
        for t in shacl.vocabularies_graph().triples((concept, None, None)):
            background.add(t)
        if len(background) > 400:
            break
    fast = FastValidator(official_split_shapes, background)
    concept = next(iter(background.subjects(RDF.type, SKOS.Concept)))
    record = seed_graphs["elia-total-load"]
    touched = Graph()
    for t in record:
        touched.add(t)
    touched.add((concept, SKOS.prefLabel, Literal(7)))  # a label of the wrong kind
    touched.add((URIRef("https://data.sluis.example/concept/new"), RDF.type, SKOS.Concept))
    assert assert_same_raw(fast, record, "untouched record") >= 0
    assert assert_same_raw(fast, touched, "record touching the background") > 0
    # A report about the record runs only the cached evaluations the record can change, yet
    # holds everything pyshacl reports about the record's nodes, background concepts included.
    touched.add((concept, RDF.type, FOAF.Agent))  # now a focus node of the agent shapes
    report = fast.validate_compact(CompactRecord.from_rdflib(touched))
    reference = fast.reference(touched)
    assert {result_key(r) for r in report.results} == {result_key(r) for r in reference.results}
    assert any(r.focus_node == str(concept) for r in report.results)
