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


@dataclass(frozen=True)
class Verdict:
    permitted: bool
    summary: str
    explanation: dict[str, Any] | None = None


def decide(
    policy_json: Mapping[str, Any],
    *,
    assignee: str,
    target: str,
    context: Mapping[str, object],
    now: datetime,
    action: str = "use",
) -> Verdict:
    """Evaluate ``policy_json`` for ``assignee`` using ``target``; errors deny, with their reason."""
    try:
        policy = policies.parse_policy(dict(policy_json))
        request = policies.Request(assignee=assignee, action=action, target=target, context=dict(context))
        decision = policies.evaluate(policy, request, policies.World(now=now))
    except policies.PolicyError as error:
        return Verdict(False, f"the policy could not be evaluated: {error}")
    return Verdict(bool(decision.permitted), str(decision.summary), decision.to_json())


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
