"""The linter finds what would surprise a provider before a consumer does."""

from __future__ import annotations

from typing import Any

from policies import lint, parse_policy, templates
from tests.policies.policy_builders import constraint


def _codes(document: Any) -> set[str]:
    return {finding.code for finding in lint(document)}


def test_templates_lint_clean() -> None:
    for name, build in templates.TEMPLATES.items():
        args: tuple[Any, ...] = ()
        if name == "time-boxed":
            from datetime import UTC, datetime

            args = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
        elif name in ("max-reads", "aggregate-only", "delete-after"):
            args = (5,)
        findings = [f for f in lint(build(f"urn:template:{name}", *args)) if f.severity != "info"]
        assert findings == [], name


def test_unknown_terms_are_errors() -> None:
    codes = _codes(
        {
            "@id": "urn:p",
            "@type": "Offer",
            "profile": "https://example.org/p",
            "permission": [
                {
                    "action": "teleport",
                    "constraint": [constraint("partner", "eq", "x"), constraint("purpose", "likes", "y")],
                }
            ],
        }
    )
    assert {"unknown-profile", "unknown-action", "unknown-left-operand", "unknown-operator"} <= codes


def test_constraints_that_can_never_hold() -> None:
    codes = _codes(
        {
            "@id": "urn:p",
            "@type": "Offer",
            "permission": [
                {
                    "action": "use",
                    "constraint": [
                        constraint("dateTime", "lt", {"@value": "2025-01-01", "@type": "xsd:date"}),
                        constraint("dateTime", "gt", {"@value": "2026-01-01", "@type": "xsd:date"}),
                    ],
                }
            ],
        }
    )
    assert "never-holds" in codes
    assert "never-holds" not in _codes(
        {
            "@id": "urn:p",
            "@type": "Offer",
            "permission": [
                {
                    "action": "use",
                    "constraint": [constraint("count", "gteq", 1), constraint("count", "lteq", 1)],
                }
            ],
        }
    )


def test_conflicts_without_a_strategy() -> None:
    document = {
        "@id": "urn:p",
        "@type": "Offer",
        "permission": [{"action": "use"}],
        "prohibition": [{"action": "read"}],
    }
    assert "conflict-without-strategy" in _codes(document)
    assert "conflict-without-strategy" not in _codes({**document, "conflict": "prohibit"})


def test_offers_dsp_would_reject() -> None:
    codes = _codes({"@id": "urn:p", "@type": "Offer", "target": "urn:ds", "permission": [{"action": "use"}]})
    assert "dsp-offer-target" in codes
    assert "dsp-set-not-offer" in _codes({"@id": "urn:p", "@type": "Set", "permission": [{"action": "use"}]})


def test_agreement_without_parties_is_a_finding_not_a_crash() -> None:
    findings = lint({"@id": "urn:p", "@type": "Agreement", "permission": [{"action": "use"}]})
    assert [f.code for f in findings] == ["agreement-without-assigner"]
    assert findings[0].severity == "error"


def test_row_filters_in_prohibitions_and_disjunctions() -> None:
    column = "https://w3id.org/sluis/column/country"
    codes = _codes(
        {
            "@id": "urn:p",
            "@type": "Offer",
            "conflict": "prohibit",
            "permission": [
                {
                    "action": "use",
                    "constraint": [
                        {"or": [constraint(column, "eq", "NL"), constraint("language", "eq", "nl")]}
                    ],
                }
            ],
            "prohibition": [{"action": "use", "constraint": [constraint(column, "eq", "BE")]}],
        }
    )
    assert {"row-filter-in-prohibition", "row-filter-in-disjunction"} <= codes


def test_unknown_purpose_iri_in_our_namespace() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "@type": "Offer",
            "permission": [
                {
                    "action": "use",
                    "constraint": [constraint("purpose", "isA", "https://w3id.org/sluis/purpose/astrology")],
                }
            ],
        }
    )
    assert "unknown-concept" in {f.code for f in lint(policy)}
