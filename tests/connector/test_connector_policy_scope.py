"""Negotiation scope: only facts of a not-yet-existing job are deferred to the transfer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import policies
from connector.policy_gate import decide

RESEARCH = "https://w3id.org/sluis/purpose/scientific-research"
EU = "https://w3id.org/sluis/place/EU"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _offer(*constraints: dict[str, Any], prohibition: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    offer: dict[str, Any] = {
        "@id": "urn:p",
        "@type": "Offer",
        "permission": [{"action": "use", "constraint": list(constraints)}],
    }
    if prohibition:
        offer["prohibition"] = prohibition
    return offer


SITE_IN_EU = {"leftOperand": "sluis:computeSite", "operator": "isPartOf", "rightOperand": EU}
FOR_RESEARCH = {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH}


def _negotiate(offer: dict[str, Any], **context: object) -> Any:
    return decide(
        offer,
        assignee="did:web:c",
        target="urn:ds",
        context=context,
        now=NOW,
        scope=policies.Scope.NEGOTIATION,
    )


def test_a_missing_compute_site_is_left_to_the_transfer() -> None:
    verdict = _negotiate(_offer(SITE_IN_EU, FOR_RESEARCH), purpose=RESEARCH)
    assert verdict.permitted
    assert verdict.summary.startswith("permit for now")
    assert "computeSite" in verdict.summary


def test_without_deferral_the_same_request_is_denied() -> None:
    offer = _offer(SITE_IN_EU, FOR_RESEARCH)
    verdict = decide(
        offer,
        assignee="did:web:c",
        target="urn:ds",
        context={"purpose": RESEARCH},
        now=NOW,
        scope=policies.Scope.TRANSFER,
    )
    assert not verdict.permitted


def test_a_missing_purpose_is_never_deferred() -> None:
    assert not _negotiate(_offer(SITE_IN_EU, FOR_RESEARCH)).permitted


def test_a_declared_site_outside_the_region_is_denied_now() -> None:
    outside = "http://publications.europa.eu/resource/authority/country/NOR"
    verdict = _negotiate(_offer(SITE_IN_EU, FOR_RESEARCH), purpose=RESEARCH, **{"sluis:computeSite": outside})
    assert not verdict.permitted


def test_a_prohibition_that_may_hold_for_other_reasons_still_denies() -> None:
    maybe = [
        {
            "action": "use",
            "constraint": [
                {"leftOperand": "sluis:credential", "operator": "hasPart", "rightOperand": "Blocked"},
                SITE_IN_EU,
            ],
        }
    ]
    verdict = _negotiate(_offer(SITE_IN_EU, FOR_RESEARCH, prohibition=maybe), purpose=RESEARCH)
    assert not verdict.permitted


def test_unknown_terms_deny_even_when_deferring() -> None:
    odd = {"leftOperand": "https://example.org/unknownOperand", "operator": "eq", "rightOperand": "x"}
    assert not _negotiate(_offer(SITE_IN_EU, odd), purpose=RESEARCH).permitted


def test_a_party_collection_admits_the_members_its_verified_credentials_name() -> None:
    space = "urn:sluis:space:health"
    access = {
        "@id": "urn:access",
        "@type": "Set",
        "permission": [{"action": "use", "assignee": {"@type": "PartyCollection", "source": space}}],
    }

    def verdict(member_of: list[str]) -> bool:
        context = {"sluis:memberOf": member_of}
        return decide(
            access,
            assignee="did:web:c",
            target="urn:ds",
            context=context,
            now=NOW,
            scope=policies.Scope.ACCESS,
        ).permitted

    assert verdict([space])
    assert not verdict(["urn:sluis:space:other"])
    assert not verdict([])
