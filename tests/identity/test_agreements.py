"""Signed agreements: provider signs, consumer counter-signs, anyone verifies the bundle offline."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from connector.identity import (
    IdentityError,
    KeyPair,
    StaticDidResolver,
    did_document,
    make_agreement_bundle,
    sign_agreement,
    verify_agreement,
)
from connector.identity._multibase import multibase_decode, multibase_encode

PROVIDER = "did:web:hospital.example.nl"
CONSUMER = "did:web:ai-factory.example.eu"
PROVIDER_KEY = KeyPair.generate()
CONSUMER_KEY = KeyPair.generate()


def agreement() -> dict[str, Any]:
    """A DSP 2025-1 Agreement in the compact form DSP messages carry."""
    return {
        "@id": "urn:uuid:0b5d4a3e-1f2c-4c6e-9a8b-7d6e5f4a3b2c",
        "@type": "Agreement",
        "target": "urn:uuid:7f4c1c1e-0001-4000-8000-000000000001",
        "assigner": PROVIDER,
        "assignee": CONSUMER,
        "timestamp": "2026-06-01T12:00:00Z",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "purpose",
                        "operator": "isA",
                        "rightOperand": "https://w3id.org/sluis/purpose/scientific-research",
                    },
                    {"leftOperand": "count", "operator": "lteq", "rightOperand": 100},
                ],
            }
        ],
    }


def signed_bundle() -> dict[str, Any]:
    by_provider = sign_agreement(agreement(), PROVIDER_KEY, f"{PROVIDER}#key-1")
    countersigned = sign_agreement(by_provider, CONSUMER_KEY, f"{CONSUMER}#key-1")
    return make_agreement_bundle(
        countersigned, [did_document(PROVIDER, PROVIDER_KEY), did_document(CONSUMER, CONSUMER_KEY)]
    )


def test_a_countersigned_agreement_bundle_verifies_offline() -> None:
    result = verify_agreement(signed_bundle())
    assert result.valid, result.reason
    assert result.assigner == PROVIDER
    assert result.assignee == CONSUMER
    assert result.signed_by == (f"{PROVIDER}#key-1", f"{CONSUMER}#key-1")
    assert "provider" in result.reason
    assert "consumer" in result.reason


def test_the_consumer_checks_the_providers_signature_before_countersigning() -> None:
    by_provider = sign_agreement(agreement(), PROVIDER_KEY, f"{PROVIDER}#key-1")
    resolver = StaticDidResolver([did_document(PROVIDER, PROVIDER_KEY), did_document(CONSUMER, CONSUMER_KEY)])
    assert verify_agreement(by_provider, resolver, require_countersignature=False).valid
    missing = verify_agreement(by_provider, resolver)
    assert not missing.valid
    assert missing.code == "wrong_signature_count"


def _flip(proof: dict[str, Any]) -> None:
    raw = bytearray(multibase_decode(proof["proofValue"]))
    raw[0] ^= 1
    proof["proofValue"] = multibase_encode(bytes(raw))


CHANGES = {
    "purpose widened": lambda b: b["agreement"]["permission"][0]["constraint"][0].update(
        rightOperand="https://w3id.org/sluis/purpose/secondary-use"
    ),
    "read limit raised": lambda b: b["agreement"]["permission"][0]["constraint"][1].update(rightOperand=1000),
    "constraint dropped": lambda b: b["agreement"]["permission"][0]["constraint"].pop(),
    "target swapped": lambda b: b["agreement"].update(target="urn:uuid:another-dataset"),
    "timestamp moved": lambda b: b["agreement"].update(timestamp="2027-06-01T12:00:00Z"),
    "rule added": lambda b: b["agreement"].update(prohibition=[{"action": "distribute"}]),
    "provider signature altered": lambda b: _flip(b["agreement"]["proof"][0]),
    "consumer signature altered": lambda b: _flip(b["agreement"]["proof"][1]),
    "consumer signature removed": lambda b: b["agreement"].update(proof=b["agreement"]["proof"][:1]),
    "signatures swapped": lambda b: b["agreement"].update(proof=b["agreement"]["proof"][::-1]),
    "chain cut": lambda b: b["agreement"]["proof"][1].pop("previousProof"),
    "provider key replaced in bundle": lambda b: b["didDocuments"].__setitem__(
        0, did_document(PROVIDER, KeyPair.generate())
    ),
    "provider DID document dropped": lambda b: b["didDocuments"].pop(0),
    "DID document of a stranger": lambda b: b["didDocuments"].__setitem__(
        1, did_document("did:web:stranger.example", CONSUMER_KEY)
    ),
    "key no longer an assertion method": lambda b: b["didDocuments"][0].update(assertionMethod=[]),
    "assignee changed": lambda b: b["agreement"].update(assignee="did:web:stranger.example"),
    "not an agreement": lambda b: b["agreement"].update({"@type": "Offer"}),
    "unknown bundle version": lambda b: b.update(version=99),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_any_change_to_a_signed_bundle_makes_it_invalid(change: Any) -> None:
    bundle = copy.deepcopy(signed_bundle())
    change(bundle)
    result = verify_agreement(bundle)
    assert not result.valid
    assert result.code
    assert result.reason


def test_a_consumer_signature_from_the_wrong_party_is_refused_when_signing() -> None:
    with pytest.raises(IdentityError) as first:
        sign_agreement(agreement(), CONSUMER_KEY, f"{CONSUMER}#key-1")
    assert first.value.code == "wrong_signer"
    by_provider = sign_agreement(agreement(), PROVIDER_KEY, f"{PROVIDER}#key-1")
    with pytest.raises(IdentityError) as second:
        sign_agreement(by_provider, PROVIDER_KEY, f"{PROVIDER}#key-1")
    assert second.value.code == "wrong_signer"
    both = sign_agreement(by_provider, CONSUMER_KEY, f"{CONSUMER}#key-1")
    with pytest.raises(IdentityError) as third:
        sign_agreement(both, CONSUMER_KEY, f"{CONSUMER}#key-1")
    assert third.value.code == "already_countersigned"


def test_someone_signing_in_the_consumers_name_with_their_own_key_is_caught() -> None:
    by_provider = sign_agreement(agreement(), PROVIDER_KEY, f"{PROVIDER}#key-1")
    forged = sign_agreement(by_provider, KeyPair.generate(), f"{CONSUMER}#key-1")
    bundle = make_agreement_bundle(
        forged, [did_document(PROVIDER, PROVIDER_KEY), did_document(CONSUMER, CONSUMER_KEY)]
    )
    result = verify_agreement(bundle)
    assert not result.valid
    assert result.code == "bad_signature"


def test_a_bare_agreement_without_did_documents_is_not_claimed_valid() -> None:
    result = verify_agreement(signed_bundle()["agreement"])
    assert not result.valid
    assert result.code == "no_did_documents"


def test_a_bundle_needs_both_parties_did_documents() -> None:
    with pytest.raises(IdentityError) as caught:
        make_agreement_bundle(signed_bundle()["agreement"], [did_document(PROVIDER, PROVIDER_KEY)])
    assert caught.value.code == "missing_did_document"
