"""ODRL 2.2 usage policies: parse, evaluate with an explanation, compile, lint, scope.

Pure functions over immutable values: no I/O beyond reading shipped vocabularies, and no
clock (the time comes in the ``World``). An operand, operator, action or profile the engine
does not know makes its rule fail closed, and the explanation names the term.
"""

from __future__ import annotations

from policies import templates
from policies.compile import CompiledPolicy, compile_policy
from policies.errors import PolicyError
from policies.evaluate import evaluate
from policies.explanation import Decision, DutyReport, Premise, RuleReport, State
from policies.lint import Finding, lint
from policies.model import Action, Constraint, Entity, LogicalConstraint, Policy, Rule, Value
from policies.parse import parse_policy
from policies.request import Request, World
from policies.scope import (
    DataScope,
    RowFilter,
    Scope,
    ScopedDecision,
    data_scope,
    decide_in_scope,
    explained_in_scope,
)
from policies.serialize import make_agreement, to_dsp_json

__all__ = [
    "Action",
    "CompiledPolicy",
    "Constraint",
    "DataScope",
    "Decision",
    "DutyReport",
    "Entity",
    "Finding",
    "LogicalConstraint",
    "Policy",
    "PolicyError",
    "Premise",
    "Request",
    "RowFilter",
    "Rule",
    "RuleReport",
    "Scope",
    "ScopedDecision",
    "State",
    "Value",
    "World",
    "compile_policy",
    "data_scope",
    "decide_in_scope",
    "evaluate",
    "explained_in_scope",
    "lint",
    "make_agreement",
    "parse_policy",
    "templates",
    "to_dsp_json",
]
