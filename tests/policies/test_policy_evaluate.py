"""Worked cases: every operator, logical constraint, duty, conflict strategy and fail-closed rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policies import Decision, Policy, Request, World, compile_policy, evaluate, parse_policy
from policies.report import decision_graph, decision_sentences
from tests.policies.policy_builders import (
    ALICE,
    BOB,
    COUNTRY,
    DATASET,
    NOW,
    PLACE,
    PURPOSE,
    constraint,
    offer,
    request,
    world,
)


def decide(policy: Policy, req: Request, facts: World | None = None) -> Decision:
    facts = facts or world()
    decision = evaluate(policy, req, facts)
    assert compile_policy(policy).decide(req, facts) is decision.permitted  # fast path agrees
    return decision


def permits(policy: Policy, req: Request, facts: World | None = None) -> bool:
    return decide(policy, req, facts).permitted


# --- operators ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("operator", "right", "value", "expected"),
    [
        ("eq", 5, 5, True),
        ("eq", 5, 6, False),
        ("neq", 5, 6, True),
        ("neq", 5, 5, False),
        ("lt", 10, 9, True),
        ("lt", 10, 10, False),
        ("lteq", 10, 10, True),
        ("lteq", 10, 11, False),
        ("gt", 10, 11, True),
        ("gt", 10, 10, False),
        ("gteq", 10, 10, True),
        ("gteq", 10, 9, False),
        ("gteq", {"@value": "10.5", "@type": "xsd:decimal"}, "10.50", True),
        ("lt", {"@value": "10.5", "@type": "xsd:decimal"}, 10.49, True),
    ],
)
def test_comparison_operators_on_numbers(operator: str, right: Any, value: Any, expected: bool) -> None:
    policy = offer(constraint("percentage", operator, right))
    assert permits(policy, request(percentage=value)) is expected


@pytest.mark.parametrize(
    ("operator", "right", "value", "expected"),
    [
        ("isAnyOf", ["nl", "en"], "en", True),
        ("isAnyOf", ["nl", "en"], "de", False),
        ("isNoneOf", ["nl", "en"], "de", True),
        ("isNoneOf", ["nl", "en"], "nl", False),
        ("isAllOf", ["nl", "en"], ["en", "nl", "fr"], True),
        ("isAllOf", ["nl", "en"], ["en"], False),
        ("isAnyOf", ["nl", "en"], ["fr", "nl"], True),
        ("isNoneOf", ["nl", "en"], ["fr", "de"], True),
    ],
)
def test_set_operators(operator: str, right: Any, value: Any, expected: bool) -> None:
    policy = offer(constraint("language", operator, right))
    assert permits(policy, request(language=value)) is expected


def test_is_a_follows_the_ehds_purpose_hierarchy() -> None:
    policy = offer(constraint("purpose", "isA", PURPOSE + "ai-development"))
    assert permits(policy, request(purpose=PURPOSE + "ai-training"))
    assert permits(policy, request(purpose=PURPOSE + "ai-development"))
    assert not permits(policy, request(purpose=PURPOSE + "scientific-research"))
    assert not permits(policy, request(purpose=PURPOSE + "commercial-use"))


def test_is_part_of_follows_places_and_the_world() -> None:
    policy = offer(constraint("spatial", "isPartOf", PLACE + "EU"))
    assert permits(policy, request(spatial=PLACE + "NL-NH"))  # province < NLD < EU
    assert permits(policy, request(spatial=COUNTRY + "DEU"))
    assert not permits(policy, request(spatial=COUNTRY + "NOR"))  # EEA, not EU
    lab = "urn:site:amsterdam-lab"
    assert not permits(policy, request(spatial=lab))
    assert permits(policy, request(spatial=lab), world(part_of={lab: [PLACE + "NL-NH"]}))


def test_has_part_is_the_inverse_of_is_part_of() -> None:
    policy = offer(constraint("spatial", "hasPart", COUNTRY + "NLD"))
    assert permits(policy, request(spatial=PLACE + "EU"))
    assert not permits(policy, request(spatial=PLACE + "NL-NH"))


def test_date_time_window_with_dates_and_date_times() -> None:
    policy = offer(
        constraint("dateTime", "gteq", {"@value": "2025-01-01", "@type": "xsd:date"}),
        constraint("dateTime", "lteq", {"@value": "2025-12-31", "@type": "xsd:date"}),
    )
    assert permits(policy, request(), world(now=datetime(2025, 12, 31, 23, 59, tzinfo=UTC)))
    assert not permits(policy, request(), world(now=datetime(2026, 1, 1, 0, 0, tzinfo=UTC)))
    assert not permits(policy, request(), world(now=datetime(2024, 12, 31, 23, 59, tzinfo=UTC)))
    dsp_style = offer(constraint("dateTime", "lteq", "2023-12-31T06:00Z"))
    assert permits(dsp_style, request(), world(now=datetime(2023, 12, 31, 6, 0, tzinfo=UTC)))
    assert not permits(dsp_style, request(), world(now=datetime(2023, 12, 31, 6, 1, tzinfo=UTC)))


def test_time_unknown_denies_with_that_reason() -> None:
    policy = offer(constraint("dateTime", "lt", {"@value": "2030-01-01T00:00:00Z", "@type": "xsd:dateTime"}))
    decision = decide(policy, request(), World())
    assert not decision.permitted
    assert "time unknown" in decision.summary
    assert permits(offer(), request(), World())  # no rule needs the time: no clock needed


def test_elapsed_time_counts_from_the_agreement_timestamp() -> None:
    agreement = parse_policy(
        {
            "@id": "urn:agreement",
            "@type": "Agreement",
            "assigner": "urn:p",
            "assignee": ALICE,
            "target": DATASET,
            "timestamp": "2025-06-01T00:00:00Z",
            "permission": [
                {
                    "action": "use",
                    "constraint": [
                        constraint("elapsedTime", "lteq", {"@value": "P30D", "@type": "xsd:duration"})
                    ],
                }
            ],
        }
    )
    assert permits(agreement, request(), world(now=datetime(2025, 6, 30, tzinfo=UTC)))
    assert not permits(agreement, request(), world(now=datetime(2025, 7, 2, tzinfo=UTC)))
    assert permits(agreement, request(elapsedTime="PT1H"), world(now=datetime(2026, 1, 1, tzinfo=UTC)))


def test_count_limits_reads_using_the_world_counts() -> None:
    policy = offer(constraint("count", "lteq", 3))
    assert permits(policy, request(), world(counts={DATASET: 2}))  # this is the third read
    assert not permits(policy, request(), world(counts={DATASET: 3}))
    assert not permits(policy, request(), world(counts={"urn:policy:test": 3}))


def test_credential_held_with_bare_names_or_iris() -> None:
    policy = offer(constraint("sluis:credential", "eq", "EHDSDataPermit"))
    assert permits(policy, request(sluis__credential=["MembershipCredential", "EHDSDataPermit"]))
    assert permits(policy, request(sluis__credential=["https://w3id.org/sluis/ns#EHDSDataPermit"]))
    assert not permits(policy, request(sluis__credential=["MembershipCredential"]))
    assert not permits(policy, request())  # not stated: unknown, not granted


def test_compute_site_and_job_id() -> None:
    policy = offer(
        constraint("sluis:computeSite", "isPartOf", PLACE + "EU"), constraint("sluis:jobId", "neq", "bad")
    )
    assert permits(policy, request(sluis__computeSite=COUNTRY + "FIN", sluis__jobId="job-1"))
    assert not permits(
        policy,
        request(
            sluis__computeSite="http://publications.europa.eu/resource/authority/country/USA",
            sluis__jobId="job-1",
        ),
    )


def test_recipient_defaults_to_the_assignee() -> None:
    policy = offer(constraint("recipient", "eq", {"@id": ALICE}))
    assert permits(policy, request())
    assert not permits(policy, request(assignee=BOB))


# --- logical constraints ------------------------------------------------------------------
def _lang(op: str, right: Any) -> dict[str, Any]:
    return constraint("language", op, right)


@pytest.mark.parametrize(
    ("logical", "language", "expected"),
    [
        ("or", "nl", True),
        ("or", "de", False),
        ("xone", "nl", True),
        ("and", "nl", False),
        ("andSequence", "nl", False),
    ],
)
def test_logical_constraints(logical: str, language: str, expected: bool) -> None:
    policy = offer({logical: [_lang("eq", "nl"), _lang("eq", "en")]})
    assert permits(policy, request(language=language)) is expected


def test_xone_fails_when_both_hold_and_and_when_both_hold_passes() -> None:
    both = [_lang("isAnyOf", ["nl", "en"]), _lang("neq", "de")]
    assert not permits(offer({"xone": both}), request(language="nl"))
    assert permits(offer({"and": both}), request(language="nl"))
    assert permits(offer({"andSequence": both}), request(language="nl"))


def test_nested_logical_constraints_explain_every_level() -> None:
    policy = offer(
        {"or": [{"and": [_lang("eq", "nl"), constraint("percentage", "lt", 10)]}, _lang("eq", "en")]}
    )
    decision = decide(policy, request(language="nl", percentage=5))
    assert decision.permitted
    premise = decision.to_json()["rules"][0]["premises"][3]
    assert premise["kind"] == "or"
    assert premise["premises"][0]["kind"] == "and"
    assert [p["state"] for p in premise["premises"][0]["premises"]] == ["satisfied", "satisfied"]


def test_and_sequence_reports_members_after_a_failure_as_not_evaluated() -> None:
    policy = offer({"andSequence": [_lang("eq", "de"), _lang("eq", "nl")]})
    report = decide(policy, request(language="nl")).to_json()["rules"][0]["premises"][3]
    assert [p["state"] for p in report["premises"]] == ["unsatisfied", "not-evaluated"]


# --- actions, parties, assets ---------------------------------------------------------------
def test_action_hierarchy_read_is_use_and_sell_is_not() -> None:
    policy = offer()
    assert permits(policy, request("read"))
    assert permits(policy, request("aggregate"))
    assert permits(policy, request("print"))  # print < present < use
    assert not permits(policy, request("sell"))  # sell < transfer, not use
    assert not permits(offer(action="read"), request("use"))  # use is wider than read


def test_deprecated_actions_read_as_their_successor() -> None:
    assert permits(offer(action="modify"), request("odrl:write"))


def test_party_and_asset_collections_via_part_of() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "@type": "Set",
            "permission": [
                {"action": "use", "target": "urn:collection:cohorts", "assignee": "urn:group:researchers"}
            ],
        }
    )
    facts = world(part_of={DATASET: ["urn:collection:cohorts"], ALICE: ["urn:group:researchers"]})
    assert permits(policy, request(), facts)
    assert not permits(policy, request(assignee=BOB), facts)
    assert not permits(policy, request(target="urn:dataset:other"), facts)


def test_party_collection_refinement_checks_the_requesters_credentials() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "permission": [
                {
                    "action": "use",
                    "assignee": {
                        "@type": "PartyCollection",
                        "source": "urn:group:hospitals",
                        "refinement": [constraint("sluis:credential", "isAnyOf", ["EHDSDataPermit"])],
                    },
                }
            ],
        }
    )
    facts = world(part_of={ALICE: ["urn:group:hospitals"]})
    assert permits(policy, request(sluis__credential=["EHDSDataPermit"]), facts)
    assert not permits(policy, request(sluis__credential=[]), facts)


def test_action_refinement_is_a_premise() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "permission": [
                {
                    "action": {
                        "rdf:value": {"@id": "odrl:print"},
                        "refinement": [constraint("resolution", "lteq", 300)],
                    }
                }
            ],
        }
    )
    assert permits(policy, request("print", resolution=150))
    assert not permits(policy, request("print", resolution=600))


# --- fail closed ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy_constraint", "term"),
    [
        (constraint("partner", "eq", "gold"), "partner"),
        (constraint("purpose", "likes", "x"), "likes"),
        (constraint("https://example.org/ext#trust", "gteq", 3), "https://example.org/ext#trust"),
    ],
)
def test_unknown_terms_deny_and_are_named(policy_constraint: dict[str, Any], term: str) -> None:
    decision = decide(offer(policy_constraint), request(partner="gold", purpose="x"))
    assert not decision.permitted
    assert term in decision.unknown_terms
    assert term in decision.summary or term.rsplit("/", 1)[-1] in decision.summary


def test_unknown_action_and_profile_deny() -> None:
    decision = decide(offer(action="https://example.org/actions/teleport"), request("use"))
    assert not decision.permitted
    assert "https://example.org/actions/teleport" in decision.unknown_terms
    profiled = offer(profile="https://example.org/profile")
    decision = decide(profiled, request())
    assert not decision.permitted
    assert "https://example.org/profile" in decision.summary


def test_prohibition_with_unknown_term_is_treated_as_in_force() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "conflict": "prohibit",
            "permission": [{"action": "use"}],
            "prohibition": [{"action": "use", "constraint": [constraint("partner", "eq", "x")]}],
        }
    )
    decision = decide(policy, request())
    assert not decision.permitted
    assert "fail closed" in decision.to_json()["rules"][1]["reason"]


def test_prohibition_on_an_unstated_purpose_fails_closed() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "conflict": "prohibit",
            "permission": [{"action": "use"}],
            "prohibition": [
                {"action": "use", "constraint": [constraint("purpose", "isA", PURPOSE + "commercial-use")]}
            ],
        }
    )
    assert not permits(policy, request())
    assert permits(policy, request(purpose=PURPOSE + "scientific-research"))
    assert not permits(policy, request(purpose=PURPOSE + "marketing"))


# --- conflicts ----------------------------------------------------------------------------------
def _conflicting(strategy: str | None) -> Policy:
    document: dict[str, Any] = {
        "@id": "urn:p",
        "permission": [{"action": "use"}],
        "prohibition": [{"action": "read"}],
    }
    if strategy:
        document["conflict"] = strategy
    return parse_policy(document)


def test_conflict_strategies() -> None:
    assert permits(_conflicting("perm"), request("read"))
    assert not permits(_conflicting("prohibit"), request("read"))
    default = decide(_conflicting(None), request("read"))
    assert not default.permitted
    assert "invalid" in default.summary
    assert default.conflict_found
    assert permits(_conflicting(None), request("aggregate"))  # the prohibition does not apply


# --- duties ---------------------------------------------------------------------------------------
def _with_duty(**duty: Any) -> Policy:
    return parse_policy(
        {"@id": "urn:p", "permission": [{"action": "use", "duty": [{"action": "compensate", **duty}]}]}
    )


def test_a_permissions_duty_must_be_fulfilled_first() -> None:
    policy = _with_duty()
    duty = policy.atomic_rules[0].duties[0].uid
    pending = decide(policy, request())
    assert not pending.permitted
    assert "pending" in pending.summary
    assert permits(policy, request(), world(duties={duty: "fulfilled"}))
    assert not permits(policy, request(), world(duties={duty: "violated"}))


def test_a_violated_duty_made_good_by_its_consequence() -> None:
    policy = _with_duty(
        **{"@id": "urn:duty:pay", "consequence": [{"@id": "urn:duty:pay-fine", "action": "compensate"}]}
    )
    assert not permits(policy, request(), world(duties={"urn:duty:pay": "violated"}))
    assert permits(
        policy, request(), world(duties={"urn:duty:pay": "violated", "urn:duty:pay-fine": "fulfilled"})
    )


def test_a_duty_not_yet_in_force_does_not_block() -> None:
    policy = _with_duty(
        constraint=[constraint("dateTime", "gt", {"@value": "2030-01-01", "@type": "xsd:date"})]
    )
    assert permits(policy, request())
    assert not permits(policy, request(), world(now=datetime(2031, 1, 1, tzinfo=UTC)))


def test_a_violated_obligation_denies_and_a_pending_one_does_not() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "permission": [{"action": "use"}],
            "obligation": [{"@id": "urn:ob:report", "action": "inform", "assignee": ALICE}],
        }
    )
    assert permits(policy, request())
    violated = decide(policy, request(), world(duties={"urn:ob:report": "violated"}))
    assert not violated.permitted
    assert "urn:ob:report" in violated.summary
    assert permits(policy, request(assignee=BOB), world(duties={"urn:ob:report": "violated"}))


def test_remedies_are_reported_with_the_prohibition() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "permission": [{"action": "use"}],
            "conflict": "prohibit",
            "prohibition": [{"action": "distribute", "remedy": [{"@id": "urn:r", "action": "delete"}]}],
        }
    )
    report = decide(policy, request("distribute")).to_json()
    prohibition = report["rules"][1]
    assert prohibition["kind"] == "prohibition"
    assert prohibition["active"]
    assert prohibition["duties"][0]["role"] == "remedy"


# --- inheritance, data plane operands, reports --------------------------------------------------
def test_inherited_prohibition_applies_to_the_child() -> None:
    parent = {
        "@id": "urn:org-policy",
        "prohibition": [{"action": "sell"}, {"action": "distribute"}],
        "permission": [{"action": "read"}],
    }
    child = parse_policy(
        {
            "@id": "urn:child",
            "inheritFrom": "urn:org-policy",
            "conflict": "prohibit",
            "permission": [{"action": "use"}],
        },
        inherit={"urn:org-policy": parent},
    )
    assert permits(child, request("read"))
    decision = decide(child, request("distribute"))
    assert not decision.permitted
    assert decision.to_json()["rules"][-1]["inheritedFrom"] == "urn:org-policy"


def test_row_filters_and_unstated_columns_are_left_to_the_data_plane() -> None:
    policy = offer(
        constraint("https://w3id.org/sluis/column/country", "eq", "NL"),
        constraint("sluis:columns", "isPartOf", ["age", "country"]),
    )
    decision = decide(policy, request("read"))
    assert decision.permitted
    states = [p["state"] for p in decision.to_json()["rules"][0]["premises"][3:]]
    assert states == ["enforced-by-data-plane", "enforced-by-data-plane"]
    assert not permits(policy, request("read", sluis__columns=["age", "ssn"]))
    assert permits(policy, request("read", sluis__columns=["age"]))


def test_row_filter_inside_or_fails_closed() -> None:
    policy = offer(
        {"or": [constraint("https://w3id.org/sluis/column/country", "eq", "NL"), _lang("eq", "nl")]}
    )
    assert not permits(policy, request(language="de"))


def test_json_report_contract() -> None:
    body = decide(
        offer(constraint("purpose", "isA", PURPOSE + "scientific-research")),
        request(purpose=PURPOSE + "scientific-research"),
    ).to_json()
    assert body["decision"] == "permit"
    [rule] = body["rules"]
    assert set(rule) >= {"rule", "kind", "active", "premises"}
    assert rule["rule"] == "urn:policy:test/permission/0"
    assert rule["kind"] == "permission"
    assert rule["active"]
    assert [p["kind"] for p in rule["premises"]] == ["target", "party", "action", "constraint"]
    constraint_report = rule["premises"][3]
    assert constraint_report["value"] == PURPOSE + "scientific-research"
    assert constraint_report["operator"] == "isA"
    assert constraint_report["state"] == "satisfied"


def test_compliance_report_graph_uses_the_report_vocabulary() -> None:
    from rdflib import Namespace

    report = Namespace("https://w3id.org/force/compliance-report#")
    decision = decide(offer(constraint("count", "lteq", 1)), request(), world(counts={DATASET: 1}))
    graph = decision_graph(decision)
    [rule_report] = list(graph.subjects(predicate=None, object=report.PermissionReport))
    assert (rule_report, report.activationState, report.Inactive) in graph
    constraint_reports = list(graph.subjects(object=report.ConstraintReport))
    assert constraint_reports
    assert (constraint_reports[0], report.satisfactionState, report.Unsatisfied) in graph
    assert (None, None, report.PolicyReport) in graph


def test_sentences_name_the_decision_and_the_failing_constraint() -> None:
    decision = decide(offer(constraint("count", "lteq", 1)), request(), world(counts={DATASET: 1}))
    lines = decision_sentences(decision)
    assert lines[0] == "Decision: DENY."
    assert any("count lteq 1" in line and "unsatisfied" in line for line in lines)


def test_now_without_timezone_is_utc() -> None:
    naive = World(now=datetime(2025, 6, 1, 12, 0))
    assert naive.now == NOW


def test_a_duty_with_a_deadline_is_performed_after_use_and_blocks_once_overdue() -> None:
    deadline = constraint("dateTime", "lteq", {"@value": "2025-07-01T00:00:00Z", "@type": "xsd:dateTime"})
    policy = _with_duty(**{"@id": "urn:duty:delete", "action": "delete", "constraint": [deadline]})
    before, after = world(now=datetime(2025, 6, 1, tzinfo=UTC)), world(now=datetime(2025, 7, 2, tzinfo=UTC))
    assert permits(policy, request(), before)  # pending, due later: not a pre-condition
    overdue = decide(policy, request(), after)
    assert not overdue.permitted
    duty_report = overdue.to_json()["rules"][0]["duties"][0]
    assert duty_report["state"] == "violated"
    assert "deadline passed" in duty_report["reason"]
    assert permits(policy, request(), world(now=after.now, duties={"urn:duty:delete": "fulfilled"}))


def test_an_obligation_with_a_deadline_blocks_only_once_overdue() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "permission": [{"action": "use"}],
            "obligation": [
                {
                    "@id": "urn:ob:report",
                    "action": "inform",
                    "constraint": [
                        constraint("dateTime", "lt", {"@value": "2025-07-01", "@type": "xsd:date"})
                    ],
                }
            ],
        }
    )
    assert permits(policy, request(), world(now=datetime(2025, 6, 1, tzinfo=UTC)))
    assert not permits(policy, request(), world(now=datetime(2025, 7, 1, 12, tzinfo=UTC)))
    assert not permits(policy, request(), World())  # time unknown: cannot tell, fail closed
