"""The connector's one door to ``policies``: turn stored ODRL JSON into decisions and agreements.

The connector never evaluates ODRL itself. It builds a :class:`policies.Request` from *verified*
claims (never from what a message body asserts about its sender) and asks ``policies``; any
error while parsing or evaluating counts as a denial with the error as the reason (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import policies

#: ODRL members that carry the rules of an offer or agreement (what both sides must agree on).
RULE_MEMBERS = ("permission", "prohibition", "obligation")
#: Facts only an AI job has - where it runs, which job it is. A negotiation happens before any
#: job exists, so constraints on these are checked when a transfer binds the agreement to a job
#: (and at every read), not when the agreement is made - unless the consumer declared them.
JOB_OPERANDS = frozenset({"https://w3id.org/sluis/ns#computeSite", "https://w3id.org/sluis/ns#jobId"})


@dataclass(frozen=True)
class Verdict:
    permitted: bool
    summary: str
    explanation: dict[str, Any] | None = None


def _unknown_leaves(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    children = node.get("premises")
    if isinstance(children, list) and children:
        return [leaf for child in children if isinstance(child, Mapping) for leaf in _unknown_leaves(child)]
    return [node] if node.get("state") == "unknown" else []


def _waits_only_for_job_facts(rule: Mapping[str, Any]) -> bool:
    leaves = _unknown_leaves(rule)
    return bool(leaves) and all(
        leaf.get("kind") == "constraint" and leaf.get("leftOperand") in JOB_OPERANDS for leaf in leaves
    )


def pending_only_on_job_facts(explanation: Mapping[str, Any]) -> bool:
    """Whether a denial is *only* for want of job facts: a permission would hold but for them,
    and no prohibition holds, or could hold, for any other reason (read from the decision's
    explanation tree; unknown terms still deny)."""
    if explanation.get("unknownTerms"):
        return False
    rules = [r for r in explanation.get("rules") or [] if isinstance(r, Mapping)]
    for rule in rules:
        if rule.get("kind") == "prohibition":
            if rule.get("state") == "satisfied":
                return False
            if rule.get("state") == "unknown" and not _waits_only_for_job_facts(rule):
                return False
    return any(
        rule.get("kind") == "permission"
        and rule.get("state") == "unknown"
        and _waits_only_for_job_facts(rule)
        for rule in rules
    )


def decide(
    policy_json: Mapping[str, Any],
    *,
    assignee: str,
    target: str,
    context: Mapping[str, object],
    now: datetime,
    action: str = "use",
    defer_job_facts: bool = False,
) -> Verdict:
    """Evaluate ``policy_json`` for ``assignee`` using ``target``; errors deny, with their reason.

    ``defer_job_facts`` (negotiation scope): a denial that only waits for facts of a job (see
    :data:`JOB_OPERANDS`) is a permit now; the transfer scope decides them with real values.
    """
    try:
        policy = policies.parse_policy(dict(policy_json))
        request = policies.Request(assignee=assignee, action=action, target=target, context=dict(context))
        decision = policies.evaluate(policy, request, policies.World(now=now))
    except policies.PolicyError as error:
        return Verdict(False, f"the policy could not be evaluated: {error}")
    explanation = decision.to_json()
    if not decision.permitted and defer_job_facts and pending_only_on_job_facts(explanation):
        summary = f"permit for now: {decision.summary}; job facts are decided when a transfer starts"
        return Verdict(True, summary, explanation)
    return Verdict(bool(decision.permitted), str(decision.summary), explanation)


def offer_for_catalog(policy_json: Mapping[str, Any], offer_id: str) -> dict[str, Any]:
    """A catalog ``Offer`` (DSP compact form, no ``target``) carrying the policy's rules."""
    policy = policies.parse_policy(dict(policy_json))
    offer = dict(policies.to_dsp_json(policy))
    offer.pop("@context", None)
    offer.pop("target", None)
    offer["@id"] = offer_id
    offer["@type"] = "Offer"
    return offer


def make_agreement(
    offer_json: Mapping[str, Any],
    *,
    agreement_id: str,
    assigner: str,
    assignee: str,
    target: str,
    now: datetime,
) -> dict[str, Any]:
    """The agreement: the offer's rules plus assigner, assignee, target and timestamp (DSP form)."""
    offer = policies.parse_policy(dict(offer_json))
    agreement = policies.make_agreement(
        offer, assigner=assigner, assignee=assignee, target=target, timestamp=now, uid=agreement_id
    )
    body = dict(policies.to_dsp_json(agreement))
    body.pop("@context", None)
    body["@type"] = "Agreement"
    body["@id"] = agreement_id
    return body


def same_rules(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """Whether two offers/agreements carry the same rules (ids, targets and parties aside)."""

    def canonical(doc: Mapping[str, Any]) -> str:
        return json.dumps({k: doc.get(k) for k in RULE_MEMBERS if doc.get(k)}, sort_keys=True)

    return canonical(left) == canonical(right)
