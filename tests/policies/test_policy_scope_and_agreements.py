"""What the data plane enforces, agreements made from offers, and the DSP JSON we emit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from policies import (
    DataScope,
    PolicyError,
    RowFilter,
    World,
    data_scope,
    evaluate,
    make_agreement,
    parse_policy,
    templates,
    to_dsp_json,
)
from tests.policies.policy_builders import ALICE, DATASET, PURPOSE, constraint, offer, request, world

COLUMN = "https://w3id.org/sluis/column/"


def test_data_scope_collects_columns_rows_aggregates_and_reads() -> None:
    policy = offer(
        constraint("sluis:columns", "isPartOf", ["age", "country", "diagnosis"]),
        constraint("sluis:columns", "isNoneOf", ["ssn"]),
        constraint(COLUMN + "country", "isAnyOf", ["NL", "BE"]),
        {"and": [constraint(COLUMN + "age", "gteq", 18)]},
        constraint("sluis:groupSize", "gteq", 10),
        constraint("count", "lteq", 5),
        action="aggregate",
    )
    scope = data_scope(policy, request("aggregate"), world())
    assert scope == DataScope(
        allowed_columns=frozenset({"age", "country", "diagnosis"}),
        denied_columns=frozenset({"ssn"}),
        row_filters=(RowFilter("country", "isAnyOf", ("NL", "BE")), RowFilter("age", "gteq", 18)),
        aggregate_only=True,
        min_group_size=10,
        max_reads=5,
    )
    assert scope.to_json()["rowFilters"][0] == {
        "column": "country",
        "operator": "isAnyOf",
        "value": ["NL", "BE"],
    }


def test_data_scope_of_an_unrestricted_read_is_open() -> None:
    scope = data_scope(offer(), request("read"), world())
    assert scope.allowed_columns is None
    assert not scope.row_filters
    assert not scope.aggregate_only
    assert scope.max_reads is None
    assert scope.min_group_size is None


def test_data_scope_refuses_a_denied_read() -> None:
    with pytest.raises(PolicyError) as caught:
        data_scope(offer(constraint("count", "lteq", 1)), request(), world(counts={DATASET: 1}))
    assert caught.value.code == "not-permitted"


def test_aggregate_only_template_denies_plain_reads_and_small_groups() -> None:
    policy = templates.aggregate_only("urn:offer:agg", 10)
    assert not evaluate(policy, request("read"), world()).permitted
    assert evaluate(policy, request("aggregate"), world()).permitted
    assert not evaluate(policy, request("aggregate", sluis__groupSize=5), world()).permitted
    scope = data_scope(policy, request("aggregate"), world())
    assert scope.aggregate_only
    assert scope.min_group_size == 10


def test_agreement_from_an_offer_binds_parties_target_and_time() -> None:
    offer_policy = templates.combine(
        "urn:offer:1", templates.research_only("urn:a"), templates.max_reads("urn:b", 2)
    )
    agreement = make_agreement(
        offer_policy,
        "did:web:provider",
        ALICE,
        DATASET,
        datetime(2025, 6, 1, 12, 0, 0, 123, tzinfo=UTC),
        "urn:agreement:1",
    )
    assert agreement.type_name == "Agreement"
    assert (agreement.assigner, agreement.assignee, agreement.target) == ("did:web:provider", ALICE, DATASET)
    assert agreement.timestamp == "2025-06-01T12:00:00Z"
    research = request(purpose=PURPOSE + "scientific-research")
    assert evaluate(agreement, research, world()).permitted
    assert not evaluate(
        agreement, request(assignee="did:web:mallory", purpose=PURPOSE + "scientific-research"), world()
    ).permitted
    assert not evaluate(agreement, research, world(counts={"urn:agreement:1": 2})).permitted


def _dsp_policy_schema(conformance_dir: Path, definition: str) -> Any:
    """The DSP policy schema narrowed to one definition (its top-level oneOf cannot tell a catalog
    Offer without target from a message Offer without target: both match, so oneOf fails)."""
    from jsonschema import Draft201909Validator

    path = conformance_dir / "dsp" / "2025-1" / "schemas" / "negotiation" / "contract-schema.json"
    schema = json.loads(path.read_text())
    schema["allOf"] = [{"$ref": f"#/definitions/{definition}"}]
    return Draft201909Validator(schema)


def test_offers_and_agreements_we_emit_pass_the_dsp_schema(conformance_dir: Path) -> None:
    offers = _dsp_policy_schema(conformance_dir, "Offer")
    agreements = _dsp_policy_schema(conformance_dir, "Agreement")
    built = [
        templates.research_only("urn:t:1"),
        templates.eu_only_processing("urn:t:2"),
        templates.time_boxed("urn:t:3", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        templates.max_reads("urn:t:4", 10),
        templates.aggregate_only("urn:t:5", 10),
        templates.no_commercial_use("urn:t:6"),
        templates.delete_after("urn:t:7", 30),
    ]
    for policy in built:
        document = to_dsp_json(policy)
        assert document["@type"] == "Offer"
        assert "target" not in document
        errors = [e.message for e in offers.iter_errors(document)]
        assert not errors, (policy.uid, errors)
        agreement = make_agreement(
            policy, "did:web:p", ALICE, DATASET, datetime(2025, 1, 1, tzinfo=UTC), "urn:ag"
        )
        errors = [e.message for e in agreements.iter_errors(to_dsp_json(agreement))]
        assert not errors, (policy.uid, errors)


def test_dsp_examples_round_trip_through_our_writer(conformance_dir: Path) -> None:
    path = conformance_dir / "dsp/2025-1/examples/negotiation/contract-agreement-message-full.json"
    original = json.loads(path.read_text())["agreement"]
    written = to_dsp_json(parse_policy(original))
    assert written["permission"] == original["permission"]
    assert {k: written[k] for k in ("@id", "@type", "target", "assigner", "assignee", "timestamp")} == {
        k: original[k] for k in ("@id", "@type", "target", "assigner", "assignee", "timestamp")
    }


def test_time_boxed_and_delete_after_templates() -> None:
    boxed = templates.time_boxed("urn:t", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
    assert evaluate(boxed, request(), world(now=datetime(2025, 6, 30, tzinfo=UTC))).permitted
    assert not evaluate(boxed, request(), world(now=datetime(2025, 7, 1, tzinfo=UTC))).permitted
    deleting = make_agreement(
        templates.delete_after("urn:d", 30),
        "did:web:p",
        ALICE,
        DATASET,
        datetime(2025, 1, 1, tzinfo=UTC),
        "urn:ag:d",
    )
    duty = deleting.atomic_rules[0].duties[0].uid
    assert evaluate(deleting, request(), World(now=datetime(2025, 1, 20, tzinfo=UTC))).permitted
    late = World(now=datetime(2025, 3, 1, tzinfo=UTC))
    assert not evaluate(deleting, request(), late).permitted
    assert evaluate(deleting, request(), World(now=late.now, duties={duty: "fulfilled"})).permitted
    assert evaluate(
        templates.delete_after("urn:d", 30), request(), late
    ).permitted  # an offer has not started


def test_no_commercial_use_and_eu_only_templates() -> None:
    policy = templates.combine(
        "urn:c", templates.no_commercial_use("urn:x"), templates.eu_only_processing("urn:y")
    )
    eu = "http://publications.europa.eu/resource/authority/country/NLD"
    assert evaluate(policy, request(purpose=PURPOSE + "education", sluis__computeSite=eu), world()).permitted
    assert not evaluate(
        policy, request(purpose=PURPOSE + "marketing", sluis__computeSite=eu), world()
    ).permitted
    us = "http://publications.europa.eu/resource/authority/country/USA"
    assert not evaluate(
        policy, request(purpose=PURPOSE + "education", sluis__computeSite=us), world()
    ).permitted
