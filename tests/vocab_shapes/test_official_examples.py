"""Our shapes against the official DCAT-AP 3.0.1 and HVD shapes, on the official examples.

The official examples are fragments, most of them missing mandatory properties. On every one
that parses, our shapes (with our vocabularies) must report the same results, keyed by focus
node, path and kind of constraint component, as the official shapes given the same
vocabularies: no more, no fewer, except the differences listed in DOCUMENTED_DIFFERENCES (also
in docs/shapes.md), each of which must actually occur, so the table cannot go stale.

Both sides are run by the same function (`vocab.shacl.run_pyshacl`, no inference, record plus
vocabularies, only results about the record's own nodes). Both read the part of the complete EU
tables that `background_for` selects (the tables hold tens of thousands of concepts; pySHACL
over all of them per example takes minutes); the agreement of the fast validator with the whole
tables is checked in tests/catalogue_quality/test_real_corpus.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rdflib import Graph

from vocab.shacl import (
    Profile,
    ValidationResult,
    background_for,
    run_pyshacl,
    shapes_graph,
)

pytestmark = pytest.mark.conformance

DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
VCARD = "http://www.w3.org/2006/vcard/ns#"

CORE_SHAPES = ("split/shapes.ttl", "split/range.ttl", "split/mdr-vocabularies.shape.ttl")
CORE_RECOMMENDED = "split/shapes_recommended.ttl"
# Upstream examples that are not valid Turtle (listed in the conformance README).
UNPARSEABLE = {
    "example-bee-population-dataset-series-api.ttl",
    "example-bee-population-dataset-series-combined.ttl",
    "example-bees_wasps_dataset.ttl",
}

Key = tuple[str, str, str | None, str]  # severity, focus node, path, constraint component (local name)


@dataclass(frozen=True)
class Difference:
    """A kind of result one side reports and the other does not, and why."""

    suite: str  # "dcat-ap" or "hvd"
    only_in: str  # "official" or "ours"
    severity: str
    path: str
    component: str
    reason: str

    def covers(self, key: Key) -> bool:
        return (key[0], key[2], key[3]) == (self.severity, self.path, self.component)


_RDFS_RESOURCE = (
    "the official HVD shapes require sh:class rdfs:Resource, which an IRI only satisfies when the "
    "data states `rdf:type rdfs:Resource` or RDFS entailment is on; every IRI is a resource, so "
    "we check the node kind only"
)
_CLASS = "ClassConstraintComponent"
DOCUMENTED_DIFFERENCES: tuple[Difference, ...] = (
    Difference("hvd", "official", "Violation", DCAT + "accessURL", _CLASS, _RDFS_RESOURCE),
    Difference("hvd", "official", "Violation", DCAT + "endpointURL", _CLASS, _RDFS_RESOURCE),
    Difference("hvd", "official", "Violation", DCAT + "endpointDescription", _CLASS, _RDFS_RESOURCE),
    Difference("hvd", "official", "Violation", VCARD + "hasURL", _CLASS, _RDFS_RESOURCE),
    Difference(
        "dcat-ap",
        "official",
        "Warning",
        DCT + "publisher",
        "NodeConstraintComponent",
        "the official vocabulary shapes warn when a publisher is not in the EU corporate-body table; "
        "almost no publisher outside the EU institutions is, so we do not ship that table or warn",
    ),
)


def _load(*paths: Path) -> Graph:
    graph = Graph()
    for path in paths:
        graph.parse(path, format="turtle")
    return graph


def _key(result: ValidationResult) -> Key:
    return (result.severity, result.focus_node, result.path, result.constraint.rpartition("#")[2])


@dataclass
class Suite:
    name: str
    examples: Path
    official: Graph
    ours: Graph


@pytest.fixture(scope="module")
def suites(conformance_dir: Path) -> dict[str, Suite]:
    shapes = conformance_dir / "dcat-ap" / "shapes"
    examples = conformance_dir / "dcat-ap" / "examples"
    core = shapes / "dcat-ap-3.0.1"
    return {
        "dcat-ap": Suite(
            "dcat-ap",
            examples / "dcat-ap-3.0.1",
            _load(*(core / name for name in (*CORE_SHAPES, CORE_RECOMMENDED))),
            shapes_graph([Profile.DCAT_AP]),
        ),
        "hvd": Suite(
            "hvd",
            examples / "dcat-ap-hvd-3.0.0",
            _load(shapes / "dcat-ap-hvd-3.0.0" / "hvd-SHACL.ttl"),
            shapes_graph([Profile.HVD]),
        ),
    }


def _parsed_examples(folder: Path) -> Iterator[tuple[str, Graph]]:
    for path in sorted(folder.glob("*.ttl")):
        if path.name in UNPARSEABLE:
            continue
        yield path.name, _load(path)


@pytest.fixture(scope="module")
def observed(suites: dict[str, Suite]) -> dict[str, dict[str, tuple[set[Key], set[Key]]]]:
    """Per suite and example: (official keys, our keys)."""
    outcome: dict[str, dict[str, tuple[set[Key], set[Key]]]] = {}
    for suite in suites.values():
        per_example: dict[str, tuple[set[Key], set[Key]]] = {}
        for name, graph in _parsed_examples(suite.examples):
            official = {_key(r) for r in run_pyshacl(graph, suite.official, background_for(graph))}
            ours = {_key(r) for r in run_pyshacl(graph, suite.ours, background_for(graph))}
            per_example[name] = (official, ours)
        outcome[suite.name] = per_example
    return outcome


def _undocumented(suite: str, only_in: str, keys: set[Key]) -> set[Key]:
    allowed = [d for d in DOCUMENTED_DIFFERENCES if d.suite == suite and d.only_in == only_in]
    return {key for key in keys if not any(d.covers(key) for d in allowed)}


def test_every_example_that_parses_is_compared(
    suites: dict[str, Suite], observed: dict[str, dict[str, tuple[set[Key], set[Key]]]]
) -> None:
    assert len(observed["dcat-ap"]) == 13
    assert len(observed["hvd"]) == 14
    for name in UNPARSEABLE:
        folder = suites["hvd" if "wasps" in name else "dcat-ap"].examples
        with pytest.raises(Exception):  # noqa: B017 - rdflib raises parser-specific types
            _load(folder / name)


@pytest.mark.parametrize("severity", ["Violation", "Warning"])
@pytest.mark.parametrize("suite", ["dcat-ap", "hvd"])
def test_our_shapes_report_what_the_official_shapes_report(
    observed: dict[str, dict[str, tuple[set[Key], set[Key]]]], suite: str, severity: str
) -> None:
    problems = []
    for name, (official, ours) in observed[suite].items():
        official = {k for k in official if k[0] == severity}
        ours = {k for k in ours if k[0] == severity}
        for key in sorted(_undocumented(suite, "official", official - ours), key=str):
            problems.append(f"{name}: only the official shapes report {key}")
        for key in sorted(_undocumented(suite, "ours", ours - official), key=str):
            problems.append(f"{name}: only our shapes report {key}")
    assert not problems, "\n".join(problems)


def test_the_examples_do_produce_violations_to_compare(
    observed: dict[str, dict[str, tuple[set[Key], set[Key]]]],
) -> None:
    for suite, per_example in observed.items():
        agreed = set().union(*(official & ours for official, ours in per_example.values()))
        components = {key[3] for key in agreed if key[0] == "Violation"}
        assert {"MinCountConstraintComponent", "ClassConstraintComponent"} <= components, suite


def _difference_id(difference: Difference) -> str:
    return f"{difference.suite}-{difference.path.rsplit('/')[-1]}"


@pytest.mark.parametrize("difference", DOCUMENTED_DIFFERENCES, ids=_difference_id)
def test_every_documented_difference_occurs(
    observed: dict[str, dict[str, tuple[set[Key], set[Key]]]], difference: Difference
) -> None:
    side = 0 if difference.only_in == "official" else 1
    seen = [
        key
        for pair in observed[difference.suite].values()
        for key in pair[side] - pair[1 - side]
        if difference.covers(key)
    ]
    assert seen, f"documented difference never observed: {difference}"
