"""Asset and party collections named by ``odrl:source``, joined through ``partOf`` facts of the
world; rules without an action refused with the rule named; decision scopes."""

from __future__ import annotations

import pytest

from policies import PolicyError, Request, Scope, World, decide_in_scope, evaluate, lint, parse_policy

NOW_WORLD = World()
COHORTS = "urn:collection:cohorts"
HOSPITALS = "urn:collection:hospitals"
DATASET = "urn:dataset:nl-cohort"
ALICE = "did:web:alice.example"
BOB = "did:web:bob.example"


def _policy() -> dict[str, object]:
    return {
        "@context": "http://www.w3.org/ns/odrl.jsonld",
        "@type": "Set",
        "uid": "urn:policy:collections",
        "permission": [
            {
                "uid": "urn:rule:hospitals-use-cohorts",
                "action": "use",
                "target": {"@type": "AssetCollection", "source": COHORTS},
                "assignee": {"@type": "PartyCollection", "source": HOSPITALS},
            }
        ],
    }


def _permitted(assignee: str, target: str, part_of: dict[str, list[str]]) -> bool:
    policy = parse_policy(_policy())
    return evaluate(
        policy, Request(assignee=assignee, action="use", target=target), World(part_of=part_of)
    ).permitted


def test_collections_are_the_source_and_membership_is_a_part_of_fact() -> None:
    facts = {DATASET: [COHORTS], ALICE: [HOSPITALS]}
    assert _permitted(ALICE, DATASET, facts)
    assert not _permitted(BOB, DATASET, facts)  # not part of the party collection
    assert not _permitted(ALICE, "urn:dataset:other", facts)  # not part of the asset collection
    assert not _permitted(ALICE, DATASET, {})  # nothing stated: no membership, deny


def test_membership_is_transitive_through_nested_collections() -> None:
    nested = {DATASET: ["urn:collection:nl"], "urn:collection:nl": [COHORTS], ALICE: [HOSPITALS]}
    assert _permitted(ALICE, DATASET, nested)


@pytest.mark.parametrize("kind", ["permission", "prohibition"])
def test_a_rule_without_an_action_is_invalid_and_the_lint_names_the_rule(kind: str) -> None:
    actionless = {"uid": "urn:rule:no-action", "target": DATASET}
    allowed = {"uid": "urn:rule:ok", "action": "use", "target": DATASET}
    rules = (
        {"permission": [allowed, actionless]}
        if kind == "permission"
        else {"permission": [allowed], kind: [actionless]}
    )
    document = {
        "@context": "http://www.w3.org/ns/odrl.jsonld",
        "@type": "Set",
        "uid": "urn:policy:no-action",
        **rules,
    }
    with pytest.raises(PolicyError) as raised:
        parse_policy(document)
    assert raised.value.code == "missing-action"
    findings = lint(document)
    assert [f.code for f in findings] == ["missing-action"]
    assert findings[0].severity == "error"
    assert "urn:rule:no-action" in findings[0].message
    assert kind in findings[0].message


def test_a_policy_level_action_gives_its_rules_one() -> None:
    policy = parse_policy(
        {"@type": "Set", "uid": "urn:p", "action": "use", "permission": [{"target": DATASET}]}
    )
    assert evaluate(policy, Request(assignee=ALICE, action="use", target=DATASET)).permitted


SITE = {
    "leftOperand": "sluis:computeSite",
    "operator": "isPartOf",
    "rightOperand": "https://w3id.org/sluis/place/EU",
}


def test_scopes_defer_only_the_facts_they_cannot_have_yet() -> None:
    policy = parse_policy(
        {"@type": "Offer", "uid": "urn:p", "permission": [{"action": "use", "constraint": [SITE]}]}
    )
    asked = Request(assignee=ALICE, action="use", target=DATASET)
    negotiation = decide_in_scope(policy, asked, NOW_WORLD, Scope.NEGOTIATION)
    assert negotiation.permitted
    assert negotiation.deferred == ("https://w3id.org/sluis/ns#computeSite",)
    for strict in (Scope.TRANSFER, Scope.ACCESS):
        assert not decide_in_scope(policy, asked, NOW_WORLD, strict).permitted
    outside = Request(
        assignee=ALICE,
        action="use",
        target=DATASET,
        context={"sluis:computeSite": "http://publications.europa.eu/resource/authority/country/NOR"},
    )
    assert not decide_in_scope(policy, outside, NOW_WORLD, Scope.NEGOTIATION).permitted  # stated, so decided
