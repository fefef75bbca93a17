"""What the data plane must enforce for a permitted read: columns, rows, aggregates, reads.

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

from dataclasses import dataclass

from policies import terms
from policies.compile import compile_policy
from policies.errors import PolicyError
from policies.model import Constraint, ConstraintNode, LogicalConstraint, Policy, Rule
from policies.operands import column_name, is_row_filter
from policies.request import Request, World
from policies.values import Kind, ValueMismatch, coerce_right, kind_from_right, to_boolean, to_number


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
