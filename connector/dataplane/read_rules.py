"""What an agreement says about *how* its reads are counted and checked, beyond ``data_scope``.

* ``sluis:disclosureProfile eq "<name>"``: the output-checking profile of an aggregate-only
  agreement (``disclosure.PROFILES``); none named means the default profile.
* ``sluis:epsilon lteq E``: a differential-privacy budget for aggregate reads (``privacy``).
* ``sluis:readScope eq "agreement"``: the read limit counts reads under this agreement only.
  Without it, reads are counted **per consumer and offer**: the counter is keyed by the
  consumer, the asset and the agreement's rules (ids, parties and timestamps left out), so a
  consumer that negotiates the same offer again continues the count it had.

Both are read from every permission of the policy (the strictest wins: a profile named by two
permissions must be the same one, and ``agreement`` scope applies only if every permission that
states a read scope says so).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from connector.dataplane.contract_state import AgreementView
from connector.dataplane.errors import AccessDenied
from policies import terms
from policies.model import Constraint, ConstraintNode, LogicalConstraint, Policy

# Members that differ between two agreements made from one offer and do not change its rules.
_NOT_RULES = frozenset({"@id", "uid", "assignee", "assigner", "target", "timestamp", "@context", "proof"})
_RULE_MEMBERS = ("permission", "prohibition", "obligation")


@dataclass(frozen=True)
class ReadRules:
    profile: str | None
    per_agreement: bool
    epsilon: float | None = None  # differential-privacy budget (``sluis:epsilon lteq E``)


def _constraints(nodes: Iterable[ConstraintNode]) -> Iterable[Constraint]:
    for node in nodes:
        if isinstance(node, LogicalConstraint):
            yield from _constraints(node.operands)
        else:
            yield node


def read_rules(policy: Policy) -> ReadRules:
    profiles: set[str] = set()
    scopes: set[str] = set()
    budgets: list[float] = []
    for rule in policy.atomic_rules:
        if rule.kind != "permission":
            continue
        nodes: list[ConstraintNode] = [*rule.constraints, *rule.action.refinements]
        for constraint in _constraints(nodes):
            if constraint.left_operand == terms.DISCLOSURE_PROFILE:
                profiles.update(str(value.value) for value in constraint.right)
            elif constraint.left_operand == terms.READ_SCOPE:
                scopes.update(str(value.value) for value in constraint.right)
            elif constraint.left_operand == terms.EPSILON:
                budgets.append(_budget(constraint))
    if len(profiles) > 1:
        raise AccessDenied(
            "disclosure_profile", f"the agreement names several disclosure profiles: {sorted(profiles)}"
        )
    unknown = scopes - {"agreement", "offer"}
    if unknown:
        raise AccessDenied("read_scope", f"unknown read scope {sorted(unknown)}; use 'agreement' or 'offer'")
    return ReadRules(next(iter(profiles), None), scopes == {"agreement"}, min(budgets) if budgets else None)


def _budget(constraint: Constraint) -> float:
    """``sluis:epsilon lteq E`` (or ``lt``, ``eq``): a positive finite budget, else the read is refused."""
    operator = terms.local_name(constraint.operator)
    try:
        value = float(str(constraint.right[0].value)) if len(constraint.right) == 1 else None
    except ValueError:
        value = None
    if operator not in ("lteq", "lt", "eq") or value is None or not 0 < value < 1e6:
        raise AccessDenied("privacy_budget", "sluis:epsilon must be 'lteq' a positive number")
    return value


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_ids(item) for key, item in value.items() if key not in _NOT_RULES}
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    return value


def read_counter(agreement: AgreementView, rules: ReadRules) -> str:
    """The key reads are counted under (see the module docstring)."""
    if rules.per_agreement:
        return agreement.id
    body = {member: _without_ids(agreement.policy.get(member)) for member in _RULE_MEMBERS}
    text = json.dumps([agreement.consumer_id, agreement.asset_id, body], sort_keys=True, default=str)
    return "offer:" + hashlib.sha256(text.encode()).hexdigest()
