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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any

import policies

#: ODRL members that carry the rules of an offer or agreement (what both sides must agree on).
RULE_MEMBERS = ("permission", "prohibition", "obligation")

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


def _canonical(policy_json: Mapping[str, Any]) -> str:
    return json.dumps(policy_json, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(policy_json: Mapping[str, Any]) -> str:
    return _digest_text(_canonical(policy_json))


def _digest_text(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


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
    """A decision; ``explanation`` (the decision's JSON tree) is given for denials and deferrals.

    The tree is made when first read (``explain`` makes it): the verdict is taken at every DSP
    step and almost always only ``permitted`` and ``summary`` are used.
    """

    permitted: bool
    summary: str
    explain: Callable[[], dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def explanation(self) -> dict[str, Any] | None:
        """The decision's JSON tree, or ``None`` for a permit decided without one."""
        return None if self.explain is None else self.explain()


def decide(
    policy_json: Mapping[str, Any],
    *,
    assignee: str,
    target: str,
    context: Mapping[str, object],
    now: datetime,
    scope: policies.Scope,
    action: str | None = None,
    explain: bool = False,
) -> Verdict:
    """Evaluate ``policy_json`` for ``assignee`` using ``target`` in ``scope``; errors deny.

    With no ``action``, the request is for ``use`` or, failing that, for any narrower action a
    permission of the policy names (an offer granting only ``aggregate`` is negotiable: the
    data plane then enforces that narrower action at every read).

    The scope decides which facts may still be missing (``policies.LATER_FACTS``): in the
    negotiation scope a denial that only waits for a job's compute site or id is a permit for
    now, decided with real values when a transfer starts; access and transfer defer nothing.

    A permit is decided on the compiled fast path and carries no explanation unless
    ``explain`` asks for one (a page or report that shows why); denials and deferrals always
    can explain themselves. Both paths give the same verdict and summary
    (``tests/policies/test_policy_fast_decisions.py``).
    """
    decide_one = policies.explained_in_scope if explain else policies.decide_in_scope
    try:
        policy = parsed_policy(policy_json)
        candidates = [action] if action is not None else _actions_to_try(policy)
        verdicts = []
        world = policies.World(now=now, part_of=_membership(assignee, context))
        for candidate in candidates:
            request = policies.Request(
                assignee=assignee, action=candidate, target=target, context=dict(context)
            )
            verdict = _verdict(decide_one(policy, request, world, scope), explain)
            if verdict.permitted:
                return verdict
            verdicts.append(verdict)
    except policies.PolicyError as error:
        return Verdict(False, f"the policy could not be evaluated: {error}")
    return verdicts[0]


def _verdict(scoped: policies.ScopedDecision, explain: bool) -> Verdict:
    if scoped.permitted and not scoped.deferred and not explain:
        return Verdict(True, scoped.summary)
    return Verdict(scoped.permitted, scoped.summary, partial(_explanation, scoped))


def _explanation(scoped: policies.ScopedDecision) -> dict[str, Any]:
    return scoped.decision.to_json()


#: The verified claim naming the data spaces (collections) a participant is a member of.
MEMBER_OF = "sluis:memberOf"


def _membership(assignee: str, context: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """The state of the world's ``partOf`` facts about the requester: it is part of every
    collection its verified credentials say it is a member of, so an ``odrl:PartyCollection``
    whose ``source`` names the data space matches its members (and nobody else)."""
    listed = context.get(MEMBER_OF)
    values = listed if isinstance(listed, list | tuple) else [listed]
    collections = tuple(v for v in values if isinstance(v, str) and v)
    return {assignee: collections} if collections else {}


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


#: The members that differ between agreements made from one offer for one consumer and
#: dataset; the rest (the offer's rules, the parties, the target) is the same every time.
_FRESH = ("@id", "timestamp")

#: The agreements last made from each (offer content, assigner, assignee, target), as JSON text.
_AGREEMENTS = _ByContent(MAX_CACHED_POLICIES)


def make_agreement(
    offer_json: Mapping[str, Any],
    *,
    agreement_id: str,
    assigner: str,
    assignee: str,
    target: str,
    now: datetime,
) -> dict[str, Any]:
    """The agreement: the offer's rules plus assigner, assignee, target and timestamp (DSP form).

    Made through ``policies.make_agreement`` (serialise, re-parse to validate, serialise again:
    ~0.1 ms, at every negotiation) the first time an offer is agreed for a consumer and
    dataset; later agreements of the same kind copy that one with their own id and time -
    only when neither occurs anywhere in the offer or its agreement (as a JSON string), so
    neither can name one of its nodes or have shaped its rules
    (``tests/policies/test_policy_fast_agreements.py`` compares both ways).
    """
    fresh = {"@id": agreement_id, "timestamp": _stamp(now)}
    try:
        offer_text = _canonical(offer_json)
    except (TypeError, ValueError):  # not plain JSON: make it from scratch, let policies judge
        return _made_agreement(offer_json, agreement_id, assigner, assignee, target, now)
    key = ("agreement", _digest_text(offer_text, json.dumps([assigner, assignee, target])))
    found = _AGREEMENTS.get(key)
    if isinstance(found, str) and _apart(fresh, offer_text, found):
        body: dict[str, Any] = json.loads(found)
        body.update(fresh)
        return body
    body = _made_agreement(offer_json, agreement_id, assigner, assignee, target, now)
    text = json.dumps({k: v for k, v in body.items() if k not in _FRESH}, ensure_ascii=False)
    if _apart(fresh, offer_text, text):
        _AGREEMENTS.put(key, text)
    return body


def _made_agreement(
    offer_json: Mapping[str, Any],
    agreement_id: str,
    assigner: str,
    assignee: str,
    target: str,
    now: datetime,
) -> dict[str, Any]:
    offer = parsed_policy(offer_json)
    agreement = policies.make_agreement(
        offer, assigner=assigner, assignee=assignee, target=target, timestamp=now, uid=agreement_id
    )
    body = dict(policies.to_dsp_json(agreement))
    body.pop("@context", None)
    body["@type"] = "Agreement"
    body["@id"] = agreement_id
    return body


def _apart(fresh: Mapping[str, object], *texts: str) -> bool:
    """Whether every fresh value is one ``policies.make_agreement`` accepts (a non-empty
    string, no blank node) and none is a JSON string in ``texts``."""
    for value in fresh.values():
        if not isinstance(value, str) or not value or value.startswith("_:"):
            return False
        quoted = json.dumps(value, ensure_ascii=False)
        if any(quoted in text for text in texts):
            return False
    return True


def _stamp(now: datetime) -> str:
    """The agreement's timestamp as ``policies.make_agreement`` writes it (UTC, whole seconds)."""
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def same_rules(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """Whether two offers/agreements carry the same rules (ids, targets and parties aside)."""

    def canonical(doc: Mapping[str, Any]) -> str:
        return json.dumps({k: doc.get(k) for k in RULE_MEMBERS if doc.get(k)}, sort_keys=True)

    return canonical(left) == canonical(right)
