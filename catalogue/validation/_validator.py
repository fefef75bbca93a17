"""The fast validator: compiled shapes, a pre-indexed background, and per-record dict views.

What is fixed across records is done once: the shapes are compiled, the background (SKOS
vocabularies) is indexed, and the background's own focus nodes (for instance every skos:Concept
when a shape targets that class) are validated once, remembering which nodes each evaluation
read. For a record, only those cached evaluations that read a node the record adds triples to
are redone, so the answer stays that of validating ``record + background`` from scratch.

A record that adds rdfs:subClassOf axioms changes the class hierarchy of everything; it goes to
pyshacl (rare, and correct). A shapes graph we cannot compile goes entirely to pyshacl.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rdflib import Graph

from catalogue.ingest.compact import RDF_TYPE, CompactRecord
from catalogue.validation._compile import (
    CompiledShape,
    CompiledShapes,
    Finding,
    RawResult,
    compile_shapes,
)
from catalogue.validation._errors import UnsupportedShapesError
from catalogue.validation._reference import reference_raw, to_findings
from catalogue.validation._report import raw_result, to_report
from catalogue.validation._view import (
    SUBCLASS_OF,
    Background,
    TrackingView,
    View,
    inverse_index,
)
from vocab.shacl import ValidationReport

log = logging.getLogger(__name__)

Outcome = tuple[bool, list[Finding], set[str]]


@dataclass
class _Entry:
    """A background focus node's cached evaluation against one shape, and what it read."""

    shape: CompiledShape
    focus: str
    conforms: bool
    results: list[Finding]


class FastValidator:
    """Validate many records against one shapes graph, giving pyshacl's results, much faster.

    ``shapes`` is compiled once; ``background`` (vocabularies, class hierarchies) is united
    with every record, exactly as if each record were validated as ``record + background``.
    ``allow_warnings`` is pyshacl's option of the same name (on, as in ``vocab.shacl``: a nested
    shape that fails only with warnings still conforms).
    When the shapes use something not implemented here, :attr:`fallback_reason` says what, and
    every call is answered by pyshacl instead.

    Records are validated in their compact form (:meth:`check`, :meth:`validate_compact`); the
    methods taking rdflib graphs convert and are there for callers that still hold graphs.
    After construction nothing here changes but the bounded literal caches of the compiled
    checks, so one validator per process serves any number of records (worker pools build
    theirs once, at warm-up).
    """

    def __init__(
        self,
        shapes: Graph,
        background: Graph | None = None,
        *,
        allow_warnings: bool = True,
        allow_infos: bool = False,
    ) -> None:
        self.shapes_graph = shapes
        self.background_graph = background if background is not None else Graph()
        self.allow_warnings = allow_warnings
        self.allow_infos = allow_infos
        self.fallback_reason: str | None = None
        self._compiled: CompiledShapes | None = None
        self._background = Background(CompactRecord.from_rdflib(self.background_graph))
        try:
            self._compiled = compile_shapes(shapes, allow_warnings=allow_warnings, allow_infos=allow_infos)
        except UnsupportedShapesError as exc:
            self.fallback_reason = exc.message
            log.info("shapes graph falls back to pyshacl", extra={"reason": exc.message})
        self._entries: list[_Entry] = []
        self._static_keys: set[tuple[int, str]] = set()
        self._out_deps: dict[str, list[int]] = {}
        self._in_deps: dict[str, list[int]] = {}
        self._static_results: list[Finding] = []
        self._static_conforms = True
        self._entries_with_results: set[int] = set()
        self._entries_not_conforming: set[int] = set()
        self._static_raw: dict[Finding, RawResult] | None = None
        # Entries with results, by the nodes their results are about.
        self._results_about: dict[str, list[int]] = {}
        if self._compiled is not None:
            self._prepare_background(self._compiled)

    @property
    def is_fast(self) -> bool:
        """True when the shapes compiled; False when every call goes to pyshacl."""
        return self._compiled is not None

    # -- background ------------------------------------------------------------------------

    def _prepare_background(self, compiled: CompiledShapes) -> None:
        bg = self._background
        focus: dict[tuple[int, str], CompiledShape] = {}
        for shape in compiled.with_target_nodes:
            for node in shape.target_nodes:
                focus[(id(shape), node)] = shape
        for s, by_p in bg.out.items():
            for t in by_p.get(RDF_TYPE, ()):
                for cls in bg.superclasses(t):
                    for shape in compiled.by_target_class.get(cls, ()):
                        focus[(id(shape), s)] = shape
            for p in by_p:
                for shape in compiled.by_subjects_of.get(p, ()):
                    focus[(id(shape), s)] = shape
        for o, by_p in bg.inn.items():
            for p in by_p:
                for shape in compiled.by_objects_of.get(p, ()):
                    focus[(id(shape), o)] = shape
        for key, shape in focus.items():
            view = TrackingView(bg)
            conforms, results = shape.validate(view, key[1])
            index = len(self._entries)
            self._entries.append(_Entry(shape, key[1], conforms, results))
            self._static_keys.add(key)
            for node in view.read_out:
                self._out_deps.setdefault(node, []).append(index)
            for node in view.read_in:
                self._in_deps.setdefault(node, []).append(index)
            if results:
                self._entries_with_results.add(index)
                self._static_results.extend(results)
                for focus_node in {r.focus for r in results}:
                    self._results_about.setdefault(focus_node, []).append(index)
            if not conforms:
                self._entries_not_conforming.add(index)
        self._static_conforms = not self._entries_not_conforming

    # -- the compact form (the ingest hot path) ----------------------------------------------

    def check(self, record: CompactRecord) -> Outcome:
        """(conforms, findings, the record's subjects) as pyshacl gives them for ``record + background``."""
        return self._evaluate(record, with_background=True)

    def about_record(self, record: CompactRecord) -> tuple[list[Finding], set[str]]:
        """The findings a report about the record can hold (and the record's subjects).

        The cached background evaluations the record can change are run again; of the others,
        only the findings about one of the record's nodes are taken (looked up by node), so the
        rest of the background's findings, thousands with the full vocabularies, are never
        copied into every report.
        """
        _, findings, subjects = self._evaluate(record, with_background=False)
        return findings, subjects

    def _evaluate(self, record: CompactRecord, *, with_background: bool) -> Outcome:
        compiled = self._compiled
        data_out = record.index()
        if compiled is None or any(SUBCLASS_OF in by_p for by_p in data_out.values()):
            conforms, raw = reference_raw(
                record.to_rdflib(),
                self.shapes_graph,
                self.background_graph,
                allow_warnings=self.allow_warnings,
                allow_infos=self.allow_infos,
            )
            return conforms, to_findings(raw), set(data_out)
        data_inn = inverse_index(record.triples, compiled.inverse_predicates)
        view = View(self._background, data_out, data_inn)
        redo: set[int] = set()
        for s in data_out:
            found = self._out_deps.get(s)
            if found:
                redo.update(found)
        for o in data_inn:
            found = self._in_deps.get(o)
            if found:
                redo.update(found)
        conforms = True
        results: list[Finding] = []
        if not with_background:
            for s in data_out:
                for i in self._results_about.get(s, ()):
                    if i not in redo:
                        results.extend(f for f in self._entries[i].results if f.focus == s)
        if not redo:
            conforms = self._static_conforms
            if with_background:
                results.extend(self._static_results)
        else:
            if self._entries_not_conforming - redo:
                conforms = False
            if with_background:
                for i in sorted(self._entries_with_results - redo):
                    results.extend(self._entries[i].results)
            for i in sorted(redo):
                entry = self._entries[i]
                ok, found_results = entry.shape.validate(view, entry.focus)
                conforms = conforms and ok
                results.extend(found_results)
        for shape, node in self._record_focus(compiled, view):
            ok, found_results = shape.validate(view, node)
            conforms = conforms and ok
            results.extend(found_results)
        return conforms, results, set(data_out)

    def validate_compact(self, record: CompactRecord) -> ValidationReport:
        """The report about the record's own nodes, by ``vocab.shacl``'s rules."""
        findings, subjects = self.about_record(record)
        return to_report(findings, subjects)

    def _record_focus(self, compiled: CompiledShapes, view: View) -> list[tuple[CompiledShape, str]]:
        """Focus nodes the record adds (those the background alone already had are cached)."""
        static = self._static_keys
        supers = self._background.superclasses
        found: dict[tuple[int, str], CompiledShape] = {}
        by_class = compiled.by_target_class
        by_subj = compiled.by_subjects_of
        by_obj = compiled.by_objects_of
        for s, by_p in view.data_out.items():
            for t in by_p.get(RDF_TYPE, ()):
                for cls in supers(t):
                    for shape in by_class.get(cls, ()):
                        found[(id(shape), s)] = shape
            if by_subj:
                for p in by_p:
                    for shape in by_subj.get(p, ()):
                        found[(id(shape), s)] = shape
        if by_obj:
            for o, by_p in view.data_inn.items():
                for p in by_p:
                    for shape in by_obj.get(p, ()):
                        found[(id(shape), o)] = shape
        return [(shape, key[1]) for key, shape in found.items() if key not in static]

    # -- rdflib graphs (cold paths, until every caller holds compact records) -------------------

    def validate(self, data: Graph) -> ValidationReport:
        """The report pyshacl gives for ``data + background``, read by ``vocab.shacl``'s rules."""
        return self.validate_compact(CompactRecord.from_rdflib(data))

    def reference(self, data: Graph) -> ValidationReport:
        """The same question answered by pyshacl (for comparison and diagnosis)."""
        _, raw = reference_raw(
            data,
            self.shapes_graph,
            self.background_graph,
            allow_warnings=self.allow_warnings,
            allow_infos=self.allow_infos,
        )
        return to_report(to_findings(raw), set(CompactRecord.from_rdflib(data).subjects()))

    def validate_raw(self, data: Graph) -> tuple[bool, list[RawResult]]:
        """(conforms, results) as pyshacl would give them for ``data + background``, as rdflib terms.

        The background's own results (thousands with the full vocabularies) are converted once,
        on the first call, and reused: converting them on every call cost ~0.2 s a record.
        """
        conforms, findings, _ = self.check(CompactRecord.from_rdflib(data))
        if self._static_raw is None:
            self._static_raw = {f: raw_result(f) for f in self._static_results}
        known = self._static_raw
        return conforms, [known.get(f) or raw_result(f) for f in findings]
