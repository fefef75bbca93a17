"""Find mistakes in a policy before anyone relies on it.

Checks: terms the engine does not know (they make rules fail closed); constraints that can
never hold (``dateTime gt 2026`` and ``lt 2025`` in one rule); a permission and a prohibition
that overlap with no conflict strategy; offers DSP would reject (a ``target`` in a catalog
offer, ``Set`` instead of ``Offer``, refined actions where DSP wants a string); agreements
without assigner or assignee; row filters where the data plane cannot apply them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from policies import terms
from policies.compile import SUPPORTED_PROFILES
from policies.errors import PolicyError
from policies.model import Constraint, ConstraintNode, LogicalConstraint, Policy, Rule
from policies.operands import is_row_filter, lookup
from policies.values import (
    Comparable,
    Kind,
    ValueMismatch,
    coerce_right,
    kind_from_right,
    order,
    unsupported_datatype,
)

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    rule: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "rule": self.rule}


def lint(policy: Policy | str | bytes | Mapping[str, Any], media_type: str | None = None) -> list[Finding]:
    """Findings for a parsed policy, or for a document (a parse error becomes one finding)."""
    if not isinstance(policy, Policy):
        from policies.parse import parse_policy

        try:
            policy = parse_policy(policy, media_type)
        except PolicyError as error:
            return [Finding(error.code, "error", str(error), error.location)]
    findings: list[Finding] = []
    findings.extend(_profiles(policy))
    findings.extend(_dsp_shape(policy))
    seen: dict[str, int] = {}
    for rule in policy.atomic_rules:
        seen[rule.uid] = seen.get(rule.uid, 0) + 1
        findings.extend(_rule_terms(rule))
        findings.extend(_never_holds(rule))
    for uid, count in seen.items():
        if count > 1:
            findings.append(Finding("duplicate-rule-uid", "error", f"{count} rules share the uid {uid}", uid))
    findings.extend(_conflicts(policy))
    if not policy.permissions():
        findings.append(
            Finding("nothing-permitted", "warning", "the policy has no permission: every request is denied")
        )
    return findings


def _profiles(policy: Policy) -> Iterator[Finding]:
    for profile in policy.profiles:
        if profile not in SUPPORTED_PROFILES:
            yield Finding(
                "unknown-profile", "error", f"profile {profile} is not supported: every request is denied"
            )


def _dsp_shape(policy: Policy) -> Iterator[Finding]:
    if policy.type == terms.OFFER and policy.targets:
        yield Finding(
            "dsp-offer-target",
            "warning",
            "a DSP catalog Offer must not carry a target (the dataset is the target); allowed only inside "
            "a ContractRequestMessage",
        )
    if policy.type == terms.SET:
        yield Finding(
            "dsp-set-not-offer", "warning", "DSP exchanges Offers and Agreements; this policy is a Set"
        )
    if policy.type == terms.OFFER and not policy.assigners:
        yield Finding(
            "offer-without-assigner",
            "info",
            "ODRL asks an Offer to name its assigner; DSP catalog offers leave it implicit (the provider)",
        )
    if policy.type == terms.AGREEMENT:
        for role in ("assigner", "assignee"):
            if not getattr(policy, role + "s") and not all(
                getattr(r, role + "s") for r in policy.atomic_rules
            ):
                yield Finding(f"agreement-without-{role}", "error", f"the Agreement names no {role}")
        if not policy.targets:
            yield Finding(
                "agreement-without-target", "warning", "a DSP Agreement must name its target at policy level"
            )
    for rule in policy.rules:
        if any(a.refinements for a in rule.actions):
            yield Finding(
                "dsp-refined-action",
                "info",
                "DSP's schema wants the action as a string; "
                "a refined action is ODRL but not DSP-schema valid",
                rule.uid,
            )


def _atoms(
    nodes: tuple[ConstraintNode, ...], inside_disjunction: bool = False
) -> Iterator[tuple[Constraint, bool]]:
    for node in nodes:
        if isinstance(node, LogicalConstraint):
            disjunctive = inside_disjunction or terms.local_name(node.operator) in ("or", "xone")
            yield from _atoms(node.operands, disjunctive)
        else:
            assert isinstance(node, Constraint)
            yield node, inside_disjunction


def _all_constraints(rule: Rule) -> tuple[ConstraintNode, ...]:
    nodes: list[ConstraintNode] = [*rule.constraints, *rule.action.refinements]
    for entity in (*rule.targets, *rule.assignees):
        nodes.extend(entity.refinements)
    return tuple(nodes)


def _rule_terms(rule: Rule) -> Iterator[Finding]:
    if not terms.is_known_action(rule.action.iri):
        yield Finding(
            "unknown-action", "error", f"unknown action {rule.action.iri!r}: the rule fails closed", rule.uid
        )
    for duty in (*rule.duties, *rule.remedies, *rule.consequences):
        if not terms.is_known_action(duty.action.iri):
            yield Finding(
                "unknown-action",
                "error",
                f"duty {duty.uid} has the unknown action {duty.action.iri!r}",
                rule.uid,
            )
        for constraint, _ in _atoms(duty.constraints):
            yield from _constraint_terms(constraint, rule)
    for constraint, disjunctive in _atoms(_all_constraints(rule)):
        yield from _constraint_terms(constraint, rule)
        if is_row_filter(constraint.left_operand) or constraint.left_operand == terms.AGGREGATE_ONLY:
            if rule.kind == "prohibition":
                yield Finding(
                    "row-filter-in-prohibition",
                    "warning",
                    f"{constraint.left_operand} is enforced by the data plane; in a prohibition it makes the "
                    "prohibition always apply. Use isNoneOf / neq on a permission instead",
                    rule.uid,
                )
            if disjunctive:
                yield Finding(
                    "row-filter-in-disjunction",
                    "warning",
                    f"{constraint.left_operand} inside or/xone cannot be enforced row by row; "
                    "the rule fails closed",
                    rule.uid,
                )
        if constraint.left_operand == terms.PURPOSE or constraint.left_operand in (
            terms.SPATIAL,
            terms.COMPUTE_SITE,
        ):
            yield from _unknown_concepts(constraint, rule)


_ZONELESS: Final = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T[\d:.]+$")


def _constraint_terms(constraint: Constraint, rule: Rule) -> Iterator[Finding]:
    if lookup(constraint.left_operand) is None:
        yield Finding(
            "unknown-left-operand",
            "error",
            f"unknown left operand {constraint.left_operand!r}: the rule fails closed",
            rule.uid,
        )
    if constraint.operator not in terms.OPERATORS:
        yield Finding(
            "unknown-operator",
            "error",
            f"unknown operator {constraint.operator!r}: the rule fails closed",
            rule.uid,
        )
    if constraint.right_reference:
        yield Finding(
            "unsupported-right-operand-reference",
            "error",
            "rightOperandReference is not supported: the rule fails closed",
            rule.uid,
        )
    operand = lookup(constraint.left_operand)
    if (
        operand is not None
        and operand.kind is Kind.DATETIME
        and any(isinstance(v.value, str) and _ZONELESS.match(v.value.strip()) for v in constraint.right)
    ):
        yield Finding(
            "date-time-without-zone",
            "warning",
            f"{constraint.left_operand} is compared with a date-time without a time zone: within 14 "
            "hours of it the order is indeterminate and the rule fails closed; add Z or an offset",
            rule.uid,
        )
    if constraint.unit:
        yield Finding(
            "unsupported-unit",
            "error",
            f"unit {constraint.unit!r} is not supported (no unit conversion): the rule fails closed",
            rule.uid,
        )
    if operand is not None:
        rights = constraint.right
        if constraint.datatype and not any(v.datatype for v in rights):
            rights = tuple(v.__class__(v.value, constraint.datatype) for v in rights)
        kind = operand.kind or kind_from_right(rights)
        for datatype in (constraint.datatype, *(v.datatype for v in constraint.right)):
            why = unsupported_datatype(datatype, kind)
            if why is not None:
                yield Finding("unsupported-datatype", "error", f"{why}: the rule fails closed", rule.uid)


def _unknown_concepts(constraint: Constraint, rule: Rule) -> Iterator[Finding]:
    from vocab.hierarchy import places, purposes

    for value in constraint.right:
        iri = str(value.value)
        for base, hierarchy in (
            ("https://w3id.org/sluis/purpose/", purposes()),
            ("https://w3id.org/sluis/place/", places()),
        ):
            if iri.startswith(base) and not hierarchy.knows(iri):
                yield Finding(
                    "unknown-concept",
                    "warning",
                    f"{iri} is not in our {base.split('/')[-2]} hierarchy",
                    rule.uid,
                )


def _never_holds(rule: Rule) -> Iterator[Finding]:
    """Conjunctions of ordered constraints on one operand whose interval is empty."""
    bounds: dict[str, list[tuple[str, Comparable]]] = {}
    equals: dict[str, set[str]] = {}
    for constraint, disjunctive in _atoms(rule.constraints):
        if disjunctive:
            continue
        op = terms.local_name(constraint.operator)
        operand = lookup(constraint.left_operand)
        if operand is None or len(constraint.right) != 1:
            continue
        kind = operand.kind or kind_from_right(constraint.right)
        try:
            value = coerce_right(constraint.right[0], kind)
        except ValueMismatch as error:
            yield Finding("unreadable-value", "error", f"{constraint.left_operand}: {error}", rule.uid)
            continue
        if op in ("lt", "lteq", "gt", "gteq") and kind in (Kind.DATETIME, Kind.NUMBER, Kind.DURATION):
            bounds.setdefault(constraint.left_operand, []).append((op, value))
        elif op == "eq" and not operand.set_valued:
            equals.setdefault(constraint.left_operand, set()).add(str(value))
    for left, items in bounds.items():
        if _empty_interval(items):
            shown = " and ".join(f"{op} {v}" for op, v in items)
            yield Finding(
                "never-holds", "error", f"{terms.compact_term(left)} {shown} can never hold", rule.uid
            )
    for left, values in equals.items():
        if len(values) > 1:
            yield Finding(
                "never-holds",
                "error",
                f"{terms.compact_term(left)} cannot equal all of {sorted(values)}",
                rule.uid,
            )


def _empty_interval(items: list[tuple[str, Comparable]]) -> bool:
    lows = [(v, op == "gt") for op, v in items if op in ("gt", "gteq")]
    highs = [(v, op == "lt") for op, v in items if op in ("lt", "lteq")]
    try:
        for low, low_strict in lows:
            for high, high_strict in highs:
                sign = order(low, high)
                if sign > 0 or (sign == 0 and (low_strict or high_strict)):
                    return True
    except ValueMismatch:
        return False
    return False


def _conflicts(policy: Policy) -> Iterator[Finding]:
    if policy.conflict is not None:
        return
    for permission in policy.permissions():
        for prohibition in policy.prohibitions():
            if _overlap(permission, prohibition):
                yield Finding(
                    "conflict-without-strategy",
                    "warning",
                    f"permission {permission.uid} and prohibition {prohibition.uid} can apply to the same "
                    "request and the policy sets no conflict strategy: the default, invalid, voids the "
                    "policy for such "
                    "requests (set conflict to prohibit or perm)",
                    permission.uid,
                )


def _overlap(a: Rule, b: Rule) -> bool:
    actions = terms.action_included_in(a.action.iri, b.action.iri) or terms.action_included_in(
        b.action.iri, a.action.iri
    )
    targets = a.target is None or b.target is None or a.target.iri == b.target.iri
    parties = a.assignee is None or b.assignee is None or a.assignee.iri == b.assignee.iri
    return actions and targets and parties


__all__ = ["Finding", "lint"]
