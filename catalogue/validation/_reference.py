"""The reference path: pyshacl over ``record + background``, read back into :class:`RawResult`.

pyshacl is the arbiter of what a SHACL report should say; the fast validator is tested against
this function and falls back to it for shapes graphs it cannot compile.
"""

from __future__ import annotations

from typing import Any

import pyshacl
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import SH
from rdflib.term import Node

from catalogue.ingest.terms import from_rdflib
from catalogue.validation._compile import Finding, RawResult
from catalogue.validation._paths import path_text


def union(data: Graph, background: Graph | None) -> Graph:
    """A new graph holding both: what SHACL calls the data graph for one record."""
    merged = Graph()
    for triple in data.triples((None, None, None)):
        merged.add(triple)
    if background is not None:
        for triple in background.triples((None, None, None)):
            merged.add(triple)
    return merged


def reference_raw(
    data: Graph,
    shapes: Graph,
    background: Graph | None = None,
    *,
    allow_warnings: bool = True,
    allow_infos: bool = False,
) -> tuple[bool, list[RawResult]]:
    """pyshacl's verdict and results for ``data`` (merged with ``background``) against ``shapes``."""
    outcome: Any = pyshacl.validate(
        union(data, background),
        shacl_graph=shapes,
        inference="none",
        advanced=False,
        abort_on_first=False,
        allow_warnings=allow_warnings,
        allow_infos=allow_infos,
        inplace=True,
    )
    conforms, report, _ = outcome
    assert isinstance(report, Graph)
    return bool(conforms), read_report(report)


def read_report(report: Graph) -> list[RawResult]:
    """Every sh:ValidationResult of a pyshacl report graph (nested sh:detail results excluded)."""
    results: list[RawResult] = []
    nested = set(report.objects(None, SH.detail))
    for r in report.objects(None, SH.result):
        if r in nested:
            continue
        focus = report.value(r, SH.focusNode)
        component = report.value(r, SH.sourceConstraintComponent)
        severity = report.value(r, SH.resultSeverity)
        assert focus is not None
        assert isinstance(component, URIRef)
        assert isinstance(severity, URIRef)
        path: Node | None = report.value(r, SH.resultPath)
        messages = [m for m in report.objects(r, SH.resultMessage) if isinstance(m, Literal)]
        message = next((str(m) for m in messages if m.language in (None, "en")), "")
        shape = report.value(r, SH.sourceShape)
        results.append(
            RawResult(
                focus=focus,
                path=path_text(report, path),
                component=component,
                severity=severity,
                value=report.value(r, SH.value),
                shape=shape if shape is not None else URIRef(""),
                message=message,
            )
        )
    return results


def to_findings(raw: list[RawResult]) -> list[Finding]:
    """pyshacl's results in the fast validator's terms (to compare, or to answer in its place)."""
    return [
        Finding(
            focus=from_rdflib(r.focus),
            path=r.path,
            component=str(r.component),
            severity=str(r.severity),
            value=from_rdflib(r.value) if r.value is not None else None,
            shape=from_rdflib(r.shape),
            message=r.message,
        )
        for r in raw
    ]
