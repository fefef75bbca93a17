"""The fast decision (no explanation for a permit) is the explained decision, in every scope.

The connector decides its access and usage policies at every DSP step on the fast path
(``decide_in_scope``, ``connector.policy_gate.decide``) and builds the explanation only for a
denial, a deferral or a caller that asks. These tests generate policies - the property tests'
constraints plus later-scope facts (compute site, job id), duties, obligations, party
collections, conflict strategies and every kind of unknown term - and check that the fast path
and the always-explained reference agree on the verdict, the summary, the deferred facts and,
for a denial, the whole explanation. Hypothesis runs derandomised so the suite is deterministic.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.policy_gate import decide
from policies import Request, Scope, World, decide_in_scope, explained_in_scope, parse_policy
from tests.policies.policy_builders import PLACE
from tests.policies.test_policy_properties import (
    ACTIONS,
    PARTIES,
    PLACES,
    PURPOSES,
    START,
    TARGETS,
    constraints,
    worlds,
)

SETTINGS = settings(
    max_examples=250, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

SPACE = "urn:space:health"
SITES = [PLACE + "NL-NH", "urn:site:lab", "http://publications.europa.eu/resource/authority/country/USA"]
JOBS = ["urn:job:1", "urn:job:2"]
#: Terms the engine does not know; each must make its rule fail closed, never permit.
UNKNOWN_OPERAND = "https://example.org/terms#trustLevel"
UNKNOWN_OPERATOR = "http://www.w3.org/ns/odrl/2/approximately"
UNKNOWN_ACTION = "https://example.org/actions#teleport"
UNKNOWN_PROFILE = "https://example.org/odrl-profile/unknown"
KNOWN_PROFILE = "https://w3id.org/sluis/odrl-profile"

later_constraints = st.one_of(
    st.builds(
        lambda op, site: {"leftOperand": "sluis:computeSite", "operator": op, "rightOperand": site},
        st.sampled_from(["isPartOf", "eq"]),
        st.sampled_from([PLACE + "EU", *SITES]),
    ),
    st.builds(
        lambda job: {"leftOperand": "sluis:jobId", "operator": "eq", "rightOperand": job},
        st.sampled_from(JOBS),
    ),
)
unknown_constraints = st.sampled_from(
    [
        {"leftOperand": UNKNOWN_OPERAND, "operator": "eq", "rightOperand": "high"},
        {"leftOperand": "purpose", "operator": UNKNOWN_OPERATOR, "rightOperand": PURPOSES[0]},
    ]
)
any_constraint = st.one_of(constraints, later_constraints, unknown_constraints)
duties = st.builds(
    lambda action, cs: {"action": action, **({"constraint": cs} if cs else {})},
    st.sampled_from(["attribute", "inform", "delete", UNKNOWN_ACTION]),
    st.lists(st.one_of(constraints, later_constraints), max_size=1),
)


def rules(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda action, cs, target, party, owed: {
            "action": action,
            "constraint": cs,
            **({"target": target} if target else {}),
            **({"assignee": party} if party else {}),
            **({"duty": owed} if owed and kind == "permission" else {}),
        },
        st.sampled_from(["use", "use", *ACTIONS, UNKNOWN_ACTION]),
        st.lists(any_constraint, max_size=2),
        st.sampled_from([None, None, *TARGETS]),
        st.sampled_from([None, None, PARTIES[0], {"@type": "PartyCollection", "source": SPACE}]),
        st.lists(duties, max_size=1),
    )


policy_documents = st.builds(
    lambda perms, prohibs, obligations, strategy, profile: {
        "@id": "urn:policy:fast",
        "@type": "Set",
        "permission": perms,
        **({"prohibition": prohibs} if prohibs else {}),
        **({"obligation": obligations} if obligations else {}),
        **({"conflict": strategy} if strategy else {}),
        **({"profile": profile} if profile else {}),
    },
    st.lists(rules("permission"), min_size=1, max_size=3),
    st.lists(rules("prohibition"), max_size=2),
    st.lists(duties, max_size=1),
    st.sampled_from([None, "perm", "prohibit", "invalid"]),
    st.sampled_from([None, None, None, KNOWN_PROFILE, UNKNOWN_PROFILE]),
)


def _context(purpose: str | None, place: str, site: str | None, job: str | None) -> dict[str, object]:
    found: dict[str, object] = {"spatial": place, "sluis:credential": ["Membership"]}
    for key, value in (("purpose", purpose), ("sluis:computeSite", site), ("sluis:jobId", job)):
        if value is not None:
            found[key] = value
    return found


contexts = st.builds(
    _context,
    st.sampled_from([None, *PURPOSES]),
    st.sampled_from(PLACES),
    st.sampled_from([None, *SITES]),
    st.sampled_from([None, *JOBS]),
)
members = st.sampled_from([(), (SPACE,)])


@SETTINGS
@given(
    policy_documents, st.sampled_from(PARTIES), st.sampled_from([*ACTIONS, UNKNOWN_ACTION]), contexts, worlds
)
def test_the_fast_scoped_decision_is_the_explained_one(
    doc: dict[str, Any], party: str, action: str, context: dict[str, object], world: World
) -> None:
    policy = parse_policy(doc)
    request = Request(party, action, TARGETS[0], context)
    for scope in Scope:
        fast = decide_in_scope(policy, request, world, scope)
        full = explained_in_scope(policy, request, world, scope)
        assert (fast.permitted, fast.summary, fast.deferred) == (full.permitted, full.summary, full.deferred)
        assert fast.decision.permitted is full.decision.permitted
        if not fast.permitted or fast.deferred:
            assert fast.decision.to_json() == full.decision.to_json()


@SETTINGS
@given(policy_documents, st.sampled_from(PARTIES), contexts, members, st.integers(0, 400))
def test_the_gate_gives_the_explained_verdict_and_explains_every_denial(
    doc: dict[str, Any], party: str, context: dict[str, object], member_of: tuple[str, ...], days: int
) -> None:
    now = START + timedelta(days=days)
    facts = {**context, **({"sluis:memberOf": list(member_of)} if member_of else {})}
    for scope in Scope:
        asked = {"assignee": party, "target": TARGETS[0], "context": facts, "now": now, "scope": scope}
        fast = decide(doc, **asked)  # type: ignore[arg-type]
        full = decide(doc, explain=True, **asked)  # type: ignore[arg-type]
        assert (fast.permitted, fast.summary) == (full.permitted, full.summary)
        assert full.explanation is not None
        if not fast.permitted:
            assert fast.explanation == full.explanation
        elif fast.explanation is not None:  # a deferral explains what it waits for
            assert fast.summary.startswith("permit for now")


def _with(**changes: Any) -> dict[str, Any]:
    permission: dict[str, Any] = {"action": changes.pop("action", "use")}
    if "constraint" in changes:
        permission["constraint"] = [changes.pop("constraint")]
    return {"@id": "urn:policy:unknown", "@type": "Offer", "permission": [permission], **changes}


@pytest.mark.parametrize(
    ("doc", "term"),
    [
        (
            _with(constraint={"leftOperand": UNKNOWN_OPERAND, "operator": "eq", "rightOperand": "high"}),
            UNKNOWN_OPERAND,
        ),
        (
            _with(
                constraint={
                    "leftOperand": "purpose",
                    "operator": UNKNOWN_OPERATOR,
                    "rightOperand": PURPOSES[0],
                }
            ),
            UNKNOWN_OPERATOR,
        ),
        (_with(action=UNKNOWN_ACTION), UNKNOWN_ACTION),
        (_with(profile=UNKNOWN_PROFILE), UNKNOWN_PROFILE),
    ],
    ids=["operand", "operator", "action", "profile"],
)
def test_an_unknown_term_denies_in_every_scope_with_the_term_named(doc: dict[str, Any], term: str) -> None:
    """Fail closed on the fast path too: the unknown term denies and the explanation names it."""
    context = {"purpose": PURPOSES[0], UNKNOWN_OPERAND: "high"}
    for scope in Scope:
        verdict = decide(doc, assignee=PARTIES[0], target=TARGETS[0], context=context, now=START, scope=scope)
        assert not verdict.permitted
        assert verdict.explanation is not None
        assert term in verdict.explanation["unknownTerms"]
