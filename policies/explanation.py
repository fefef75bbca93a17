"""The explanation of a decision: a tree of rule and premise reports, as values.

A ``Decision`` holds one ``RuleReport`` per atomic rule; each lists its premises (target,
party, action, constraints with nested logical constraints) with the resolved left-operand
value, the operator, the right operand and the state. ``Decision.to_json()`` is the contract
the CLI prints; ``policies.report.decision_graph`` gives the same report in the W3C ODRL
Community Group compliance report model, and ``decision_sentences`` reads it out for a person
(they live there, not here, so this module and the report do not import each other).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from policies import terms
from policies.values import display

if TYPE_CHECKING:
    from policies.model import Policy
    from policies.request import Request, World


class State(StrEnum):
    SATISFIED = "satisfied"
    UNSATISFIED = "unsatisfied"
    UNKNOWN = "unknown"  # cannot tell: missing value or unknown term; rules fail closed
    DEFERRED = "enforced-by-data-plane"  # holds for the decision; the data plane filters rows
    SKIPPED = "not-evaluated"  # after an unsatisfied member of an andSequence


def all_of(states: list[State]) -> State:
    """Conjunction in three-valued logic; data-plane premises count as satisfied."""
    if State.UNSATISFIED in states:
        return State.UNSATISFIED
    if State.UNKNOWN in states:
        return State.UNKNOWN
    if State.DEFERRED in states:
        return State.DEFERRED
    return State.SATISFIED


def holds(state: State) -> bool:
    return state is State.SATISFIED or state is State.DEFERRED


class Premise(NamedTuple):
    """One premise of a rule: a target, party or action match, or a (logical) constraint.

    A named tuple rather than a frozen dataclass: as immutable, and several times cheaper to
    build, which matters because an explained decision builds one per premise.
    """

    kind: str  # target | party | action | constraint | refinement | and | or | xone | andSequence
    state: State
    reason: str = ""
    left_operand: str | None = None
    operator: str | None = None
    right_operand: object = None
    value: object = None
    unknown_term: str | None = None
    uid: str | None = None
    premises: tuple[Premise, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind, "state": self.state.value}
        if self.uid:
            body["constraint"] = self.uid
        if self.left_operand is not None:
            body["leftOperand"] = self.left_operand
        if self.operator is not None:
            body["operator"] = terms.local_name(self.operator)
        if self.right_operand is not None:
            body["rightOperand"] = display(self.right_operand)
        if self.value is not None:
            body["value"] = display(self.value)
        if self.unknown_term:
            body["unknownTerm"] = self.unknown_term
        body["reason"] = self.describe()
        if self.premises:
            body["premises"] = [p.to_json() for p in self.premises]
        return body

    def failure_text(self) -> str:
        """This premise as the cause of a rule's state, e.g. for a summary."""
        if self.left_operand is None:
            return self.describe()
        text = (
            f"{terms.compact_term(self.left_operand)} {terms.local_name(self.operator or '')} "
            f"{display(self.right_operand)}"
        )
        if self.value is not None:
            text += f" (value {display(self.value)})"
        return f"{text} is {self.state.value}" + (f": {self.reason}" if self.reason else "")

    def describe(self) -> str:
        """Why this premise has its state, in a sentence (made on demand, not per decision)."""
        if self.reason or self.left_operand is None:
            return self.reason
        verb = "satisfies" if self.state is State.SATISFIED else "does not satisfy"
        return (
            f"{terms.compact_term(self.left_operand)} = {display(self.value)} {verb} "
            f"{terms.local_name(self.operator or '')} {display(self.right_operand)}"
        )

    def unknown_terms(self) -> list[str]:
        found = [self.unknown_term] if self.unknown_term else []
        for premise in self.premises:
            found.extend(premise.unknown_terms())
        return found


@dataclass(frozen=True, slots=True)
class DutyReport:
    """A duty (pre-condition, obligation, remedy or consequence) and its state."""

    rule: str
    role: str  # duty | obligation | remedy | consequence
    action: str
    active: bool
    state: str  # fulfilled | violated | pending | inactive | unknown
    blocking: bool
    reason: str
    premises: tuple[Premise, ...] = ()
    consequences: tuple[DutyReport, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "duty": self.rule,
            "role": self.role,
            "action": self.action,
            "active": self.active,
            "state": self.state,
            "blocking": self.blocking,
            "reason": self.reason,
            "premises": [p.to_json() for p in self.premises],
        }
        if self.consequences:
            body["consequences"] = [c.to_json() for c in self.consequences]
        return body


@dataclass(frozen=True)
class RuleReport:
    """One atomic rule: whether it applies to the request, is active, and why.

    ``reason`` is written on demand from ``note`` and the first premise that failed (``cause``),
    so a decision nobody reads out costs no sentence-making.
    """

    rule: str
    kind: str  # permission | prohibition | obligation
    action: str
    target: str | None
    active: bool
    state: State
    note: str
    premises: tuple[Premise, ...]
    duties: tuple[DutyReport, ...] = ()
    origin: str = ""
    cause: Premise | None = None
    suffix: str = ""

    @cached_property
    def reason(self) -> str:
        text = self.note
        if self.cause is not None:
            text += ": " + self.cause.failure_text()
        return text + self.suffix

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "rule": self.rule,
            "kind": self.kind,
            "action": self.action,
            "target": self.target,
            "active": self.active,
            "state": self.state.value,
            "reason": self.reason,
            "premises": [p.to_json() for p in self.premises],
        }
        if self.duties:
            body["duties"] = [d.to_json() for d in self.duties]
        if self.origin:
            body["inheritedFrom"] = self.origin
        return body

    def unknown_terms(self) -> list[str]:
        found = [t for p in self.premises for t in p.unknown_terms()]
        for duty in self.duties:
            found.extend(t for p in duty.premises for t in p.unknown_terms())
        return found


@dataclass(frozen=True)
class Decision:
    """The answer to a request: permit or deny, the rule reports, and a one-sentence summary."""

    permitted: bool
    summary_text: Callable[[], str] = field(repr=False, compare=False)
    policy: Policy
    request: Request
    world: World
    conflict: str
    rules: tuple[RuleReport, ...]
    unsupported_profiles: tuple[str, ...] = ()
    conflict_found: bool = False

    @cached_property
    def summary(self) -> str:
        """One sentence naming what decided: the rule, constraint, duty, profile or unknown term."""
        return self.summary_text()

    @property
    def decision(self) -> str:
        return "permit" if self.permitted else "deny"

    @property
    def unknown_terms(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for report in self.rules:
            for term in report.unknown_terms():
                seen.setdefault(term, None)
        for profile in self.unsupported_profiles:
            seen.setdefault(profile, None)
        return tuple(seen)

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "summary": self.summary,
            "policy": self.policy.uid,
            "policyType": self.policy.type_name,
            "conflict": terms.local_name(self.conflict),
            "conflictFound": self.conflict_found,
            "request": {
                "assignee": self.request.assignee,
                "action": self.request.action_iri,
                "target": self.request.target,
                "context": {k: display(v) for k, v in self.request.context.items()},
            },
            "now": display(self.world.now) if self.world.now else None,
            "unknownTerms": list(self.unknown_terms),
            "rules": [r.to_json() for r in self.rules],
        }

