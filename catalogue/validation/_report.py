"""Findings into ``vocab.shacl`` reports, by the same rules as ``vocab.shacl.results_from_report``.

Those rules (only results about the record's own nodes, duplicates once, a fixed order,
conformance = no violation) are the project's; applying them here to the fast validator's
findings is what lets the two paths be compared report for report.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from rdflib import URIRef
from rdflib.namespace import SH

from catalogue.ingest.terms import is_blank, is_iri, text_of, to_rdflib
from catalogue.validation._compile import Finding, RawResult
from vocab.shacl import ValidationReport, ValidationResult

SEVERITY_WORDS: Final = {str(SH.Violation): "Violation", str(SH.Warning): "Warning", str(SH.Info): "Info"}

ResultKey = tuple[str, str | None, str, str, str | None]


def term_text(term: str) -> str:
    """How a term is written in a result: an IRI or literal as its text, a blank node as ``_:id``."""
    return term if is_blank(term) else text_of(term)


def to_result(finding: Finding) -> ValidationResult:
    return ValidationResult(
        focus_node=term_text(finding.focus),
        path=finding.path,
        constraint=finding.component,
        severity=SEVERITY_WORDS.get(finding.severity, finding.severity.rpartition("#")[2]),
        message=finding.message,
        value=term_text(finding.value) if finding.value is not None else None,
        source_shape=text_of(finding.shape) if is_iri(finding.shape) else None,
    )


def raw_result(finding: Finding) -> RawResult:
    """A finding in rdflib terms (the rdflib-facing API)."""
    return RawResult(
        focus=to_rdflib(finding.focus),
        path=finding.path,
        component=URIRef(finding.component),
        severity=URIRef(finding.severity),
        value=to_rdflib(finding.value) if finding.value is not None else None,
        shape=to_rdflib(finding.shape),
        message=finding.message,
    )


def result_key(result: ValidationResult) -> ResultKey:
    """What two validators must agree on: focus node, path, constraint component, severity, value."""
    return (result.focus_node, result.path, result.constraint, result.severity, result.value)


def to_report(findings: Iterable[Finding], subjects: set[str]) -> ValidationReport:
    """The report about the record's own nodes (``subjects``): deduplicated, sorted, conforming when
    no violation."""
    seen: set[tuple[str, str | None, str, str, str | None]] = set()
    results: list[ValidationResult] = []
    for f in findings:
        if f.focus not in subjects:
            continue
        key = (f.focus, f.path, f.component, f.severity, f.value)
        if key in seen:
            continue
        seen.add(key)
        results.append(to_result(f))
    results.sort(key=ValidationResult.sort_key)
    return ValidationReport(conforms=not any(r.severity == "Violation" for r in results), results=results)
