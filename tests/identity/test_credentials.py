"""Credentials issued by the governance authority, verified against its pinned key (no network)."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from connector.identity import (
    IdentityError,
    KeyPair,
    ProofError,
    TrustedAuthority,
    did_document,
    issue_credential,
    verify_credential,
)
from tests.identity.conftest import NOW, Party, permit_for
from vocab import jsonld


def test_a_permit_verifies_against_the_pinned_authority_key(
    authority: Party, trusted: TrustedAuthority
) -> None:
    permit = permit_for(authority, "did:web:hospital.example.nl")
    assert permit["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert permit["type"] == ["VerifiableCredential", "EHDSDataPermit"]
    assert permit["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert verify_credential(permit, trusted, NOW) == permit


def test_verifying_needs_no_network(authority: Party) -> None:
    # The authority's DID host does not exist; only the pinned key is used.
    offline = TrustedAuthority(authority.did, authority.key.public_multibase)
    assert verify_credential(permit_for(authority, "did:web:x.example"), offline, NOW)


def test_a_changed_claim_breaks_the_credential(authority: Party, trusted: TrustedAuthority) -> None:
    permit = permit_for(authority, "did:web:hospital.example.nl")
    permit["credentialSubject"]["purposes"].append("https://w3id.org/sluis/purpose/marketing")
    with pytest.raises(ProofError) as caught:
        verify_credential(permit, trusted, NOW)
    assert caught.value.code == "bad_signature"


def test_credentials_from_another_authority_are_untrusted(trusted: TrustedAuthority) -> None:
    rogue = Party("did:web:rogue.example", KeyPair.generate())
    with pytest.raises(ProofError) as caught:
        verify_credential(permit_for(rogue, "did:web:hospital.example.nl"), trusted, NOW)
    assert caught.value.code == "untrusted_issuer"


def test_a_credential_claiming_our_authority_but_signed_by_another_key_fails(authority: Party) -> None:
    forger = Party(authority.did, KeyPair.generate())
    forged = permit_for(forger, "did:web:hospital.example.nl")
    with pytest.raises(ProofError) as caught:
        verify_credential(forged, TrustedAuthority(authority.did, authority.key.public_multibase), NOW)
    assert caught.value.code == "bad_signature"


def test_a_proof_by_someone_other_than_the_issuer_is_refused(
    authority: Party, trusted: TrustedAuthority
) -> None:
    permit = permit_for(authority, "did:web:hospital.example.nl")
    permit["proof"]["verificationMethod"] = "did:web:rogue.example#key-1"
    with pytest.raises(ProofError) as caught:
        verify_credential(permit, trusted, NOW)
    assert caught.value.code == "untrusted_issuer"


@pytest.mark.parametrize(
    ("moment", "code"),
    [
        (NOW + timedelta(days=91), "credential_expired"),
        (NOW - timedelta(days=2), "credential_not_yet_valid"),
    ],
)
def test_credentials_are_only_valid_in_their_period(
    authority: Party, trusted: TrustedAuthority, moment, code: str
) -> None:
    with pytest.raises(ProofError) as caught:
        verify_credential(permit_for(authority, "did:web:h.example"), trusted, moment)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (
            lambda vc: vc.update({"@context": ["https://www.w3.org/2018/credentials/v1"]}),
            "malformed_credential",
        ),
        (lambda vc: vc.update(type=["EHDSDataPermit"]), "malformed_credential"),
        (lambda vc: vc.pop("credentialSubject"), "malformed_credential"),
        (lambda vc: vc.update(validFrom="soon"), "malformed_credential"),
        (lambda vc: vc.pop("proof"), "no_proof"),
    ],
)
def test_malformed_credentials_are_refused(
    authority: Party, trusted: TrustedAuthority, mutate, code: str
) -> None:
    permit = copy.deepcopy(permit_for(authority, "did:web:h.example"))
    mutate(permit)
    with pytest.raises(ProofError) as caught:
        verify_credential(permit, trusted, NOW)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("credential_type", "claims", "code"),
    [
        ("EHDSDataPermit", {"permitId": "P-1"}, "missing_claim"),
        (
            "EHDSDataPermit",
            {"permitId": "P-1", "purposes": "research", "datasets": ["d"], "healthDataAccessBody": "h"},
            "bad_claim",
        ),
        ("MembershipCredential", {"favouriteColour": "blue"}, "bad_claim"),
        ("DriversLicence", {}, "unknown_credential_type"),
    ],
)
def test_the_authority_cannot_issue_malformed_claims(
    authority: Party, credential_type: str, claims: dict[str, object], code: str
) -> None:
    with pytest.raises(IdentityError) as caught:
        issue_credential(
            authority.key,
            authority.did,
            "did:web:h.example",
            credential_type,
            claims,
            NOW,
            NOW + timedelta(days=1),
        )
    assert caught.value.code == code


def test_credentials_and_did_documents_name_only_contexts_we_ship(authority: Party) -> None:
    """JSON-LD processing of what we issue stays offline: every @context is in vocab/contexts."""
    permit = permit_for(authority, "did:web:h.example")
    expanded = jsonld.expand(permit, base="urn:sluis:test:")
    assert expanded[0]["@id"] == permit["id"]
    assert "https://w3id.org/security#proof" in expanded[0]
    document = jsonld.expand(did_document(authority.did, authority.key), base="urn:sluis:test:")
    assert document[0]["@id"] == authority.did
