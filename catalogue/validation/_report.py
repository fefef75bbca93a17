"""Raw results into ``vocab.shacl`` reports, by the same rules as ``vocab.shacl.results_from_report``.

Those rules (only results about the record's own nodes, duplicates once, a fixed order,
conformance = no violation) are the project's; applying them here to the fast validator's raw
results is what lets the two paths be compared report for report.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from rdflib import BNode, Graph, URIRef
from rdflib.namespace import SH
from rdflib.term import Node

from catalogue.validation._compile import RawResult
from vocab.shacl import ValidationReport, ValidationResult

SEVERITY_WORDS: Final = {SH.Violation: "Violation", SH.Warning: "Warning", SH.Info: "Info"}

ResultKey = tuple[str, str | None, str, str, str | None]


def term_text(node: Node) -> str:
    """How a node is written in a result: an IRI or literal as its text, a blank node as ``_:id``."""
    if isinstance(node, BNode):
        return f"_:{node}"
    return str(node)


def to_result(raw: RawResult) -> ValidationResult:
    return ValidationResult(
        focus_node=term_text(raw.focus),
        path=raw.path,
        constraint=str(raw.component),
        severity=SEVERITY_WORDS.get(raw.severity, str(raw.severity).rpartition("#")[2]),
        message=raw.message,
        value=term_text(raw.value) if raw.value is not None else None,
        source_shape=str(raw.shape) if isinstance(raw.shape, URIRef) else None,
    )


def result_key(result: ValidationResult) -> ResultKey:
    """What two validators must agree on: focus node, path, constraint component, severity, value."""
    return (result.focus_node, result.path, result.constraint, result.severity, result.value)


def to_report(raw: Iterable[RawResult], data: Graph, subjects: set[Node] | None = None) -> ValidationReport:
    """The report about ``data``'s own nodes: deduplicated, sorted, conforming when no violation.

    ``subjects`` (the record's subject nodes) can be passed when already known.
    """
    if subjects is None:
        subjects = set(data.subjects(unique=True))
    seen: set[ResultKey] = set()
    results: list[ValidationResult] = []
    for r in raw:
        if r.focus not in subjects:
            continue
        item = to_result(r)
        key = result_key(item)
        if key in seen:
            continue
        seen.add(key)
        results.append(item)
    results.sort(key=ValidationResult.sort_key)
    return ValidationReport(
        conforms=not any(r.severity == "Violation" for r in results), results=results
    )
