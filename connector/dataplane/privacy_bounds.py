"""The clamping ranges and public key sets a provider declares for differentially private reads.

A sum has no bounded sensitivity unless each record's contribution is bounded: one outlier
row could move it by any amount. So a column may be summed (or averaged) under an epsilon
budget only if the agreement states its range, as two constraints of a permission (or of its
action's refinement)::

    {"leftOperand": "https://w3id.org/sluis/bounds/age", "operator": "gteq", "rightOperand": 0}
    {"leftOperand": "https://w3id.org/sluis/bounds/age", "operator": "lteq", "rightOperand": 120}

A grouped read needs, for each column it groups by, the key set the provider declares public::

    {"leftOperand": "https://w3id.org/sluis/keys/region", "operator": "isAnyOf",
     "rightOperand": ["GR", "NH", "UT", "ZH"]}

The read then releases exactly those groups, whatever the data holds (see ``privacy``).

Values are clamped into the range inside the engine before they are added up. Fail closed:
any other operator, a value that is not a finite number of sensible size, a range stated in
a disjunction (``or``/``xone``: it would not hold for certain), or a lower bound above the
upper one refuses the read. Several permissions stating a range for one column are
intersected (the tightest range wins: never looser than any of them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from connector.dataplane.errors import AccessDenied
from policies import terms
from policies.model import Constraint, ConstraintNode, LogicalConstraint, Policy
from policies.operands import bounds_column, is_bounds, is_keys, keys_column

# Larger bounds give noise no analysis could use, and sums where doubles lose whole units.
MAX_ABS_BOUND = 1e12
# Keys one column may declare: every one of them is a released (noisy) group of every read.
MAX_KEYS = 1_000
Key = str | int | float | bool


@dataclass(frozen=True)
class Bounds:
    """The closed range ``[lower, upper]`` a column's values are clamped to before a sum."""

    lower: float
    upper: float

    @property
    def sensitivity(self) -> float:
        """How far adding or removing one record (contributing one row) can move a clamped sum."""
        return max(abs(self.lower), abs(self.upper))


def _stated(nodes: Iterable[ConstraintNode], certain: bool = True) -> Iterable[tuple[Constraint, bool]]:
    """Every constraint of ``nodes`` and whether it holds for certain (not under ``or``/``xone``)."""
    for node in nodes:
        if isinstance(node, LogicalConstraint):
            conjunctive = terms.local_name(node.operator) in ("and", "andSequence")
            yield from _stated(node.operands, certain and conjunctive)
        else:
            yield node, certain


def _value(constraint: Constraint, column: str) -> float:
    operator = terms.local_name(constraint.operator)
    try:
        value = float(str(constraint.right[0].value)) if len(constraint.right) == 1 else math.nan
    except ValueError:
        value = math.nan
    if operator not in ("gteq", "lteq") or not abs(value) <= MAX_ABS_BOUND:
        raise AccessDenied(
            "privacy_bounds",
            f"the bounds of column {column!r} must be stated as 'gteq' and 'lteq' a finite number "
            f"within +-{MAX_ABS_BOUND:g}",
        )
    return value


def declared_bounds(policy: Policy) -> dict[str, Bounds]:
    """Column name (lower case) -> its declared range, from the policy's permissions."""
    lowers: dict[str, float] = {}
    uppers: dict[str, float] = {}
    for rule in policy.atomic_rules:
        if rule.kind != "permission":
            continue
        for constraint, certain in _stated([*rule.constraints, *rule.action.refinements]):
            if not is_bounds(constraint.left_operand):
                continue
            column = bounds_column(constraint.left_operand).lower()
            if not certain:
                raise AccessDenied(
                    "privacy_bounds",
                    f"the bounds of column {column!r} are stated inside or/xone: state them as plain "
                    "constraints of the permission",
                )
            value = _value(constraint, column)
            if terms.local_name(constraint.operator) == "gteq":
                lowers[column] = max(value, lowers.get(column, -math.inf))
            else:
                uppers[column] = min(value, uppers.get(column, math.inf))
    declared: dict[str, Bounds] = {}
    for column in lowers.keys() | uppers.keys():
        if column not in lowers or column not in uppers:
            raise AccessDenied(
                "privacy_bounds", f"column {column!r} has only one bound: state both 'gteq' and 'lteq'"
            )
        if lowers[column] > uppers[column]:
            reason = f"column {column!r}: the lower bound exceeds the upper bound"
            raise AccessDenied("privacy_bounds", reason)
        declared[column] = Bounds(lowers[column], uppers[column])
    return declared


def _keys(constraint: Constraint, column: str) -> tuple[Key, ...]:
    operator = terms.local_name(constraint.operator)
    values = [value.value for value in constraint.right]
    plain = all(isinstance(value, str | int | float | bool) for value in values)
    if operator not in ("isAnyOf", "eq") or not values or not plain or len(values) > MAX_KEYS:
        raise AccessDenied(
            "privacy_keys",
            f"the public keys of column {column!r} must be stated as 'isAnyOf' a list of 1..{MAX_KEYS} "
            "plain values",
        )
    keys: list[Key] = []
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            raise AccessDenied("privacy_keys", f"the public keys of column {column!r} must be finite")
        if value not in keys:
            keys.append(value)
    return tuple(keys)


def declared_keys(policy: Policy) -> dict[str, tuple[Key, ...]]:
    """Column name (lower case) -> its declared public keys, in the order stated, from the
    policy's permissions; several statements for one column keep the keys all of them state."""
    declared: dict[str, tuple[Key, ...]] = {}
    for rule in policy.atomic_rules:
        if rule.kind != "permission":
            continue
        for constraint, certain in _stated([*rule.constraints, *rule.action.refinements]):
            if not is_keys(constraint.left_operand):
                continue
            column = keys_column(constraint.left_operand).lower()
            if not certain:
                raise AccessDenied(
                    "privacy_keys",
                    f"the public keys of column {column!r} are stated inside or/xone: state them as a "
                    "plain constraint of the permission",
                )
            keys = _keys(constraint, column)
            known = declared.get(column)
            declared[column] = keys if known is None else tuple(key for key in known if key in keys)
    return declared
