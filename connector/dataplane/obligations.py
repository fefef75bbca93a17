"""Which duties an agreement puts on the consumer, read from its ODRL policy.

Tracked duties (``docs/dataplane.md``):

* ``delete`` (and any other action) with ``elapsedTime lteq <duration>`` -> due that long after
  the first read; with ``dateTime lteq <instant>`` -> due at that instant; shown as pending,
  overdue once past due, fulfilled when the consumer confirms it (with a note as evidence);
* ``inform`` (notify on use) -> fulfilled by the data plane itself: every read is recorded, so
  the provider sees each use in the obligation listing and in the audit log.

For ``policies.evaluate`` the data plane reports duty states in ``World.duties``: ``inform``
duties as fulfilled, confirmed ones as fulfilled, overdue ones as violated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from policies import Constraint, Policy, Rule
from policies.values import ValueMismatch, to_datetime, to_duration

ODRL = "http://www.w3.org/ns/odrl/2/"
PER_USE_ACTIONS = frozenset({ODRL + "inform"})


@dataclass(frozen=True)
class Duty:
    uid: str
    action: str  # local name, e.g. "delete"
    description: str
    due_after: timedelta | None
    due_at: datetime | None
    per_use: bool

    def due(self, first_use: datetime, agreed: datetime | None = None) -> datetime | None:
        """When the duty falls due: its instant, or its duration after the agreement was made
        (the clock ``elapsedTime`` is measured by), else after the first read."""
        if self.due_at is not None:
            return self.due_at
        if self.due_after is not None:
            return (agreed or first_use) + self.due_after
        return None


def _local(iri: str) -> str:
    return iri[len(ODRL):] if iri.startswith(ODRL) else iri


def _atoms(rule: Rule) -> Iterator[Constraint]:
    for node in (*rule.constraints, *rule.action.refinements):
        yield from node.iter_atoms()


def _duty(rule: Rule) -> Duty:
    action = rule.action.iri
    due_after: timedelta | None = None
    due_at: datetime | None = None
    for atom in _atoms(rule):
        operator = _local(atom.operator)
        if not atom.right or operator not in ("lteq", "lt", "eq"):
            continue
        try:
            if atom.left_operand == ODRL + "elapsedTime":
                due_after = timedelta(seconds=float(to_duration(atom.right[0].value)))
            elif atom.left_operand == ODRL + "dateTime":
                due_at = to_datetime(atom.right[0].value)
        except ValueMismatch:
            continue
    per_use = action in PER_USE_ACTIONS
    name = _local(action)
    if per_use:
        description = f"{name}: notify the provider of every use (recorded by the data plane at each read)"
    elif due_at is not None:
        description = f"{name} by {due_at.isoformat()}"
    elif due_after is not None:
        description = f"{name} within {due_after.days} day(s) of the agreement" if due_after.days else \
            f"{name} within {int(due_after.total_seconds())} s of the agreement"
    else:
        description = f"{name} (no deadline stated)"
    return Duty(rule.uid, name, description, due_after, due_at, per_use)


def agreed_at(policy: Policy) -> datetime | None:
    """The agreement's timestamp, if it has a readable one."""
    if policy.timestamp is None:
        return None
    try:
        return to_datetime(policy.timestamp)
    except ValueMismatch:
        return None


def duties_of(policy: Policy) -> list[Duty]:
    """Every duty of the policy's permissions and every obligation, once each."""
    seen: dict[str, Duty] = {}
    for rule in policy.atomic_rules:
        candidates: tuple[Rule, ...] = ()
        if rule.kind == "permission":
            candidates = rule.duties
        elif rule.kind == "obligation":
            candidates = (rule,)
        for duty_rule in candidates:
            if duty_rule.uid not in seen:
                seen[duty_rule.uid] = _duty(duty_rule)
    return list(seen.values())
