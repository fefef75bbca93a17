"""Logical constraints, conflicts and look-alike values, attacked for a permit they must not give.

* a disjunction with a member the engine does not understand must not be decided by the
  members it does understand: the author may have meant the unknown one to narrow the rest;
* a purpose that only looks like ours (``commercіal-use`` with a Cyrillic ``і``) or that our
  hierarchy does not know must not slip past a prohibition on the real term;
* conflicts between a permission and a prohibition follow the strategy, ``invalid`` by default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policies import PolicyError, Request, World, compile_policy, evaluate, parse_policy

ALICE = "did:web:alice.example"
DATASET = "urn:dataset:cohort"
PURPOSE = "https://w3id.org/sluis/purpose/"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
RESEARCH = PURPOSE + "scientific-research"


def _c(left: str, operator: str, right: Any, **extra: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right, **extra}


def _decide(document: dict[str, Any], context: dict[str, Any]) -> tuple[bool, str]:
    policy = parse_policy(document)
    request = Request(ALICE, "use", DATASET, context)
    decision = evaluate(policy, request, World(now=NOW))
    assert compile_policy(policy).decide(request, World(now=NOW)) == decision.permitted
    return decision.permitted, decision.summary


def _offer(*constraints: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "@id": "urn:policy:logic",
        "@type": "Offer",
        "permission": [{"action": "use", "constraint": list(constraints)}],
        **extra,
    }


@pytest.mark.parametrize(
    ("logical", "named"),
    [
        ({"or": [_c("ex:trustLevel", "gteq", 3), _c("purpose", "eq", RESEARCH)]}, "trustLevel"),
        ({"xone": [_c("purpose", "eq", RESEARCH), _c("payAmount", "lteq", 5, unit="ex:EUR")]}, "EUR"),
        ({"or": [_c("purpose", "eq", RESEARCH), _c("purpose", "approximately", RESEARCH)]}, "approximately"),
        (
            {
                "or": [
                    {"and": [_c("ex:trustLevel", "gteq", 3), _c("purpose", "eq", RESEARCH)]},
                    _c("purpose", "eq", RESEARCH),
                ]
            },
            "trustLevel",
        ),
        (
            {
                "or": [
                    _c("purpose", "eq", RESEARCH),
                    {**_c("purpose", "eq", RESEARCH), "rightOperandReference": "urn:x"},
                ]
            },
            "rightOperandReference",
        ),
    ],
    ids=["or-unknown-operand", "xone-unit", "or-unknown-operator", "nested", "or-reference"],
)
def test_a_disjunction_with_an_unknown_member_does_not_grant(logical: dict[str, Any], named: str) -> None:
    permitted, summary = _decide(_offer(logical), {"purpose": RESEARCH, "payAmount": 1})
    assert not permitted
    assert named in summary


def test_a_disjunction_of_understood_members_still_grants() -> None:
    logical = {"or": [_c("purpose", "eq", PURPOSE + "marketing"), _c("purpose", "eq", RESEARCH)]}
    assert _decide(_offer(logical), {"purpose": RESEARCH})[0]


@pytest.mark.parametrize(
    "purpose",
    [
        PURPOSE + "commerc\u0456al-use",  # Cyrillic i
        PURPOSE + "commercial\u2010use",  # a Unicode hyphen
        PURPOSE + "commercial-use\u200b",  # a zero-width space
        PURPOSE + "Commercial-Use",  # our namespace, a term the hierarchy does not know
        PURPOSE + "commercial-usage",
    ],
    ids=["cyrillic", "hyphen", "zero-width", "case", "misspelt"],
)
def test_a_look_alike_purpose_does_not_escape_a_prohibition(purpose: str) -> None:
    document = {
        "@id": "urn:policy:logic",
        "@type": "Offer",
        "permission": [{"action": "use"}],
        "prohibition": [{"action": "use", "constraint": [_c("purpose", "isA", PURPOSE + "commercial-use")]}],
        "conflict": "prohibit",
    }
    assert _decide(document, {"purpose": PURPOSE + "scientific-research"})[0]
    permitted, summary = _decide(document, {"purpose": purpose})
    assert not permitted
    assert "prohibition" in summary


def test_a_look_alike_purpose_does_not_match_a_permission_either() -> None:
    document = _offer(_c("purpose", "eq", RESEARCH))
    permitted, summary = _decide(document, {"purpose": PURPOSE + "sc\u0456entific-research"})
    assert not permitted
    assert "look-alike" in summary


@pytest.mark.parametrize(
    ("conflict", "permitted"), [(None, False), ("invalid", False), ("prohibit", False), ("perm", True)]
)
def test_conflict_strategies(conflict: str | None, permitted: bool) -> None:
    document: dict[str, Any] = {
        "@id": "urn:policy:logic",
        "@type": "Offer",
        "permission": [{"action": "use"}],
        "prohibition": [{"action": "use"}],
    }
    if conflict:
        document["conflict"] = conflict
    result, summary = _decide(document, {})
    assert result is permitted
    assert "conflict" in summary or "prohibition" in summary


@pytest.mark.parametrize("conflict", ["odrl:first", "http://example.org/perm", ["perm", "prohibit"]])
def test_an_unknown_or_double_conflict_strategy_is_refused(conflict: Any) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy({**_offer(_c("purpose", "eq", RESEARCH)), "conflict": conflict})
    assert "conflict" in caught.value.code


@pytest.mark.parametrize(
    "logical",
    [
        {"and": []},
        {"or": {"@list": []}},
        {"xone": []},
        {"andSequence": []},
        {"or": [], "and": [_c("purpose", "eq", RESEARCH)]},
    ],
)
def test_empty_or_double_logical_constraints_are_refused(logical: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        parse_policy(_offer(logical))


def test_deeply_nested_logical_constraints_are_refused() -> None:
    node: dict[str, Any] = _c("purpose", "eq", RESEARCH)
    for _ in range(40):
        node = {"and": [node]}
    with pytest.raises(PolicyError) as caught:
        parse_policy(_offer(node))
    assert caught.value.code == "too-deep"


def test_an_unsupported_profile_denies_naming_it() -> None:
    permitted, summary = _decide(
        _offer(
            _c("purpose", "eq", RESEARCH),
            profile=["https://w3id.org/sluis/odrl-profile", "http://example.org/p"],
        ),
        {"purpose": RESEARCH},
    )
    assert not permitted
    assert "http://example.org/p" in summary
