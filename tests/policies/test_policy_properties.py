"""Properties that hold for every policy: fail closed, prohibitions only deny, compact == atomic,
compiled == explained. Hypothesis runs derandomised so the suite is deterministic."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import Request, World, compile_policy, evaluate, parse_policy
from tests.policies.policy_builders import COUNTRY, PLACE, PURPOSE

SETTINGS = settings(
    max_examples=80, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

PURPOSES = [
    PURPOSE + s
    for s in (
        "scientific-research",
        "ai-training",
        "ai-development",
        "commercial-use",
        "education",
        "marketing",
    )
]
LAB = "urn:site:lab"
PLACES = [
    PLACE + "EU",
    PLACE + "EEA",
    PLACE + "NL-NH",
    COUNTRY + "NLD",
    COUNTRY + "NOR",
    COUNTRY + "USA",
    LAB,
    "sluis:purpose-not-a-place",
]
ACTIONS = ["use", "read", "aggregate", "derive", "distribute", "sell", "transfer", "print"]
TARGETS = ["urn:ds:a", "urn:ds:b"]
PARTIES = ["did:web:alice", "did:web:bob"]
START = datetime(2025, 1, 1, tzinfo=UTC)

atomic_constraints = st.one_of(
    st.builds(
        lambda op, p: {"leftOperand": "purpose", "operator": op, "rightOperand": p},
        st.sampled_from(["isA", "eq", "neq"]),
        st.sampled_from(PURPOSES),
    ),
    st.builds(
        lambda op, p: {"leftOperand": "spatial", "operator": op, "rightOperand": p},
        st.sampled_from(["isPartOf", "eq", "hasPart"]),
        st.sampled_from(PLACES),
    ),
    st.builds(
        lambda op, n: {"leftOperand": "count", "operator": op, "rightOperand": n},
        st.sampled_from(["lt", "lteq", "gt", "gteq", "eq"]),
        st.integers(0, 6),
    ),
    st.builds(
        lambda op, days: {
            "leftOperand": "dateTime",
            "operator": op,
            "rightOperand": {
                "@value": (START + timedelta(days=days)).isoformat().replace("+00:00", "Z"),
                "@type": "xsd:dateTime",
            },
        },
        st.sampled_from(["lt", "gteq"]),
        st.integers(0, 400),
    ),
    st.builds(
        lambda op, names: {"leftOperand": "sluis:credential", "operator": op, "rightOperand": names},
        st.sampled_from(["isAnyOf", "isAllOf", "isNoneOf"]),
        st.lists(st.sampled_from(["EHDSDataPermit", "Membership"]), min_size=1, max_size=2, unique=True),
    ),
)
constraints = st.recursive(
    atomic_constraints,
    lambda inner: st.builds(
        lambda op, items: {op: items},
        st.sampled_from(["and", "or", "xone", "andSequence"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=5,
)


def rule_strategy(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda action, cs, target: {
            "action": action,
            "constraint": cs,
            **({"target": target} if target else {}),
        },
        st.sampled_from(ACTIONS),
        st.lists(constraints, max_size=3),
        st.sampled_from([None, *TARGETS]),
    )


policies = st.builds(
    lambda perms, prohibs, strategy: {
        "@id": "urn:policy:prop",
        "@type": "Set",
        "permission": perms,
        **({"prohibition": prohibs} if prohibs else {}),
        **({"conflict": strategy} if strategy else {}),
    },
    st.lists(rule_strategy("permission"), min_size=1, max_size=3),
    st.lists(rule_strategy("prohibition"), max_size=2),
    st.sampled_from([None, "perm", "prohibit", "invalid"]),
)
requests = st.builds(
    lambda assignee, action, target, purpose, place, creds: Request(
        assignee, action, target, {"purpose": purpose, "spatial": place, "sluis:credential": creds}
    ),
    st.sampled_from(PARTIES),
    st.sampled_from(ACTIONS),
    st.sampled_from(TARGETS),
    st.sampled_from(PURPOSES),
    st.sampled_from(PLACES),
    st.lists(st.sampled_from(["EHDSDataPermit", "Membership", "sluis:EHDSDataPermit"]), unique=True),
)
worlds = st.builds(
    lambda days, count, known, facts: World(
        now=START + timedelta(days=days) if known else None,
        counts={"urn:ds:a": count, "urn:ds:b": count},
        part_of={LAB: [PLACE + "NL-NH"], "urn:ds:a": ["urn:ds:b"]} if facts else {},
    ),
    st.integers(0, 400),
    st.integers(0, 6),
    st.booleans(),
    st.booleans(),
)


@SETTINGS
@given(policies, requests, worlds)
def test_compiled_fast_path_agrees_with_the_explained_decision(
    doc: dict[str, Any], req: Request, w: World
) -> None:
    policy = parse_policy(doc)
    assert compile_policy(policy).decide(req, w) is evaluate(policy, req, w).permitted


@SETTINGS
@given(policies, requests, worlds, st.sampled_from(["partner", "https://example.org/x#trust", "sluis:mood"]))
def test_an_unknown_operand_in_every_permission_never_permits(
    doc: dict[str, Any], req: Request, w: World, unknown: str
) -> None:
    doc = copy.deepcopy(doc)
    for rule in doc["permission"]:
        rule["constraint"] = [
            *rule["constraint"],
            {"leftOperand": unknown, "operator": "eq", "rightOperand": "v"},
        ]
    decision = evaluate(
        parse_policy(doc), Request(req.assignee, req.action, req.target, {**req.context, unknown: "v"}), w
    )
    assert not decision.permitted
    assert not compile_policy(parse_policy(doc)).decide(req, w)


@SETTINGS
@given(policies, requests, worlds, rule_strategy("prohibition"))
def test_adding_a_prohibition_never_turns_deny_into_permit(
    doc: dict[str, Any], req: Request, w: World, prohibition: dict[str, Any]
) -> None:
    doc = {**doc, "conflict": "prohibit"}
    before = evaluate(parse_policy(doc), req, w).permitted
    after_doc = {**doc, "prohibition": [*doc.get("prohibition", []), prohibition]}
    after = evaluate(parse_policy(after_doc), req, w).permitted
    assert not (after and not before)
    assert not after or before


def _expand_by_hand(doc: dict[str, Any]) -> dict[str, Any]:
    """What ODRL 2.2 section 2.7.1 says a compact policy means, written out rule by rule."""
    level = {key: doc[key] for key in ("target", "assignee", "assigner") if key in doc}
    out: dict[str, Any] = {k: v for k, v in doc.items() if k not in level}
    for kind in ("permission", "prohibition"):
        atoms = []
        for rule in doc.get(kind, []):
            actions = rule["action"] if isinstance(rule["action"], list) else [rule["action"]]
            for action in actions:
                atom = {**level, **{k: v for k, v in rule.items() if k != "action"}, "action": action}
                atoms.append(atom)
        if atoms:
            out[kind] = atoms
    return out


compact_policies = st.builds(
    lambda target, assignee, perms, prohibs, strategy: {
        "@id": "urn:policy:compact",
        "@type": "Set",
        "target": target,
        "assignee": assignee,
        "permission": perms,
        **({"prohibition": prohibs} if prohibs else {}),
        "conflict": strategy,
    },
    st.sampled_from(TARGETS),
    st.sampled_from(PARTIES),
    st.lists(
        st.builds(
            lambda acts, cs: {"action": acts, "constraint": cs},
            st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3, unique=True),
            st.lists(constraints, max_size=2),
        ),
        min_size=1,
        max_size=2,
    ),
    st.lists(
        st.builds(
            lambda acts: {"action": acts},
            st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2, unique=True),
        ),
        max_size=2,
    ),
    st.sampled_from(["perm", "prohibit", "invalid"]),
)


@SETTINGS
@given(compact_policies, requests, worlds)
def test_a_compact_policy_decides_like_its_expanded_form(doc: dict[str, Any], req: Request, w: World) -> None:
    compact = evaluate(parse_policy(doc), req, w)
    expanded = evaluate(parse_policy(_expand_by_hand(doc)), req, w)
    assert compact.permitted is expanded.permitted
    assert [r.active for r in compact.rules] == [r.active for r in expanded.rules]


@SETTINGS
@given(policies, requests, worlds)
def test_dsp_round_trip_keeps_every_decision(doc: dict[str, Any], req: Request, w: World) -> None:
    from policies import to_dsp_json

    policy = parse_policy(doc)
    again = parse_policy(to_dsp_json(policy))
    assert evaluate(again, req, w).permitted is evaluate(policy, req, w).permitted


@SETTINGS
@given(policies, requests, worlds)
def test_every_shortcut_agrees_with_the_general_path(doc: dict[str, Any], req: Request, w: World) -> None:
    """The compiled shortcuts (typed comparisons, pre-answered hierarchies) never change an answer."""
    from policies.compile import _Atom, _Logical
    from policies.operands import DEFERRED, Env, Missing

    compiled = compile_policy(parse_policy(doc))
    env = Env(req, w, compiled.policy)
    pending = [c for rule in (*compiled.permissions, *compiled.prohibitions) for c in rule.constraints]
    checked = 0
    while pending:
        node = pending.pop()
        if isinstance(node, _Logical):
            pending.extend(node.children)
            continue
        assert isinstance(node, _Atom)
        if node.shortcut is None or node.operand is None or node.static is not None:
            continue
        raw = node.operand.resolve(env)
        if raw is DEFERRED or isinstance(raw, Missing):
            continue
        quick = node.shortcut(raw, env)
        if quick is not None:
            assert quick is node.evaluate(env)[0], node.constraint
            checked += 1
