"""Decision scopes, and what the data plane must enforce for a permitted read.

**Scopes.** A policy is decided at several moments of a contract's life, and not every fact
exists at each: a catalog request has a party but no declared purpose; a negotiation has a
declared purpose but no job yet; a transfer binds a job (id, compute site); every read has all
of them. :func:`decide_in_scope` decides for one :class:`Scope`: a denial that is *only* for
want of facts the scope does not have yet (:data:`LATER_FACTS`) is a permit *for now* - a
permission that would hold but for them, and no prohibition that holds or could hold for any
other reason - and those facts are decided when they exist. Anything else unknown (an unknown
term, a missing credential) still denies. The ``access`` and ``transfer`` scopes defer nothing.

**Data scope.** What the data plane must enforce for a permitted read: columns, rows,
aggregates, reads.

The decision says *whether* a job may read; the scope says *what* it may see. It is taken
from the permissions that grant the request (their constraints, action refinements and
target refinements, through ``and`` / ``andSequence``):

* ``sluis:columns isPartOf|isAnyOf|isAllOf [..]`` -> ``allowed_columns``; ``isNoneOf`` -> ``denied_columns``;
* ``https://w3id.org/sluis/column/<name> <op> <value>`` -> a ``RowFilter``;
* action ``aggregate`` or ``sluis:aggregateOnly eq true`` -> ``aggregate_only``;
  ``sluis:groupSize gteq k`` (or ``gt k-1``) -> ``min_group_size``;
* ``count lteq N`` (or ``lt N+1``) -> ``max_reads``.

When several permissions grant the read, the data plane enforces all of their restrictions
together (an intersection): stricter than necessary, never looser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, partial
from typing import Final

from policies import terms
from policies.compile import compile_policy
from policies.errors import PolicyError
from policies.explanation import Decision, Premise, RuleReport, State
from policies.model import Constraint, ConstraintNode, LogicalConstraint, Policy, Rule
from policies.operands import column_name, is_row_filter
from policies.request import Request, World
from policies.values import Kind, ValueMismatch, coerce_right, kind_from_right, to_boolean, to_number


class Scope(StrEnum):
    """The moments a policy is decided at (the names EDC gives its policy scopes)."""

    ACCESS = "access"  # who may see or name an offer: the access policy, at every step
    CATALOG = "catalog"  # the usage policy while listing offers
    NEGOTIATION = "negotiation"  # the usage policy when an agreement is made
    TRANSFER = "transfer"  # the agreement when a transfer starts, and at every read


#: Facts a scope cannot have yet; a denial only for want of them is a permit for now.
LATER_FACTS: Final[dict[Scope, frozenset[str]]] = {
    Scope.ACCESS: frozenset(),
    Scope.CATALOG: frozenset({terms.PURPOSE, terms.COMPUTE_SITE, terms.JOB_ID}),
    Scope.NEGOTIATION: frozenset({terms.COMPUTE_SITE, terms.JOB_ID}),
    Scope.TRANSFER: frozenset(),
}


@dataclass(frozen=True)
class ScopedDecision:
    """A decision in a scope: ``deferred`` names the later facts a permit for now waits for.

    ``decision`` (the explanation tree) is built when first read: a plain permit is decided
    without it, and the connector re-decides its policies at every step of a negotiation.
    """

    permitted: bool
    summary: str
    explained: Callable[[], Decision] = field(repr=False, compare=False)
    deferred: tuple[str, ...] = ()

    @cached_property
    def decision(self) -> Decision:
        """The full explanation of this decision (built once, on first use)."""
        return self.explained()


def decide_in_scope(policy: Policy, request: Request, world: World, scope: Scope) -> ScopedDecision:
    """Decide ``request`` in ``scope``: like :func:`policies.evaluate`, but a denial waiting only
    for facts of a later scope (that the request does not state) is a permit for now.

    A permit takes the compiled fast path (same predicates, no explanation recorded); a denial
    or a deferral is explained, because its reasons are what the caller reports.
    """
    compiled = compile_policy(policy)
    summary = compiled.permit_summary(request, world)
    if summary is not None:
        return ScopedDecision(True, summary, partial(compiled.explain, request, world))
    return explained_in_scope(policy, request, world, scope)


def explained_in_scope(policy: Policy, request: Request, world: World, scope: Scope) -> ScopedDecision:
    """:func:`decide_in_scope` with the explanation built first, whatever the answer.

    The reference the fast path is tested against, and the path for callers that show the
    explanation of a permit too.
    """
    decision = compile_policy(policy).explain(request, world)
    if decision.permitted:
        return ScopedDecision(True, decision.summary, partial(_given, decision))
    later = LATER_FACTS[scope] - set(request.operands)
    waiting = _waiting_only_for(decision, later) if later else None
    if waiting is None:
        return ScopedDecision(False, decision.summary, partial(_given, decision))
    names = ", ".join(terms.compact_term(t) for t in waiting)
    summary = f"permit for now: {decision.summary}; {names} decided when known"
    return ScopedDecision(True, summary, partial(_given, decision), waiting)


def _given(decision: Decision) -> Decision:
    return decision


def _unknown_leaves(premises: tuple[Premise, ...]) -> list[Premise]:
    found: list[Premise] = []
    for premise in premises:
        if premise.premises:
            found.extend(_unknown_leaves(premise.premises))
        elif premise.state is State.UNKNOWN:
            found.append(premise)
    return found


def _only_later(report: RuleReport, later: frozenset[str]) -> tuple[str, ...] | None:
    leaves = _unknown_leaves(report.premises)
    if not leaves or any(
        leaf.kind != "constraint" or leaf.left_operand not in later or leaf.unknown_term for leaf in leaves
    ):
        return None
    return tuple(sorted({str(leaf.left_operand) for leaf in leaves}))


def _waiting_only_for(decision: Decision, later: frozenset[str]) -> tuple[str, ...] | None:
    """The later facts a permit waits for, or ``None`` if the denial has another reason."""
    if decision.unknown_terms or decision.unsupported_profiles:
        return None
    waiting: set[str] = set()
    for report in decision.rules:
        if report.kind == "prohibition":
            if report.state is State.SATISFIED or report.active:
                return None
            if report.state is State.UNKNOWN:
                facts = _only_later(report, later)
                if facts is None:
                    return None
                waiting.update(facts)
        elif report.kind == "obligation" and any(duty.blocking for duty in report.duties):
            return None
    granting = [
        facts
        for report in decision.rules
        if report.kind == "permission" and report.state is State.UNKNOWN
        for facts in [_only_later(report, later)]
        if facts is not None
    ]
    if not granting:
        return None
    waiting.update(granting[0])
    return tuple(sorted(waiting))


@dataclass(frozen=True, slots=True)
class RowFilter:
    """Only rows whose ``column`` satisfies ``operator value`` may be read."""

    column: str
    operator: str  # ODRL operator local name: eq, neq, lt, lteq, gt, gteq, isAnyOf, isNoneOf, ...
    value: object  # a scalar, or a tuple for list operators


@dataclass(frozen=True, slots=True)
class DataScope:
    allowed_columns: frozenset[str] | None
    denied_columns: frozenset[str]
    row_filters: tuple[RowFilter, ...]
    aggregate_only: bool
    min_group_size: int | None
    max_reads: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "allowedColumns": sorted(self.allowed_columns) if self.allowed_columns is not None else None,
            "deniedColumns": sorted(self.denied_columns),
            "rowFilters": [
                {
                    "column": f.column,
                    "operator": f.operator,
                    "value": list(f.value) if isinstance(f.value, tuple) else f.value,
                }
                for f in self.row_filters
            ],
            "aggregateOnly": self.aggregate_only,
            "minGroupSize": self.min_group_size,
            "maxReads": self.max_reads,
        }


def data_scope(policy: Policy, request: Request, world: World | None = None) -> DataScope:
    """The restrictions on a permitted read; ``PolicyError("not-permitted")`` if it is denied."""
    decision = compile_policy(policy).explain(request, world or World())
    if not decision.permitted:
        raise PolicyError("not-permitted", decision.summary)
    granting = {report.rule for report in decision.rules if report.kind == "permission" and report.active}
    builder = _ScopeBuilder()
    for rule in policy.atomic_rules:
        if rule.kind == "permission" and rule.uid in granting:
            builder.add_rule(rule)
    return builder.build()


class _ScopeBuilder:
    def __init__(self) -> None:
        self.allowed: frozenset[str] | None = None
        self.denied: set[str] = set()
        self.filters: list[RowFilter] = []
        self.aggregate_only = False
        self.min_group: int | None = None
        self.max_reads: int | None = None

    def add_rule(self, rule: Rule) -> None:
        if terms.canonical_action(rule.action.iri) == terms.AGGREGATE:
            self.aggregate_only = True
        nodes: list[ConstraintNode] = [*rule.constraints, *rule.action.refinements]
        if rule.target is not None:
            nodes.extend(rule.target.refinements)
        for node in nodes:
            self._add(node)

    def _add(self, node: ConstraintNode) -> None:
        if isinstance(node, LogicalConstraint):
            if terms.local_name(node.operator) in ("and", "andSequence"):
                for operand in node.operands:
                    self._add(operand)
            return
        assert isinstance(node, Constraint)
        op = terms.local_name(node.operator)
        left = node.left_operand
        try:
            if is_row_filter(left):
                self._row_filter(node, op)
            elif left == terms.COLUMNS:
                names = frozenset(str(v.value) for v in node.right)
                if op in ("isPartOf", "isAnyOf", "isAllOf") or (op == "eq" and not node.right_is_list):
                    self.allowed = names if self.allowed is None else self.allowed & names
                elif op == "isNoneOf" or op == "neq":
                    self.denied.update(names)
            elif (
                left == terms.AGGREGATE_ONLY and op == "eq" and node.right and to_boolean(node.right[0].value)
            ):
                self.aggregate_only = True
            elif left == terms.GROUP_SIZE and node.right and op in ("gteq", "gt"):
                size = int(to_number(node.right[0].value)) + (1 if op == "gt" else 0)
                self.min_group = size if self.min_group is None else max(self.min_group, size)
            elif left == terms.COUNT and node.right and op in ("lteq", "lt"):
                limit = int(to_number(node.right[0].value)) - (1 if op == "lt" else 0)
                self.max_reads = limit if self.max_reads is None else min(self.max_reads, limit)
        except ValueMismatch:
            return  # an unreadable value already made the decision fail closed

    def _row_filter(self, node: Constraint, op: str) -> None:
        kind = kind_from_right(node.right)
        if kind is Kind.IRI:
            kind = Kind.TEXT
        values = tuple(_plain(coerce_right(v, kind)) for v in node.right)
        value: object = values if node.right_is_list else (values[0] if values else None)
        self.filters.append(RowFilter(column_name(node.left_operand), op, value))

    def build(self) -> DataScope:
        return DataScope(
            allowed_columns=self.allowed,
            denied_columns=frozenset(self.denied),
            row_filters=tuple(self.filters),
            aggregate_only=self.aggregate_only,
            min_group_size=self.min_group,
            max_reads=self.max_reads,
        )


def _plain(value: object) -> object:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
