"""The immutable ODRL 2.2 model the parser builds and the evaluator reads.

Everything is a frozen dataclass over tuples, so a parsed policy can be shared between
threads, cached, and compiled once. IRIs are plain strings. A rule keeps what its document
declared (possibly several actions, targets or parties: a *compact* rule) and the policy keeps
the *atomic* rules derived from it (one action, at most one target, one assigner, one
assignee each), which is what the evaluator works on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from policies import terms

RuleKind = Literal["permission", "prohibition", "obligation", "duty"]


@dataclass(frozen=True, slots=True)
class Value:
    """A right-operand (or resolved left-operand) value: an IRI or a typed literal.

    ``value`` keeps the lexical form for IRIs and strings, and the JSON type for numbers and
    booleans; ``datatype`` is the XSD datatype IRI when the document gave one.
    """

    value: str | int | float | bool
    datatype: str | None = None
    is_iri: bool = False

    def to_json(self) -> object:
        if self.is_iri:
            return {"@id": self.value}
        if self.datatype and self.datatype != terms.XSD_NS + "string":
            return {"@value": self.value, "@type": self.datatype}
        return self.value


@dataclass(frozen=True, slots=True)
class Constraint:
    """An atomic constraint: ``leftOperand operator rightOperand``."""

    left_operand: str
    operator: str
    right: tuple[Value, ...]
    right_is_list: bool = False
    uid: str | None = None
    right_reference: str | None = None
    datatype: str | None = None
    unit: str | None = None
    location: str = ""

    def iter_atoms(self) -> Iterator[Constraint]:
        yield self


@dataclass(frozen=True, slots=True)
class LogicalConstraint:
    """``or`` / ``xone`` / ``and`` / ``andSequence`` over constraints (which may nest)."""

    operator: str
    operands: tuple[Constraint | LogicalConstraint, ...]
    uid: str | None = None
    location: str = ""

    def iter_atoms(self) -> Iterator[Constraint]:
        for operand in self.operands:
            yield from operand.iter_atoms()


ConstraintNode = Constraint | LogicalConstraint


@dataclass(frozen=True, slots=True)
class Entity:
    """An asset or a party: one IRI, or a collection (``source``) narrowed by refinements."""

    iri: str
    collection: bool = False
    refinements: tuple[ConstraintNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    """An action IRI, optionally refined (``print`` with ``resolution lteq 1200``)."""

    iri: str
    refinements: tuple[ConstraintNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """A permission, prohibition, obligation or duty, as declared or as an atomic rule."""

    kind: RuleKind
    uid: str
    actions: tuple[Action, ...]
    targets: tuple[Entity, ...] = ()
    assigners: tuple[Entity, ...] = ()
    assignees: tuple[Entity, ...] = ()
    constraints: tuple[ConstraintNode, ...] = ()
    duties: tuple[Rule, ...] = ()  # permission: pre-conditions
    remedies: tuple[Rule, ...] = ()  # prohibition: what to do if it was violated
    consequences: tuple[Rule, ...] = ()  # duty/obligation: what to do if it was not fulfilled
    declared_uid: bool = False
    origin: str = ""  # uid of the policy this rule came from (differs when inherited)
    location: str = ""

    @property
    def action(self) -> Action:
        return self.actions[0]

    @property
    def target(self) -> Entity | None:
        return self.targets[0] if self.targets else None

    @property
    def assignee(self) -> Entity | None:
        return self.assignees[0] if self.assignees else None

    @property
    def assigner(self) -> Entity | None:
        return self.assigners[0] if self.assigners else None


@dataclass(frozen=True)
class Policy:
    """An ODRL policy. ``rules`` are as declared; ``atomic_rules`` are what is evaluated."""

    uid: str
    type: str
    rules: tuple[Rule, ...]
    atomic_rules: tuple[Rule, ...]
    profiles: tuple[str, ...] = ()
    conflict: str | None = None
    inherit_from: tuple[str, ...] = ()
    targets: tuple[Entity, ...] = ()
    assigners: tuple[Entity, ...] = ()
    assignees: tuple[Entity, ...] = ()
    actions: tuple[Action, ...] = ()
    timestamp: str | None = None
    inherited_rules: tuple[Rule, ...] = ()

    @property
    def conflict_strategy(self) -> str:
        """The strategy in force: the declared one, else ``invalid`` (the ODRL default)."""
        return self.conflict or terms.INVALID

    @property
    def type_name(self) -> str:
        return terms.local_name(self.type)

    @property
    def target(self) -> str | None:
        return self.targets[0].iri if self.targets else None

    @property
    def assigner(self) -> str | None:
        return self.assigners[0].iri if self.assigners else None

    @property
    def assignee(self) -> str | None:
        return self.assignees[0].iri if self.assignees else None

    def permissions(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.atomic_rules if rule.kind == "permission")

    def prohibitions(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.atomic_rules if rule.kind == "prohibition")

    def obligations(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.atomic_rules if rule.kind == "obligation")

