"""The connector's one door to ``policies``: turn stored ODRL JSON into decisions and agreements.

The connector never evaluates ODRL itself. It builds a :class:`policies.Request` from *verified*
claims (never from what a message body asserts about its sender) and asks ``policies``; any
error while parsing or evaluating counts as a denial with the error as the reason (fail closed).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
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


#: Parsed policies kept in memory, by content. A connector has a handful of policies and every
#: negotiation and transfer re-reads one of them; parsing costs more than evaluating.
MAX_CACHED_POLICIES = 1024


class _ByContent:
    """A small thread-safe LRU keyed by the canonical JSON of a policy document."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Any | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, str], value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)


_PARSED = _ByContent(MAX_CACHED_POLICIES)
_CATALOG_OFFERS = _ByContent(MAX_CACHED_POLICIES)


def _digest(policy_json: Mapping[str, Any]) -> str:
    text = json.dumps(policy_json, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def parsed_policy(policy_json: Mapping[str, Any]) -> policies.Policy:
    """``policies.parse_policy``, once per distinct document (the model is immutable)."""
    try:
        key = ("policy", _digest(policy_json))
    except (TypeError, ValueError):  # not plain JSON: parse it every time, let parse_policy judge
        return policies.parse_policy(dict(policy_json))
    found = _PARSED.get(key)
    if found is None:
        found = policies.parse_policy(dict(policy_json))
        _PARSED.put(key, found)
    return found


@dataclass(frozen=True)
class Verdict:
    """A decision; ``explanation`` (the decision's JSON tree) is kept for denials and deferrals."""

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
    action: str | None = None,
    defer_job_facts: bool = False,
) -> Verdict:
    """Evaluate ``policy_json`` for ``assignee`` using ``target``; errors deny, with their reason.

    With no ``action``, the request is for ``use`` or, failing that, for any narrower action a
    permission of the policy names (an offer granting only ``aggregate`` is negotiable: the
    data plane then enforces that narrower action at every read).

    ``defer_job_facts`` (negotiation scope): a denial that only waits for facts of a job (see
    :data:`JOB_OPERANDS`) is a permit now; the transfer scope decides them with real values.
    """
    try:
        policy = parsed_policy(policy_json)
        candidates = [action] if action is not None else _actions_to_try(policy)
        verdicts = []
        for candidate in candidates:
            request = policies.Request(
                assignee=assignee, action=candidate, target=target, context=dict(context)
            )
            decision = policies.evaluate(policy, request, policies.World(now=now))
            verdict = _verdict(decision, defer_job_facts)
            if verdict.permitted:
                return verdict
            verdicts.append(verdict)
    except policies.PolicyError as error:
        return Verdict(False, f"the policy could not be evaluated: {error}")
    return verdicts[0]


def _verdict(decision: policies.Decision, defer_job_facts: bool) -> Verdict:
    if decision.permitted:  # the explanation tree is only read to judge a denial
        return Verdict(True, str(decision.summary))
    explanation = decision.to_json()
    if defer_job_facts and pending_only_on_job_facts(explanation):
        summary = f"permit for now: {decision.summary}; job facts are decided when a transfer starts"
        return Verdict(True, summary, explanation)
    return Verdict(False, str(decision.summary), explanation)


def _actions_to_try(policy: policies.Policy) -> list[str]:
    """``use`` first, then each other action a permission names (in the policy's order)."""
    actions = ["use"]
    for rule in policy.atomic_rules:
        if rule.kind == "permission" and rule.action.iri not in actions:
            actions.append(rule.action.iri)
    return actions


def offer_for_catalog(policy_json: Mapping[str, Any], offer_id: str) -> dict[str, Any]:
    """A catalog ``Offer`` (DSP compact form, no ``target``) carrying the policy's rules."""
    try:
        key = (offer_id, _digest(policy_json))
    except (TypeError, ValueError):
        key = None
    found = None if key is None else _CATALOG_OFFERS.get(key)
    if found is None:
        policy = parsed_policy(policy_json)
        found = dict(policies.to_dsp_json(policy))
        found.pop("@context", None)
        found.pop("target", None)
        found["@id"] = offer_id
        found["@type"] = "Offer"
        if key is not None:
            _CATALOG_OFFERS.put(key, found)
    return copy.deepcopy(found)


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
    offer = parsed_policy(offer_json)
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
