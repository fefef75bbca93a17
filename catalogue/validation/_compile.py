"""Compile a SHACL shapes graph into Python closures that give pyshacl's results.

Each shape becomes a :class:`CompiledShape` holding its value-node function (the compiled path)
and one closure per constraint. The closures follow pyshacl's semantics to the letter (which
node is the result's focus and value, when a result has no value, how nested shapes decide
conformance, the severity a nested result carries), because the point of this module is to give
the *same* report much faster, and the tests compare the two result by result.

The shapes graph is read with rdflib (once); the closures work on N-Triples term strings
(:mod:`catalogue.ingest.terms`), the form records are validated in. Where pyshacl's answer
depends on rdflib's reading of a literal (is ``"2020-13-45"^^xsd:date`` well typed?), rdflib is
asked, once per distinct literal.

Anything we do not implement raises :class:`UnsupportedShapesError` here, at compile time, and
the validator then hands the whole shapes graph to pyshacl: nothing is ever silently skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Final, NamedTuple

from rdflib import Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS, SH, XSD
from rdflib.term import Node

from catalogue.ingest.terms import from_rdflib, literal_parts, text_of
from catalogue.validation._errors import UnsupportedShapesError
from catalogue.validation._paths import PathFn, compile_path, path_text
from catalogue.validation._view import View


class RawResult(NamedTuple):
    """One validation result, in terms of rdflib nodes (the form the rdflib-facing API returns)."""

    focus: Node
    path: str | None
    component: URIRef
    severity: URIRef
    value: Node | None
    shape: Node
    message: str


class Finding(NamedTuple):
    """One validation result as the compiled shapes give it: terms as N-Triples strings.

    ``component`` and ``severity`` are plain IRIs; ``focus``, ``value`` and ``shape`` are terms.
    """

    focus: str
    path: str | None
    component: str
    severity: str
    value: str | None
    shape: str
    message: str


CheckOutcome = tuple[bool, list[Finding]]
Check = Callable[[View, str, list[str]], CheckOutcome]

# Constraint parameters we implement (SHACL Core). Anything else pyshacl would act on is refused.
IMPLEMENTED: Final = frozenset(
    {
        SH["class"], SH.datatype, SH.nodeKind, SH.minCount, SH.maxCount, SH["not"], SH["and"],
        SH["or"], SH.xone, SH.minLength, SH.maxLength, SH.pattern, SH.flags, SH.languageIn,
        SH.uniqueLang, SH.node, SH.property, SH.qualifiedValueShape, SH.qualifiedMinCount,
        SH.qualifiedMaxCount, SH.qualifiedValueShapesDisjoint, SH.hasValue, SH["in"], SH.closed,
        SH.ignoredProperties,
    }
)  # fmt: skip
NOT_IMPLEMENTED: Final = frozenset(
    {
        SH.minExclusive, SH.minInclusive, SH.maxExclusive, SH.maxInclusive, SH.equals, SH.disjoint,
        SH.lessThan, SH.lessThanOrEquals, SH.sparql, SH.target,
        SH.rule, SH.js, SH.expression, SH.condition,
    }
)  # fmt: skip
SHAPE_TYPES: Final = (SH.NodeShape, SH.PropertyShape)
TARGET_PREDICATES: Final = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf)
SINGLE_VALUED: Final = (
    SH.datatype, SH.nodeKind, SH.minCount, SH.maxCount, SH.minLength, SH.maxLength, SH["in"],
    SH.languageIn, SH.uniqueLang, SH.qualifiedMinCount, SH.qualifiedMaxCount, SH.closed,
)  # fmt: skip
# Shapes referring to shapes deeper than this are refused (pyshacl stops at a similar depth).
MAX_SHAPE_DEPTH: Final = 14
NODE_KINDS: Final[dict[Node, tuple[bool, bool, bool]]] = {
    SH.IRI: (False, True, False),
    SH.BlankNode: (True, False, False),
    SH.Literal: (False, False, True),
    SH.BlankNodeOrIRI: (True, True, False),
    SH.BlankNodeOrLiteral: (True, False, True),
    SH.IRIOrLiteral: (False, True, True),
}
SEVERITY_WORD: Final = {SH.Violation: "Violation", SH.Warning: "Warning", SH.Info: "Info"}


@dataclass(eq=False)
class CompiledShape:
    """One shape: how to reach its value nodes and the checks to run on them."""

    node: Node
    is_property: bool
    path: PathFn | None
    path_text: str | None
    severity: str  # a plain IRI
    message: str | None
    deactivated: bool
    checks: list[Check] = field(default_factory=list)
    target_classes: list[str] = field(default_factory=list)
    target_nodes: list[str] = field(default_factory=list)
    target_subjects_of: list[str] = field(default_factory=list)
    target_objects_of: list[str] = field(default_factory=list)
    allowed: frozenset[str] = frozenset()
    # The term of a plain predicate path, so callers can look values up without a function call.
    predicate: str | None = None
    # The shape's own node as a term, for the results it reports.
    term: str = ""
    # True when no check can report anything for a focus node without value nodes.
    empty_ok: bool = True
    # ``run`` specialised once the checks are known (see ``specialise``); callers on hot paths
    # use it instead of the general method.
    fast_run: Check | None = None

    @property
    def has_targets(self) -> bool:
        return bool(
            self.target_classes or self.target_nodes or self.target_subjects_of or self.target_objects_of
        )

    def validate(self, view: View, focus: str) -> CheckOutcome:
        """pyshacl's ``Shape.validate`` for one focus node: (conforms, results)."""
        if self.deactivated:
            return True, []
        values = self.path(view, focus) if self.path is not None else [focus]
        return self.run(view, focus, values)

    def specialise(self) -> Check:
        """A ``run`` without the loop for the common single-check shape."""
        checks = tuple(self.checks)
        if len(checks) != 1:
            return self.run
        only = checks[0]
        allowed = self.allowed
        if not allowed:
            return only  # conformance is the check's own verdict
        severity = self.severity

        def run_one(view: View, focus: str, values: list[str]) -> CheckOutcome:
            ok, found = only(view, focus, values)
            if ok or severity in allowed or all(r.severity in allowed for r in found):
                return True, found
            return False, found

        return run_one

    def run(self, view: View, focus: str, values: list[str]) -> CheckOutcome:
        """Run every check on ``values`` (the focus node's value nodes), combining like pyshacl."""
        conforms = True
        results: list[Finding] = []
        allowed = self.allowed
        for check in self.checks:
            ok, found = check(view, focus, values)
            if not ok and (
                not allowed
                or (self.severity not in allowed and not all(r.severity in allowed for r in found))
            ):
                conforms = False
            if found:
                results.extend(found)
        return conforms, results

    def result(self, focus: str, value: str | None, component: str, generic: str) -> Finding:
        return Finding(
            focus, self.path_text, component, self.severity, value, self.term, self.message or generic
        )


@dataclass
class CompiledShapes:
    """Every shape of a shapes graph, and the root shapes (those with targets) indexed by target."""

    shapes: list[CompiledShape]
    roots: list[CompiledShape]
    by_target_class: dict[str, list[CompiledShape]]
    by_subjects_of: dict[str, list[CompiledShape]]
    by_objects_of: dict[str, list[CompiledShape]]
    with_target_nodes: list[CompiledShape]
    # Predicates any shape reads backwards (inverse paths, sh:targetObjectsOf).
    inverse_predicates: frozenset[str] = frozenset()


def compile_shapes(
    graph: Graph,
    *,
    allow_warnings: bool = True,
    allow_infos: bool = False,
) -> CompiledShapes:
    """Compile ``graph``; raises :class:`UnsupportedShapesError` for anything not implemented."""
    allowed: set[str] = set()
    if allow_infos or allow_warnings:
        allowed.add(str(SH.Info))
    if allow_warnings:
        allowed.add(str(SH.Warning))
    compiler = _Compiler(graph, frozenset(allowed))
    return compiler.run()


def _first_message(graph: Graph, node: Node) -> str | None:
    messages = [m for m in graph.objects(node, SH.message) if isinstance(m, Literal)]
    if not messages:
        return None
    for m in messages:
        if m.language in (None, "en"):
            return str(m)
    return str(messages[0])


class _Compiler:
    def __init__(self, graph: Graph, allowed: frozenset[str]) -> None:
        self.g = graph
        self.allowed = allowed
        self.compiled: dict[Node, CompiledShape] = {}
        self.in_progress: set[Node] = set()

    def run(self) -> CompiledShapes:
        g = self.g
        if any(True for _ in g.subjects(RDF.type, SH.ConstraintComponent)):
            raise UnsupportedShapesError("the shapes graph declares its own constraint components")
        if any(True for _ in g.subjects(RDF.type, SH.SPARQLConstraint)):
            raise UnsupportedShapesError("the shapes graph uses SHACL-SPARQL constraints")
        for predicate in NOT_IMPLEMENTED:
            for _ in g.subject_objects(predicate):
                raise UnsupportedShapesError(f"constraint parameter {predicate} is not implemented")
        candidates: dict[Node, None] = {}
        for shape_type in SHAPE_TYPES:
            candidates.update(dict.fromkeys(g.subjects(RDF.type, shape_type)))
        for predicate in (*TARGET_PREDICATES, SH.property, SH.node):
            candidates.update(dict.fromkeys(s for s, _ in g.subject_objects(predicate)))
        shapes = [self.shape(node, 0) for node in candidates]
        shapes.extend(s for s in self.compiled.values() if s not in shapes)
        roots = [s for s in shapes if s.has_targets]
        by_class: dict[str, list[CompiledShape]] = {}
        by_subj: dict[str, list[CompiledShape]] = {}
        by_obj: dict[str, list[CompiledShape]] = {}
        for s in roots:
            for c in s.target_classes:
                by_class.setdefault(c, []).append(s)
            for p in s.target_subjects_of:
                by_subj.setdefault(p, []).append(s)
            for p in s.target_objects_of:
                by_obj.setdefault(p, []).append(s)
        return CompiledShapes(
            shapes=shapes,
            roots=roots,
            by_target_class=by_class,
            by_subjects_of=by_subj,
            by_objects_of=by_obj,
            with_target_nodes=[s for s in roots if s.target_nodes],
            inverse_predicates=frozenset(
                {self.intern(p) for p in g.objects(None, SH.inversePath)} | set(by_obj)
            ),
        )

    def intern(self, term: Node) -> str:
        """A shapes-graph term as the N-Triples text records are validated in."""
        return from_rdflib(term)

    # -- shapes --------------------------------------------------------------------------

    def shape(self, node: Node, depth: int, *, expect: str | None = None) -> CompiledShape:
        g = self.g
        if depth > MAX_SHAPE_DEPTH:
            raise UnsupportedShapesError(f"shapes nest deeper than {MAX_SHAPE_DEPTH} levels")
        if node in self.in_progress:
            raise UnsupportedShapesError(f"shape {node} refers to itself (recursive shapes)")
        if (node, None, None) not in g:
            raise UnsupportedShapesError(f"shape {node} is referred to but not defined")
        paths = list(g.objects(node, SH.path))
        types = set(g.objects(node, RDF.type))
        if len(paths) > 1:
            raise UnsupportedShapesError(f"shape {node} has more than one sh:path")
        if SH.NodeShape in types and paths:
            raise UnsupportedShapesError(f"node shape {node} has a sh:path")
        if SH.PropertyShape in types and not paths:
            raise UnsupportedShapesError(f"property shape {node} has no sh:path")
        is_property = bool(paths)
        if expect == "property" and not is_property:
            raise UnsupportedShapesError(f"sh:property points to {node}, which has no sh:path")
        if expect == "node" and is_property:
            raise UnsupportedShapesError(f"sh:node points to {node}, which is a property shape")
        found = self.compiled.get(node)
        if found is not None:
            return found
        for predicate in SINGLE_VALUED:
            if len(list(g.objects(node, predicate))) > 1:
                raise UnsupportedShapesError(f"shape {node} has more than one {predicate}")
        severity = g.value(node, SH.severity)
        if severity is None:
            severity = SH.Violation
        if not isinstance(severity, URIRef):
            raise UnsupportedShapesError(f"shape {node} has a sh:severity that is not an IRI")
        deactivated_value = g.value(node, SH.deactivated)
        deactivated = isinstance(deactivated_value, Literal) and deactivated_value.value is True
        shape = CompiledShape(
            node=node,
            is_property=is_property,
            path=compile_path(g, paths[0]) if paths else None,
            path_text=path_text(g, paths[0]) if paths else None,
            severity=str(severity),
            message=_first_message(g, node),
            deactivated=deactivated,
            allowed=self.allowed,
            term=from_rdflib(node),
        )
        intern = self.intern
        shape.target_classes = [intern(c) for c in g.objects(node, SH.targetClass)]
        if types & {RDFS.Class, OWL.Class} or any((t, RDFS.subClassOf, RDFS.Class) in g for t in types):
            shape.target_classes.append(intern(node))
        shape.target_nodes = [intern(n) for n in g.objects(node, SH.targetNode)]
        shape.target_subjects_of = [intern(p) for p in g.objects(node, SH.targetSubjectsOf)]
        shape.target_objects_of = [intern(p) for p in g.objects(node, SH.targetObjectsOf)]
        if paths and isinstance(paths[0], URIRef):
            shape.predicate = intern(paths[0])
        self.in_progress.add(node)
        try:
            shape.checks = self.checks(shape, depth)
        finally:
            self.in_progress.discard(node)
        shape.fast_run = shape.specialise()
        shape.empty_ok = not (
            (_int_param(g, node, SH.minCount) or 0) > 0
            or (_int_param(g, node, SH.qualifiedMinCount) or 0) > 0
            or (node, SH.hasValue, None) in g
        )
        self.compiled[node] = shape
        return shape

    def shape_list(self, head: Node, depth: int) -> list[CompiledShape]:
        members = list(Collection(self.g, head))
        if not members:
            raise UnsupportedShapesError("a sh:and/sh:or/sh:xone list is empty")
        return list({id(s): s for s in (self.shape(m, depth + 1) for m in members)}.values())

    # -- constraints -----------------------------------------------------------------------

    def checks(self, shape: CompiledShape, depth: int) -> list[Check]:
        g, node = self.g, shape.node
        checks: list[Check] = []
        one = g.value
        classes = list(g.objects(node, SH["class"]))
        if classes:
            checks.append(_class_check(shape, [self.intern(c) for c in classes]))
        datatype = one(node, SH.datatype)
        if datatype is not None:
            checks.append(_datatype_check(shape, str(datatype)))
        kind = one(node, SH.nodeKind)
        if kind is not None:
            if kind not in NODE_KINDS:
                raise UnsupportedShapesError(f"unknown sh:nodeKind {kind}")
            checks.append(_node_kind_check(shape, kind))
        min_count = _int_param(g, node, SH.minCount)
        if min_count is not None:
            checks.append(_min_count_check(shape, min_count))
        max_count = _int_param(g, node, SH.maxCount)
        if max_count is not None:
            checks.append(_max_count_check(shape, max_count))
        for negated in g.objects(node, SH["not"]):
            checks.append(_not_check(shape, self.shape(negated, depth + 1)))
        for parameter, combine in ((SH["and"], "and"), (SH["or"], "or"), (SH.xone, "xone")):
            lists = list(g.objects(node, parameter))
            if lists:
                members = [self.shape_list(head, depth) for head in lists]
                checks.append(_logical_check(shape, combine, members))
        min_length = _int_param(g, node, SH.minLength)
        if min_length is not None:
            checks.append(_length_check(shape, min_length, minimum=True))
        max_length = _int_param(g, node, SH.maxLength)
        if max_length is not None:
            checks.append(_length_check(shape, max_length, minimum=False))
        patterns = list(g.objects(node, SH.pattern))
        if patterns:
            checks.append(_pattern_check(shape, patterns, one(node, SH.flags)))
        elif one(node, SH.flags) is not None:
            raise UnsupportedShapesError(f"shape {node} has sh:flags without sh:pattern")
        languages = one(node, SH.languageIn)
        if languages is not None:
            checks.append(_language_in_check(shape, [str(x) for x in Collection(g, languages)]))
        unique = one(node, SH.uniqueLang)
        if unique is not None:
            if not (isinstance(unique, Literal) and isinstance(unique.value, bool)):
                raise UnsupportedShapesError("sh:uniqueLang is not a boolean")
            if unique.value:
                checks.append(_unique_lang_check(shape))
        nodes = list(g.objects(node, SH.node))
        if nodes:
            targets = [self.shape(n, depth + 1, expect="node") for n in nodes]
            checks.append(_node_check(shape, list({id(t): t for t in targets}.values())))
        props = list(g.objects(node, SH.property))
        if props:
            nested = [self.shape(p, depth + 1, expect="property") for p in props]
            checks.append(_property_check(list({id(t): t for t in nested}.values())))
        qualified = list(g.objects(node, SH.qualifiedValueShape))
        if qualified:
            checks.append(self.qualified(shape, qualified, depth))
        has_values = list(g.objects(node, SH.hasValue))
        if has_values:
            checks.append(_has_value_check(shape, [self.intern(v) for v in has_values]))
        members_head = one(node, SH["in"])
        if members_head is not None:
            checks.append(_in_check(shape, [self.intern(m) for m in Collection(g, members_head)]))
        closed = one(node, SH.closed)
        if closed is None and one(node, SH.ignoredProperties) is not None:
            raise UnsupportedShapesError(f"shape {node} has sh:ignoredProperties without sh:closed")
        if closed is not None:
            if not isinstance(closed, Literal):
                raise UnsupportedShapesError("sh:closed is not a boolean literal")
            if closed.value:
                ignored: set[Node] = set()
                for head in g.objects(node, SH.ignoredProperties):
                    ignored.update(Collection(g, head))
                allowed = {g.value(p, SH.path) for p in props}
                kept = ignored | {a for a in allowed if a is not None}
                checks.append(_closed_check(shape, {self.intern(a) for a in kept}))
        return checks

    def qualified(self, shape: CompiledShape, heads: list[Node], depth: int) -> Check:
        g, node = self.g, shape.node
        disjoint = g.value(node, SH.qualifiedValueShapesDisjoint)
        if isinstance(disjoint, Literal) and disjoint.value is True:
            raise UnsupportedShapesError("sh:qualifiedValueShapesDisjoint is not implemented")
        low = _int_param(g, node, SH.qualifiedMinCount)
        high = _int_param(g, node, SH.qualifiedMaxCount)
        if low is None and high is None:
            raise UnsupportedShapesError("sh:qualifiedValueShape without qualified counts")
        inner = [self.shape(h, depth + 1) for h in heads]
        return _qualified_check(shape, inner, low, high)


def _int_param(graph: Graph, node: Node, predicate: URIRef) -> int | None:
    value = graph.value(node, predicate)
    if value is None:
        return None
    if not isinstance(value, Literal) or not isinstance(value.value, int) or isinstance(value.value, bool):
        raise UnsupportedShapesError(f"{predicate} of {node} is not an integer")
    if value.value < 0:
        raise UnsupportedShapesError(f"{predicate} of {node} is negative")
    return int(value.value)


# -- the checks: each mirrors the pyshacl component of the same name ----------------------------
# Values are N-Triples terms: the first character tells the kind ('<' IRI, '_' blank node,
# '"' literal). Term equality is string equality: rdflib's is lexical form, language and
# datatype, which the text holds exactly.

_IRI_KIND: Final = "<"
_BLANK_KIND: Final = "_"
_LITERAL_KIND: Final = '"'
RDF_TYPE_TERM: Final = from_rdflib(RDF.type)
RDFS_RESOURCE_TERM: Final = from_rdflib(RDFS.Resource)
# Distinct literals whose well-typedness one datatype check remembers (rdflib parses each once).
MAX_REMEMBERED_LITERALS: Final = 4096


def _class_check(shape: CompiledShape, classes: list[str]) -> Check:
    component = str(SH.ClassConstraintComponent)

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found: list[Finding] = []
        for cls in classes:
            for v in values:
                if v[0] == _LITERAL_KIND or not view.is_instance(v, cls):
                    generic = f"Value is not an instance of {text_of(cls)}"
                    found.append(shape.result(focus, v, component, generic))
        return not found, found

    return check


_DATATYPE_PYTHON: Final[dict[str, type | tuple[type, ...]]] = {
    str(XSD.string): (str, bytes),
    str(RDF.langString): (str, bytes),
    str(XSD.integer): int,
    str(XSD.float): float,
    str(XSD.decimal): Decimal,
    str(XSD.boolean): bool,
    str(XSD.date): date,
    str(XSD.time): time,
    str(XSD.dateTime): datetime,
}
_RDFS_LITERAL: Final = str(RDFS.Literal)
_RDFS_DATATYPE: Final = str(RDFS.Datatype)
_XSD_STRING: Final = str(XSD.string)
_RDF_LANG_STRING: Final = str(RDF.langString)


def _well_typed(lexical: str, datatype: str, python_type: type | tuple[type, ...] | None) -> bool:
    """rdflib's reading of a typed literal, as pyshacl judges it: not ill-typed, of the Python type."""
    parsed = Literal(lexical, datatype=URIRef(datatype), normalize=False)
    if getattr(parsed, "ill_typed", None) is True:
        return False
    return python_type is None or isinstance(parsed.value, python_type)


def _datatype_check(shape: CompiledShape, rule: str) -> Check:
    component = str(SH.DatatypeConstraintComponent)
    generic = f"Value is not a literal of datatype {rule}"
    python_type = _DATATYPE_PYTHON.get(rule)
    remembered: dict[str, bool] = {}

    def matches(v: str) -> bool:
        if v[0] != _LITERAL_KIND:
            return False
        known = remembered.get(v)
        if known is not None:
            return known
        lexical, language, datatype = literal_parts(v)
        if datatype is not None and datatype == rule:
            ok = _well_typed(lexical, datatype, python_type)
        elif rule == _RDFS_LITERAL or (rule == _RDFS_DATATYPE and datatype):
            ok = True
        elif datatype is None and language is None and rule == _XSD_STRING:
            ok = True  # a plain literal's value is its text
        else:
            ok = rule == _RDF_LANG_STRING and bool(language)
        if len(remembered) >= MAX_REMEMBERED_LITERALS:
            remembered.clear()
        remembered[v] = ok
        return ok

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = [shape.result(focus, v, component, generic) for v in values if not matches(v)]
        return not found, found

    return check


def _node_kind_check(shape: CompiledShape, kind: Node) -> Check:
    component = str(SH.NodeKindConstraintComponent)
    blank_ok, iri_ok, literal_ok = NODE_KINDS[kind]
    generic = f"Value is not of node kind {kind}"
    accepted = frozenset(
        k for k, ok in ((_BLANK_KIND, blank_ok), (_IRI_KIND, iri_ok), (_LITERAL_KIND, literal_ok)) if ok
    )

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        for v in values:
            if v[0] not in accepted:
                break
        else:
            return True, []
        found = [shape.result(focus, v, component, generic) for v in values if v[0] not in accepted]
        return False, found

    return check


def _min_count_check(shape: CompiledShape, minimum: int) -> Check:
    component = str(SH.MinCountConstraintComponent)
    generic = f"Less than {minimum} values on {shape.path_text}"

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        if len(values) >= minimum:
            return True, []
        return False, [shape.result(focus, None, component, generic)]

    return check


def _max_count_check(shape: CompiledShape, maximum: int) -> Check:
    component = str(SH.MaxCountConstraintComponent)
    generic = f"More than {maximum} values on {shape.path_text}"

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        if len(values) <= maximum:
            return True, []
        return False, [shape.result(focus, None, component, generic)]

    return check


def _not_check(shape: CompiledShape, negated: CompiledShape) -> Check:
    component = str(SH.NotConstraintComponent)
    generic = f"Value conforms to the shape {negated.node}, which it must not"

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = []
        for v in values:
            conforms, _ = negated.validate(view, v)
            if conforms:
                found.append(shape.result(focus, v, component, generic))
        return not found, found

    return check


def _logical_check(shape: CompiledShape, combine: str, member_lists: list[list[CompiledShape]]) -> Check:
    component = str(
        {"and": SH.AndConstraintComponent, "or": SH.OrConstraintComponent}.get(
            combine, SH.XoneConstraintComponent
        )
    )
    generic = {
        "and": "Value does not conform to every shape in the sh:and list",
        "or": "Value does not conform to any shape in the sh:or list",
    }.get(combine, "Value does not conform to exactly one shape in the sh:xone list")

    def passes(view: View, members: list[CompiledShape], v: str) -> bool:
        outcomes = [m.validate(view, v)[0] for m in members]
        if combine == "and":
            return all(outcomes)
        if combine == "or":
            return any(outcomes)
        return sum(outcomes) == 1

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = []
        for members in member_lists:
            for v in values:
                if not passes(view, members, v):
                    found.append(shape.result(focus, v, component, generic))
        return not found, found

    return check


def value_text(v: str) -> str:
    """pyshacl's ``value_node_to_string``: a literal's lexical form, an IRI, a blank node's id."""
    return text_of(v)


def _length_check(shape: CompiledShape, limit: int, *, minimum: bool) -> Check:
    component = str(SH.MinLengthConstraintComponent if minimum else SH.MaxLengthConstraintComponent)
    generic = f"Value is {'shorter' if minimum else 'longer'} than {limit} characters"

    def ok(v: str) -> bool:
        if minimum and limit == 0:
            return True
        if v[0] == _BLANK_KIND:
            return False
        length = len(text_of(v))
        return length >= limit if minimum else length <= limit

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = [shape.result(focus, v, component, generic) for v in values if not ok(v)]
        return not found, found

    return check


def _pattern_check(shape: CompiledShape, patterns: list[Node], flags: Node | None) -> Check:
    component = str(SH.PatternConstraintComponent)
    re_flags = 0
    if flags is not None:
        text = str(flags).lower()
        if "i" in text:
            re_flags |= re.IGNORECASE
        if "m" in text:
            re_flags |= re.MULTILINE
    compiled = []
    for p in patterns:
        if not isinstance(p, Literal):
            raise UnsupportedShapesError("sh:pattern is not a literal")
        try:
            compiled.append((re.compile(str(p), re_flags), str(p)))
        except re.error as exc:
            raise UnsupportedShapesError(f"sh:pattern {str(p)!r} is not a valid expression: {exc}") from exc

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = []
        for matcher, source in compiled:
            for v in values:
                if v[0] == _BLANK_KIND or not matcher.search(text_of(v)):
                    message = f"Value does not match pattern {source!r}"
                    found.append(shape.result(focus, v, component, message))
        return not found, found

    return check


def _language_of(v: str) -> str | None:
    """The language tag of a literal term, lower-cased (None for other terms and untagged literals)."""
    end = v.rfind('"')
    if v[0] != _LITERAL_KIND or end + 1 >= len(v) or v[end + 1] != "@":
        return None
    return v[end + 2 :].lower() or None


def _language_in_check(shape: CompiledShape, languages: list[str]) -> Check:
    component = str(SH.LanguageInConstraintComponent)
    wanted = {x.lower() for x in languages}
    wildcard = "*" in wanted
    generic = f"Value's language is not one of {sorted(wanted)}"

    def ok(v: str) -> bool:
        lang = _language_of(v)
        if not lang:
            return False
        return wildcard or lang in wanted or lang.split("-")[0] in wanted

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = [shape.result(focus, v, component, generic) for v in values if not ok(v)]
        return not found, found

    return check


def _unique_lang_check(shape: CompiledShape) -> Check:
    component = str(SH.UniqueLangConstraintComponent)
    generic = "More than one value shares a language tag"

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        seen: set[str] = set()
        duplicates: set[str] = set()
        for v in values:
            lang = _language_of(v)
            if lang:
                if lang in seen:
                    duplicates.add(lang)
                seen.add(lang)
        found = [shape.result(focus, None, component, generic) for _ in duplicates]
        return not found, found

    return check


def _node_check(shape: CompiledShape, targets: list[CompiledShape]) -> Check:
    component = str(SH.NodeConstraintComponent)

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = []
        for target in targets:
            for v in values:
                conforms, nested = target.validate(view, v)
                if not conforms or nested:
                    found.append(
                        shape.result(focus, v, component, f"Value does not conform to shape {target.node}")
                    )
        return not found, found

    return check


def _property_check(nested: list[CompiledShape]) -> Check:
    """Run nested property shapes; those that need values are looked up by the node's predicates."""
    active = [p for p in nested if not p.deactivated]
    # Shapes that report nothing without values only matter for predicates the node has.
    when_present: dict[str, list[CompiledShape]] = {}
    always = []
    for p in active:
        if p.predicate is not None and p.empty_ok:
            when_present.setdefault(p.predicate, []).append(p)
        else:
            always.append(p)

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        conforms = True
        found: list[Finding] = []
        for v in values:
            out = view.out(v)
            for predicate, prop_values in out.items():
                props = when_present.get(predicate)
                if props is None:
                    continue
                for prop in props:
                    ok, results = prop.fast_run(view, v, prop_values)  # type: ignore[misc]
                    if not ok:
                        conforms = False
                    if results:
                        found.extend(results)
            for prop in always:
                if prop.predicate is not None:
                    ok, results = prop.fast_run(view, v, out.get(prop.predicate, []))  # type: ignore[misc]
                else:
                    ok, results = prop.validate(view, v)
                if not ok:
                    conforms = False
                if results:
                    found.extend(results)
        return conforms, found

    return check


def _qualified_check(
    shape: CompiledShape, inner: list[CompiledShape], low: int | None, high: int | None
) -> Check:
    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = []
        for target in inner:
            count = sum(1 for v in values if target.validate(view, v)[0])
            if high is not None and count > high:
                found.append(
                    shape.result(
                        focus, None, str(SH.QualifiedMaxCountConstraintComponent),
                        f"More than {high} values conform to {target.node}",
                    )
                )  # fmt: skip
            if low is not None and count < low:
                found.append(
                    shape.result(
                        focus, None, str(SH.QualifiedMinCountConstraintComponent),
                        f"Fewer than {low} values conform to {target.node}",
                    )
                )  # fmt: skip
        return not found, found

    return check


def _closed_check(shape: CompiledShape, allowed: set[str]) -> Check:
    component = str(SH.ClosedConstraintComponent)

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = []
        for v in values:
            for p, objects in view.out(v).items():
                if p in allowed:
                    continue
                for o in objects:
                    if p == RDF_TYPE_TERM and o == RDFS_RESOURCE_TERM:
                        continue
                    found.append(
                        Finding(
                            focus, text_of(p), component, shape.severity, o, shape.term,
                            shape.message or f"Node is closed; it cannot have a value for {text_of(p)}",
                        )
                    )  # fmt: skip
        return not found, found

    return check


def _has_value_check(shape: CompiledShape, expected: list[str]) -> Check:
    component = str(SH.HasValueConstraintComponent)

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = []
        for wanted in expected:
            if wanted not in values:
                found.append(shape.result(focus, None, component, f"Missing the value {text_of(wanted)}"))
        return not found, found

    return check


def _in_check(shape: CompiledShape, members: Iterable[str]) -> Check:
    component = str(SH.InConstraintComponent)
    allowed = frozenset(members)
    generic = "Value is not one of the allowed values"

    def check(view: View, focus: str, values: list[str]) -> CheckOutcome:
        found = [shape.result(focus, v, component, generic) for v in values if v not in allowed]
        return not found, found

    return check
