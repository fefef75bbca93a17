"""A policy author (or someone editing an offer) writes terms the engine does not understand.

The rule is fail closed: a unit, a datatype, a property or a logical form the engine cannot
evaluate must deny with an explanation naming it, or refuse the policy at parse time naming
it. It must never be dropped so that the policy reads as something weaker than it was written
(a misspelt ``prohibitions`` that vanishes leaves only the permission).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policies import PolicyError, Request, World, compile_policy, evaluate, lint, parse_policy

ALICE = "did:web:alice.example"
DATASET = "urn:dataset:cohort"
PURPOSE = "https://w3id.org/sluis/purpose/"
RESEARCH = PURPOSE + "scientific-research"
MARKETING = PURPOSE + "marketing"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _offer(*constraints: dict[str, Any], **extra: Any) -> dict[str, Any]:
    permission: dict[str, Any] = {"action": "use"}
    if constraints:
        permission["constraint"] = list(constraints)
    document: dict[str, Any] = {"@id": "urn:policy:rt2", "@type": "Offer", "permission": [permission]}
    document.update(extra)
    return document


def _c(left: str, operator: str, right: Any, **extra: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right, **extra}


def _decide(document: dict[str, Any], context: dict[str, Any]) -> tuple[bool, bool, str]:
    policy = parse_policy(document)
    request = Request(ALICE, "use", DATASET, context)
    decision = evaluate(policy, request, World(now=NOW))
    return decision.permitted, compile_policy(policy).decide(request, World(now=NOW)), decision.summary


@pytest.mark.parametrize(
    ("constraint", "context", "named"),
    [
        # A unit the engine cannot convert: 100 EUR is not 100 of whatever the request means.
        (_c("payAmount", "lteq", 100, unit="http://dbpedia.org/resource/Euro"), {"payAmount": 50}, "unit"),
        # A datatype no one defined: the value may mean anything.
        (
            _c("payAmount", "lteq", "100", dataType="http://example.org/money"),
            {"payAmount": "50"},
            "example.org/money",
        ),
        (_c("purpose", "eq", "x", dataType="http://example.org/foo"), {"purpose": "x"}, "example.org/foo"),
        # A datatype of another kind: a string is not a date-time.
        (
            _c("dateTime", "lt", {"@value": "2026-01-01", "@type": "xsd:string"}),
            {},
            "XMLSchema#string",
        ),
        (
            _c("payAmount", "lteq", {"@value": "100", "@type": "xsd:dateTime"}),
            {"payAmount": 1},
            "XMLSchema#dateTime",
        ),
    ],
    ids=["unit", "unknown-datatype-number", "unknown-datatype-iri", "string-as-date", "date-as-number"],
)
def test_an_unsupported_unit_or_datatype_denies_and_says_which(
    constraint: dict[str, Any], context: dict[str, Any], named: str
) -> None:
    permitted, fast, summary = _decide(_offer(constraint), context)
    assert (permitted, fast) == (False, False)
    assert named in summary
    assert any(f.severity == "error" and f.code.startswith("unsupported-") for f in lint(_offer(constraint)))


def test_an_unsupported_unit_in_a_prohibition_keeps_it_in_force() -> None:
    document = _offer(
        prohibition=[{"action": "use", "constraint": [_c("payAmount", "gt", 10, unit="ex:EUR")]}],
        conflict="prohibit",
    )
    permitted, fast, summary = _decide(document, {"payAmount": 5})
    assert (permitted, fast) == (False, False)
    assert "prohibition" in summary


@pytest.mark.parametrize(
    ("document", "named"),
    [
        # Misspelt rule lists: bare, capitalised, prefixed, in the ODRL namespace.
        ({**_offer(), "prohibitions": [{"action": "use"}]}, "prohibitions"),
        ({**_offer(), "Prohibition": [{"action": "use"}]}, "Prohibition"),
        ({**_offer(), "odrl:prohibitions": [{"action": "use"}]}, "prohibitions"),
        ({**_offer(), "conflict_strategy": "prohibit"}, "conflict_strategy"),
        # A misspelt constraint list on a rule would leave the permission unconditional.
        (
            {
                "@id": "urn:policy:rt2",
                "@type": "Offer",
                "permission": [{"action": "use", "constraints": [_c("purpose", "eq", RESEARCH)]}],
            },
            "constraints",
        ),
        (
            {
                "@id": "urn:policy:rt2",
                "@type": "Offer",
                "permission": [{"action": "use", "odrl:constraints": [_c("purpose", "eq", RESEARCH)]}],
            },
            "constraints",
        ),
        # The deprecated odrl:failure, and a logical operator ODRL does not have.
        ({**_offer(), "permission": [{"action": "use", "odrl:failure": [{"action": "delete"}]}]}, "failure"),
        (_offer({"odrl:not": [_c("purpose", "eq", RESEARCH)]}), "not"),
        (_offer({"not": [_c("purpose", "eq", RESEARCH)]}), "not"),
        # A logical operator beside a plain constraint must not be dropped for the plain one.
        (
            _offer({"odrl:nand": [_c("purpose", "eq", RESEARCH)], **_c("purpose", "eq", MARKETING)}),
            "nand",
        ),
        # odrl:status changes what is compared; the engine does not evaluate it.
        (_offer(_c("count", "lteq", 5, status=1)), "status"),
        # An action object with a property the engine does not read.
        (
            {
                "@id": "urn:policy:rt2",
                "@type": "Offer",
                "permission": [{"action": {"rdf:value": {"@id": "odrl:use"}, "odrl:refinements": []}}],
            },
            "refinements",
        ),
    ],
    ids=[
        "prohibitions",
        "Prohibition",
        "odrl-prohibitions",
        "conflict_strategy",
        "constraints",
        "odrl-constraints",
        "failure",
        "odrl-not",
        "not",
        "nand-beside-plain",
        "status",
        "action-property",
    ],
)
def test_an_unknown_property_on_a_policy_node_is_refused_naming_it(
    document: dict[str, Any], named: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    assert caught.value.code == "unknown-property"
    assert named in str(caught.value)
    assert [f.code for f in lint(document)] == ["unknown-property"]


def test_metadata_beside_a_policy_is_not_a_policy_term() -> None:
    """A signature's ``proof`` or a ``title`` on the policy is not part of it (held apart)."""
    permitted, _, _ = _decide({**_offer(), "proof": {"jws": "x"}, "title": "t"}, {})
    assert permitted


@pytest.mark.parametrize(
    ("right", "why"),
    [
        ("2025-06-30T23:59:60Z", "leap second"),
        ("2025-06-30T24:00:00Z", "hour 24"),
        ("2025-02-29", "not a leap year"),
        ("-0001-01-01", "year before 1"),
        (20260101, "number as a date"),
    ],
)
def test_a_date_time_the_engine_cannot_read_denies(right: Any, why: str) -> None:
    permitted, fast, summary = _decide(_offer(_c("dateTime", "lt", right)), {})
    assert (permitted, fast) == (False, False), why
    assert "cannot be read" in summary


def test_a_leap_day_is_a_date_and_a_zone_is_honoured() -> None:
    assert _decide(_offer(_c("dateTime", "gt", "2024-02-29")), {})[0]
    # 13:00 at +14:00 is 23:00 the day before in UTC: already past.
    assert not _decide(_offer(_c("dateTime", "lt", "2025-06-01T13:00:00+14:00")), {})[0]


@pytest.mark.parametrize(
    ("right", "value"),
    [("Infinity", 5), ("NaN", 5), (10, "NaN"), (10, "1e999999999"), (10, "9" * 5000), ("1e2", "-Infinity")],
)
def test_non_finite_numbers_on_either_side_deny(right: Any, value: Any) -> None:
    permitted, fast, summary = _decide(_offer(_c("payAmount", "lteq", right)), {"payAmount": value})
    assert (permitted, fast) == (False, False)
    assert "finite" in summary or "out of range" in summary


def test_numbers_as_strings_compare_as_numbers() -> None:
    assert _decide(_offer(_c("payAmount", "lteq", "100")), {"payAmount": "99.5"})[0]
    assert not _decide(_offer(_c("payAmount", "lteq", "100")), {"payAmount": "100.01"})[0]


def test_a_huge_number_is_refused_not_a_crash_in_the_explanation() -> None:
    """``1e999999999`` is a short string; written out as an integer it would never end."""
    permitted, fast, summary = _decide(_offer(_c("payAmount", "lteq", 0)), {"payAmount": "1e999999999"})
    assert (permitted, fast) == (False, False)
    assert "out of range" in summary
    permitted, _, summary = _decide(_offer(_c("payAmount", "lteq", "1e999999999")), {"payAmount": 1})
    assert not permitted
    assert "out of range" in summary


def test_an_integer_literal_longer_than_python_converts_is_invalid_json() -> None:
    text = (
        '{"@id": "urn:p", "@type": "Offer", "permission": [{"action": "use", "constraint": [{"leftOperand": '
    )
    text += '"payAmount", "operator": "lteq", "rightOperand": 1' + "0" * 5000 + "}]}]}"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.code == "invalid-json"


@pytest.mark.parametrize(
    ("right", "expected"),
    [
        ("2025-06-01T13:00:00", None),  # an hour after now in UTC, but local to where? indeterminate
        ({"@value": "2025-06-01T13:00:00", "@type": "xsd:dateTime"}, None),
        ("2025-06-02T12:00:01", True),  # more than 14 hours later in any zone
        ("2025-05-31T22:00:00", False),  # more than 14 hours earlier in any zone
        ("2025-06-01T13:00:00Z", True),  # a zone: decided
    ],
)
def test_a_date_time_without_a_zone_is_decided_only_beyond_14_hours(
    right: Any, expected: bool | None
) -> None:
    permitted, fast, summary = _decide(_offer(_c("dateTime", "lt", right)), {})
    assert permitted is bool(expected)
    assert fast is bool(expected)
    if expected is None:
        assert "no time zone" in summary


@pytest.mark.parametrize(
    ("left", "right", "context"),
    [
        ("elapsedTime", "P" + "9" * 5000 + "D", {}),  # more digits than Python converts
        ("meteredTime", "P1D", {"meteredTime": "PT" + "9" * 5000 + "S"}),
        ("meteredTime", "P1D", {"meteredTime": "P" + "9" * 50 + "Y"}),
    ],
    ids=["right", "left", "years"],
)
def test_a_huge_duration_is_unreadable_not_a_crash(left: str, right: str, context: dict[str, Any]) -> None:
    permitted, fast, _ = _decide(_offer(_c(left, "lteq", right)), context)
    assert (permitted, fast) == (False, False)


AGREEMENT = {
    "@id": "urn:agreement:rt2",
    "@type": "Agreement",
    "assigner": "did:web:provider.example",
    "assignee": ALICE,
    "target": DATASET,
    "permission": [{"action": "use", "constraint": [_c("elapsedTime", "lteq", "P30D")]}],
}


@pytest.mark.parametrize(
    ("timestamp", "context", "why"),
    [
        ("2030-01-01T00:00:00Z", {}, "in the future"),  # not yet in effect
        ("2025-01-01T00:00:00Z", {"elapsedTime": "-P1000D"}, "negative"),  # a request winding the clock back
    ],
)
def test_a_negative_elapsed_time_does_not_satisfy_a_deadline(
    timestamp: str, context: dict[str, Any], why: str
) -> None:
    permitted, fast, summary = _decide({**AGREEMENT, "timestamp": timestamp}, context)
    assert (permitted, fast) == (False, False)
    assert why in summary


def test_lint_warns_about_a_date_time_without_a_zone() -> None:
    codes = {f.code for f in lint(_offer(_c("dateTime", "lt", "2025-06-01T13:00:00")))}
    assert "date-time-without-zone" in codes
    assert "date-time-without-zone" not in {
        f.code for f in lint(_offer(_c("dateTime", "lt", "2025-06-01T13:00Z")))
    }
