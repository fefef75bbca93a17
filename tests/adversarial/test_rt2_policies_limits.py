"""Small documents that expand into huge policies, and parents whose terms must follow their rules.

A compact policy multiplies: every action x target x assigner x assignee of a rule becomes an
atomic rule, and each copies the rule's duties. The limit must be checked before that product
is built, or a few kilobytes cost seconds of CPU and gigabytes of memory. A parent's profile
must deny wherever the parent's rules are inherited.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies import PolicyError, Request, World, evaluate, parse_policy
from policies.parse import MAX_POLICY_BYTES

ALICE = "did:web:alice.example"
DATASET = "urn:dataset:cohort"
RESEARCH = "https://w3id.org/sluis/purpose/scientific-research"


@pytest.mark.parametrize(
    "permission",
    [
        # 200 x 200 x 200 = 8 million atomic rules from a 7 KB document
        {
            "action": ["read"] * 200,
            "target": [f"urn:t:{i}" for i in range(200)],
            "assignee": [f"did:web:a{i}.example" for i in range(200)],
        },
        # 800 atomic rules, each carrying a duty that expands to 5,000 atomic duties
        {
            "action": ["use", "read"],
            "target": [f"urn:t:{i}" for i in range(400)],
            "duty": [{"action": ["delete"] * 5000}],
        },
    ],
    ids=["rules", "duties"],
)
def test_a_compact_policy_that_would_expand_too_far_is_refused_before_expanding(
    permission: dict[str, Any],
) -> None:
    document = {"@id": "urn:policy:big", "@type": "Offer", "permission": [permission]}
    assert len(json.dumps(document)) < 200_000
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    assert caught.value.code == "too-many-rules"


def test_a_policy_text_over_the_size_limit_is_refused() -> None:
    padding = "x" * MAX_POLICY_BYTES
    text = json.dumps(
        {"@id": "urn:policy:big", "@type": "Offer", "permission": [{"action": "use"}], "title": padding}
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.code == "too-large"


def test_deeply_nested_json_is_refused() -> None:
    text = '{"@id": "urn:policy:deep", "@type": "Offer", "permission": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.code == "too-deep"


PARENT = {
    "@id": "urn:policy:parent",
    "@type": "Set",
    "profile": "http://example.org/another-profile",
    "permission": [{"action": "use"}],
}


@pytest.mark.parametrize(
    "child",
    [
        {"@id": "urn:policy:child", "@type": "Offer", "inheritFrom": "urn:policy:parent"},
        {
            "@id": "urn:policy:child",
            "@type": "Offer",
            "inheritFrom": "urn:policy:parent",
            "permission": [
                {
                    "action": "use",
                    "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": RESEARCH}],
                }
            ],
        },
    ],
    ids=["only-inherited", "with-own-rules"],
)
def test_a_parents_unsupported_profile_denies_the_child(child: dict[str, Any]) -> None:
    policy = parse_policy(child, inherit={"urn:policy:parent": PARENT})
    decision = evaluate(policy, Request(ALICE, "use", DATASET, {"purpose": RESEARCH}), World())
    assert not decision.permitted
    assert "another-profile" in decision.summary


def test_inheritance_cycles_and_unknown_parents_are_refused() -> None:
    a = {
        "@id": "urn:policy:a",
        "@type": "Set",
        "inheritFrom": "urn:policy:b",
        "permission": [{"action": "use"}],
    }
    b = {
        "@id": "urn:policy:b",
        "@type": "Set",
        "inheritFrom": "urn:policy:a",
        "permission": [{"action": "use"}],
    }
    with pytest.raises(PolicyError) as caught:
        parse_policy(a, inherit={"urn:policy:a": a, "urn:policy:b": b})
    assert caught.value.code == "circular-inheritance"
    with pytest.raises(PolicyError) as caught:
        parse_policy(a)
    assert caught.value.code == "unresolved-inheritance"
