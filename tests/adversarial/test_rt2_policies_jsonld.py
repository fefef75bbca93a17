"""The same policy written in other JSON-LD shapes must decide the same - and never weaker.

JSON-LD lets one node be described by several node objects (in a ``@graph`` or a top-level
array), values be wrapped in ``@set``, and contexts be remote. A reader that takes only the
first description of the policy node would drop a prohibition written in the second; a JSON
reader that keeps the last of two equal keys reads another policy than one that keeps the
first. Remote contexts are refused, never fetched.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from policies import PolicyError, Request, World, compile_policy, evaluate, parse_policy

ODRL = "http://www.w3.org/ns/odrl/2/"
ALICE = "did:web:alice.example"
DATASET = "urn:dataset:cohort"
PURPOSE = "https://w3id.org/sluis/purpose/"
RESEARCH = PURPOSE + "scientific-research"
MARKETING = PURPOSE + "marketing"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
USE = {ODRL + "action": [{"@id": ODRL + "use"}]}


def _permitted(document: Any, context: dict[str, Any] | None = None) -> tuple[bool, str]:
    policy = parse_policy(document)
    request = Request(ALICE, "use", DATASET, context or {})
    decision = evaluate(policy, request, World(now=NOW))
    assert compile_policy(policy).decide(request, World(now=NOW)) == decision.permitted
    return decision.permitted, decision.summary


_SPLIT_POLICY = [
    {"@id": "urn:policy:split", "@type": [ODRL + "Offer"], ODRL + "permission": [USE]},
    {"@id": "urn:policy:split", ODRL + "prohibition": [USE], ODRL + "conflict": [{"@id": ODRL + "prohibit"}]},
]


@pytest.mark.parametrize(
    "document",
    [
        {"@graph": _SPLIT_POLICY},
        json.dumps(_SPLIT_POLICY),
        {
            "@context": "http://www.w3.org/ns/odrl.jsonld",
            "@graph": [
                {"@id": "urn:policy:split", "@type": "Offer", "permission": [{"action": "use"}]},
                {"@id": "urn:policy:split", "prohibition": [{"action": "use"}], "conflict": "prohibit"},
            ],
        },
    ],
    ids=["graph", "top-level-array", "graph-with-odrl-context"],
)
def test_a_prohibition_in_a_second_description_of_the_policy_node_is_kept(document: Any) -> None:
    permitted, summary = _permitted(document)
    assert not permitted
    assert "prohibition" in summary


def test_a_rule_described_in_two_node_objects_keeps_its_constraint() -> None:
    constraint = {
        ODRL + "leftOperand": [{"@id": ODRL + "purpose"}],
        ODRL + "operator": [{"@id": ODRL + "eq"}],
        ODRL + "rightOperand": [{"@id": RESEARCH}],
    }
    document = {
        "@graph": [
            {
                "@id": "urn:policy:r",
                "@type": [ODRL + "Offer"],
                ODRL + "permission": [{"@id": "urn:rule:1", **USE}],
            },
            {"@id": "urn:rule:1", ODRL + "constraint": [constraint]},
        ]
    }
    assert not _permitted(document, {"purpose": MARKETING})[0]
    assert _permitted(document, {"purpose": RESEARCH})[0]


def test_a_type_given_as_a_string_in_expanded_form_is_read_as_one_type() -> None:
    assert _permitted({"@id": "urn:policy:t", "@type": ODRL + "Offer", ODRL + "permission": [USE]})[0]


@pytest.mark.parametrize(
    "document",
    [
        {
            "@context": "http://www.w3.org/ns/odrl.jsonld",
            "@id": "urn:policy:s",
            "@type": "Offer",
            "permission": {"@set": [{"action": "use"}]},
            "prohibition": {"@set": [{"action": "use"}]},
            "conflict": "prohibit",
        },
        {
            "@id": "urn:policy:s",
            "@type": "Offer",
            "permission": {"@set": [{"action": "use"}]},
            "prohibition": {"@set": [{"action": "use"}]},
            "conflict": "prohibit",
        },
        {
            "@id": "urn:policy:s",
            "@type": "Offer",
            "permission": [{"action": "use"}],
            "prohibition": {"@list": [{"action": "use"}]},
            "conflict": "prohibit",
        },
    ],
    ids=["odrl-context-set", "compact-set", "compact-list"],
)
def test_set_and_list_wrapped_rules_are_read(document: dict[str, Any]) -> None:
    permitted, summary = _permitted(document)
    assert not permitted
    assert "prohibition" in summary


def test_a_repeated_json_key_is_refused() -> None:
    text = (
        '{"@id": "urn:policy:d", "@type": "Offer", "prohibition": [{"action": "use"}],'
        ' "permission": [{"action": "use"}], "prohibition": [], "conflict": "prohibit"}'
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.code == "duplicate-key"
    assert "prohibition" in str(caught.value)


@pytest.mark.parametrize(
    "context",
    [
        "http://attacker.example/ctx.jsonld",
        ["http://www.w3.org/ns/odrl.jsonld", "https://attacker.example/ctx"],
        {"@version": 1.1, "@import": "http://attacker.example/x"},
        [
            "http://www.w3.org/ns/odrl.jsonld",
            {"permission": {"@id": "odrl:permission", "@context": "http://a.example/y"}},
        ],
        [{"@context": "http://attacker.example/nested"}],
    ],
    ids=["remote", "remote-after-known", "import", "scoped", "nested"],
)
def test_a_remote_context_is_refused_not_fetched(context: Any) -> None:
    document = {
        "@context": context,
        "@id": "urn:policy:c",
        "@type": "Offer",
        "permission": [{"action": "use"}],
    }
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    assert "context" in str(caught.value).lower()


def test_other_prefixes_and_expanded_form_decide_like_the_compact_form() -> None:
    compact = {
        "@id": "urn:policy:p",
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {"leftOperand": "purpose", "operator": "eq", "rightOperand": {"@id": RESEARCH}}
                ],
            }
        ],
    }
    prefixed = {
        "@context": ["http://www.w3.org/ns/odrl.jsonld", {"o": ODRL}],
        "@id": "urn:policy:p",
        "@type": "o:Offer",
        "o:permission": [
            {
                "o:action": {"@id": "o:use"},
                "o:constraint": [
                    {
                        "o:leftOperand": {"@id": "o:purpose"},
                        "o:operator": {"@id": "o:eq"},
                        "o:rightOperand": {"@id": RESEARCH},
                    }
                ],
            }
        ],
    }
    for purpose in ("scientific-research", "marketing"):
        expected = purpose == "scientific-research"
        assert _permitted(compact, {"purpose": PURPOSE + purpose})[0] is expected
        assert _permitted(prefixed, {"purpose": PURPOSE + purpose})[0] is expected


@pytest.mark.parametrize(
    "nodes",
    [
        [
            {"@id": "urn:policy:a", ODRL + "permission": [USE]},
            {"@id": "urn:policy:b", ODRL + "prohibition": [USE]},
        ],
        [
            {"@id": "urn:policy:a", "@type": [ODRL + "Offer"], ODRL + "permission": [USE]},
            {"@id": "urn:policy:b", ODRL + "prohibition": [USE]},
        ],
    ],
    ids=["two-untyped", "typed-and-untyped"],
)
def test_rules_on_a_node_beside_the_policy_are_not_left_out(nodes: list[dict[str, Any]]) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy({"@graph": nodes})
    assert caught.value.code == "ambiguous-policy"
    assert "urn:policy:b" in str(caught.value)
