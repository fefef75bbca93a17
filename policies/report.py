"""A decision as RDF in the ODRL compliance report model, and as plain sentences.

The RDF uses the W3C ODRL Community Group's compliance report vocabulary
(``https://w3id.org/force/compliance-report#``): a ``PolicyReport`` with one rule report per
atomic rule (``PermissionReport`` / ``ProhibitionReport`` / ``ObligationReport``), premise
reports (``TargetReport``, ``PartyReport``, ``ActionReport``, ``ConstraintReport``) carrying a
``satisfactionState``, rule ``activationState`` and ``attemptState``, and ``DutyReport`` with
``performanceState`` and ``deonticState``. Our three-valued states map onto the two-valued
model the way the decision used them (fail closed); the original state and reason are kept as
``sluis:state`` and ``rdfs:comment``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, XSD

from policies import terms
from policies.explanation import DutyReport, Premise, RuleReport, State, holds
from policies.values import display
from vocab.namespaces import DCT, ODRL, REPORT, SLUIS, bind_prefixes

if TYPE_CHECKING:
    from policies.explanation import Decision

_RULE_CLASS = {
    "permission": REPORT.PermissionReport,
    "prohibition": REPORT.ProhibitionReport,
    "obligation": REPORT.ObligationReport,
}
_PREMISE_CLASS = {"target": REPORT.TargetReport, "party": REPORT.PartyReport, "action": REPORT.ActionReport}


def _node(value: str) -> URIRef | Literal:
    return URIRef(value) if ":" in value and " " not in value else Literal(value)


def _literal(value: object) -> Literal | URIRef:
    shown = display(value)
    if isinstance(shown, str) and shown.startswith(("http", "urn:")):
        return URIRef(shown)
    if isinstance(shown, bool | int | float):
        return Literal(shown)
    if isinstance(shown, str) and "T" in shown and shown[:4].isdigit():
        return Literal(shown, datatype=XSD.dateTime)
    return Literal(str(shown))


def decision_graph(decision: Decision) -> Graph:
    graph = Graph()
    bind_prefixes(graph)
    root = BNode()
    graph.add((root, RDF.type, REPORT.PolicyReport))
    graph.add((root, REPORT.policy, URIRef(decision.policy.uid)))
    if decision.world.now is not None:
        graph.add((root, DCT.created, Literal(decision.world.now.isoformat(), datatype=XSD.dateTime)))
    graph.add((root, SLUIS.decision, Literal(decision.decision)))
    graph.add((root, RDFS.comment, Literal(decision.summary)))
    graph.add((root, SLUIS.conflictStrategy, ODRL[terms.local_name(decision.conflict)]))
    request = BNode()
    graph.add((root, REPORT.policyRequest, request))
    graph.add((request, RDF.type, ODRL.Request))
    graph.add((request, ODRL.assignee, _node(decision.request.assignee)))
    graph.add((request, ODRL.action, _node(decision.request.action_iri)))
    graph.add((request, ODRL.target, _node(decision.request.target)))
    for report in decision.rules:
        graph.add((root, REPORT.ruleReport, _rule(graph, report, request)))
    return graph


def _rule(graph: Graph, report: RuleReport, request: BNode) -> BNode:
    node = BNode()
    graph.add((node, RDF.type, _RULE_CLASS.get(report.kind, REPORT.RuleReport)))
    graph.add((node, REPORT.rule, _node(report.rule)))
    graph.add((node, REPORT.ruleRequest, request))
    graph.add((node, REPORT.activationState, REPORT.Active if report.active else REPORT.Inactive))
    graph.add((node, REPORT.attemptState, REPORT.Attempted))
    graph.add((node, SLUIS.state, Literal(report.state.value)))
    graph.add((node, RDFS.comment, Literal(report.reason)))
    fail_closed = report.kind == "prohibition"
    for premise in report.premises:
        graph.add((node, REPORT.premiseReport, _premise(graph, premise, fail_closed)))
    for duty in report.duties:
        graph.add((node, REPORT.conditionReport, _duty(graph, duty)))
    return node


def _premise(graph: Graph, premise: Premise, fail_closed: bool) -> BNode:
    node = BNode()
    cls = _PREMISE_CLASS.get(premise.kind, REPORT.ConstraintReport)
    graph.add((node, RDF.type, cls))
    satisfied = holds(premise.state) or (fail_closed and premise.state is State.UNKNOWN)
    graph.add((node, REPORT.satisfactionState, REPORT.Satisfied if satisfied else REPORT.Unsatisfied))
    graph.add((node, SLUIS.state, Literal(premise.state.value)))
    if premise.describe():
        graph.add((node, RDFS.comment, Literal(premise.describe())))
    if premise.uid:
        graph.add((node, REPORT.constraint, _node(premise.uid)))
    if premise.left_operand is not None:
        graph.add((node, SLUIS.leftOperand, _node(premise.left_operand)))
        if premise.value is not None:
            values = premise.value if isinstance(premise.value, frozenset) else [premise.value]
            for value in values:
                graph.add((node, REPORT.constraintLeftOperand, _literal(value)))
    if premise.operator is not None:
        graph.add((node, REPORT.constraintOperator, _node(premise.operator)))
    if premise.right_operand is not None:
        rights = premise.right_operand if isinstance(premise.right_operand, list) else [premise.right_operand]
        for value in rights:
            graph.add((node, REPORT.constraintRightOperand, _literal(value)))
    if premise.unknown_term:
        graph.add((node, SLUIS.unknownTerm, Literal(premise.unknown_term)))
    if premise.kind in ("and", "or", "xone", "andSequence"):
        graph.add((node, SLUIS.logicalOperator, ODRL[premise.kind]))
    for child in premise.premises:
        graph.add((node, REPORT.premiseReport, _premise(graph, child, fail_closed)))
    return node


def _duty(graph: Graph, duty: DutyReport) -> BNode:
    node = BNode()
    graph.add((node, RDF.type, REPORT.DutyReport))
    graph.add((node, REPORT.rule, _node(duty.rule)))
    graph.add((node, REPORT.activationState, REPORT.Active if duty.active else REPORT.Inactive))
    graph.add((node, REPORT.attemptState, REPORT.Attempted))
    performance = {"fulfilled": REPORT.Performed, "violated": REPORT.Unperformed}.get(
        duty.state, REPORT.Unknown
    )
    deontic = {"fulfilled": REPORT.Fulfilled, "violated": REPORT.Violated}.get(duty.state, REPORT.NonSet)
    graph.add((node, REPORT.performanceState, performance))
    graph.add((node, REPORT.deonticState, deontic))
    graph.add((node, SLUIS.dutyRole, Literal(duty.role)))
    graph.add((node, RDFS.comment, Literal(duty.reason)))
    for premise in duty.premises:
        graph.add((node, REPORT.premiseReport, _premise(graph, premise, False)))
    for consequence in duty.consequences:
        graph.add((node, REPORT.conditionReport, _duty(graph, consequence)))
    return node


def decision_sentences(decision: Decision) -> list[str]:
    """The report read out: the decision, then one line per rule, premise and duty."""
    lines = [
        f"Decision: {decision.decision.upper()}.",
        f"Why: {decision.summary.split(': ', 1)[-1]}.",
        f"Policy {decision.policy.uid} ({decision.policy.type_name}); conflict strategy "
        f"{terms.local_name(decision.conflict)}.",
    ]
    for term in decision.unknown_terms:
        lines.append(f"Unknown term: {term} - rules that use it fail closed.")
    for report in decision.rules:
        name = f"{report.kind.capitalize()} {report.rule} ({terms.compact_term(report.action)})"
        if report.reason.startswith("is "):
            lines.append(f"{name} {report.reason}.")
        else:
            lines.append(f"{name} is {'active' if report.active else 'not active'}: {report.reason}.")
        for premise in report.premises:
            lines.extend(_premise_lines(premise, 1))
        for duty in report.duties:
            lines.append(
                f"  {duty.role.capitalize()} {duty.rule} ({terms.compact_term(duty.action)}): {duty.reason}."
            )
    return lines


def _premise_lines(premise: Premise, depth: int) -> list[str]:
    pad = "  " * depth
    if premise.left_operand is not None:
        text = (
            f"{terms.compact_term(premise.left_operand)} {terms.local_name(premise.operator or '')} "
            f"{display(premise.right_operand)}"
        )
        if premise.value is not None:
            text += f" with value {display(premise.value)}"
        line = f"{pad}Constraint {text}: {premise.state.value}"
    else:
        line = f"{pad}{premise.kind.capitalize()}: {premise.state.value}"
    if premise.describe():
        line += f" ({premise.describe()})"
    lines = [line + "."]
    for child in premise.premises:
        lines.extend(_premise_lines(child, depth + 1))
    return lines
