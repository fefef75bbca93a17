"""eddsa-jcs-2022 Data Integrity proofs: the spec's test vector, tampering, proof sets and chains."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from connector.identity import KeyPair, ProofError, sign_document, verify_document
from connector.identity._multibase import multibase_decode, multibase_encode

# Inputs and expected output of the eddsa-jcs-2022 test vector in W3C vc-di-eddsa.
SPEC_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
SPEC_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
SPEC_METHOD = f"did:key:{SPEC_PUBLIC}#{SPEC_PUBLIC}"
SPEC_CREATED = datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)
SPEC_PROOF_VALUE = "z2HnFSSPPBzR36zdDgK8PbEHeXbR56YF24jwMpt3R1eHXQzJDMWS93FCzpvJpwTWd3GAVFuUfjoJdcnTMuVor51aX"


def spec_credential() -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"],
        "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
        "type": ["VerifiableCredential", "AlumniCredential"],
        "name": "Alumni Credential",
        "description": "A minimum viable example of an Alumni Credential.",
        "issuer": "https://vc.example/issuers/5678",
        "validFrom": "2023-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
    }


SPEC_KEY = KeyPair.from_secret_multibase(SPEC_SECRET)


def spec_key_for(method: str) -> Any:
    if method != SPEC_METHOD:
        raise ProofError("unknown_key", f"unknown {method}")
    return SPEC_KEY.public_key


def test_signing_the_spec_credential_reproduces_the_published_proof_value() -> None:
    signed = sign_document(spec_credential(), SPEC_KEY, SPEC_METHOD, created=SPEC_CREATED)
    proof = signed["proof"]
    assert proof["proofValue"] == SPEC_PROOF_VALUE
    assert proof["@context"] == spec_credential()["@context"]
    assert proof["cryptosuite"] == "eddsa-jcs-2022"
    assert proof["created"] == "2023-02-24T23:36:38Z"


def test_the_published_signed_credential_verifies() -> None:
    signed = spec_credential()
    signed["proof"] = {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": "2023-02-24T23:36:38Z",
        "verificationMethod": SPEC_METHOD,
        "proofPurpose": "assertionMethod",
        "@context": spec_credential()["@context"],
        "proofValue": SPEC_PROOF_VALUE,
    }
    assert verify_document(signed, spec_key_for) == [SPEC_METHOD]


def _signed() -> dict[str, Any]:
    return sign_document(spec_credential(), SPEC_KEY, SPEC_METHOD, created=SPEC_CREATED)


def _flip_last_signature_byte(doc: dict[str, Any]) -> None:
    raw = bytearray(multibase_decode(doc["proof"]["proofValue"]))
    raw[-1] ^= 1
    doc["proof"]["proofValue"] = multibase_encode(bytes(raw))


TAMPERINGS = {
    "claim changed": lambda doc: doc["credentialSubject"].update(alumniOf="Another School"),
    "claim added": lambda doc: doc.update(extra=True),
    "type changed": lambda doc: doc["type"].append("DegreeCredential"),
    "proof date changed": lambda doc: doc["proof"].update(created="2024-02-24T23:36:38Z"),
    "proof purpose changed": lambda doc: doc["proof"].update(proofPurpose="authentication"),
    "signature changed": _flip_last_signature_byte,
    "context changed in both places": lambda doc: (
        doc["@context"].append("https://w3id.org/sluis/context.jsonld"),
        doc["proof"]["@context"].append("https://w3id.org/sluis/context.jsonld"),
    ),
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_any_change_to_a_signed_document_is_detected(tamper: Any) -> None:
    doc = _signed()
    tamper(doc)
    with pytest.raises(ProofError) as caught:
        verify_document(doc, spec_key_for)
    assert caught.value.code == "bad_signature"


def test_a_proof_verified_with_another_key_fails() -> None:
    other = KeyPair.generate()
    with pytest.raises(ProofError) as caught:
        verify_document(_signed(), lambda _method: other.public_key)
    assert caught.value.code == "bad_signature"


def test_a_document_context_that_no_longer_starts_with_the_proof_context_is_refused() -> None:
    doc = _signed()
    doc["@context"] = doc["@context"][::-1]
    with pytest.raises(ProofError) as caught:
        verify_document(doc, spec_key_for)
    assert caught.value.code == "context_mismatch"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"cryptosuite": "eddsa-rdfc-2022"}, "unsupported_cryptosuite"),
        ({"type": "Ed25519Signature2020"}, "unsupported_proof"),
        ({"proofValue": "uAAAA"}, "bad_signature"),
        ({"created": "yesterday"}, "malformed_proof"),
    ],
)
def test_proofs_we_do_not_support_are_refused_not_skipped(change: dict[str, str], code: str) -> None:
    doc = _signed()
    doc["proof"].update(change)
    with pytest.raises(ProofError) as caught:
        verify_document(doc, spec_key_for)
    assert caught.value.code == code


def test_an_unsigned_document_is_not_verified() -> None:
    with pytest.raises(ProofError) as caught:
        verify_document(spec_credential(), spec_key_for)
    assert caught.value.code == "no_proof"


def test_a_proof_set_carries_independent_signatures_and_each_is_checked() -> None:
    second = KeyPair.generate()
    keys = {"did:web:one#key-1": SPEC_KEY.public_key, "did:web:two#key-1": second.public_key}
    doc = sign_document(spec_credential(), SPEC_KEY, "did:web:one#key-1")
    doc = sign_document(doc, second, "did:web:two#key-1")
    assert isinstance(doc["proof"], list)
    assert len(doc["proof"]) == 2
    assert verify_document(doc, keys.__getitem__) == ["did:web:one#key-1", "did:web:two#key-1"]
    # Either proof alone still verifies: in a set, proofs do not cover each other.
    alone = copy.deepcopy(doc)
    alone["proof"] = alone["proof"][1]
    assert verify_document(alone, keys.__getitem__) == ["did:web:two#key-1"]
    broken = copy.deepcopy(doc)
    broken["proof"][0]["proofValue"] = broken["proof"][1]["proofValue"]
    with pytest.raises(ProofError):
        verify_document(broken, keys.__getitem__)


def test_a_chained_counter_signature_breaks_when_the_first_proof_is_replaced() -> None:
    second = KeyPair.generate()
    keys = {"did:web:one#key-1": SPEC_KEY.public_key, "did:web:two#key-1": second.public_key}
    doc = sign_document(spec_credential(), SPEC_KEY, "did:web:one#key-1", proof_id="urn:uuid:first")
    doc = sign_document(doc, second, "did:web:two#key-1", previous_proof="urn:uuid:first")
    assert doc["proof"][1]["previousProof"] == "urn:uuid:first"
    assert len(verify_document(doc, keys.__getitem__)) == 2
    # A fresh, valid first signature (other date) is not the one the counter-signer committed to.
    resigned = sign_document(
        spec_credential(), SPEC_KEY, "did:web:one#key-1", created=SPEC_CREATED, proof_id="urn:uuid:first"
    )
    doc["proof"][0] = resigned["proof"]
    with pytest.raises(ProofError) as caught:
        verify_document(doc, keys.__getitem__)
    assert caught.value.code == "bad_signature"
    assert "did:web:two#key-1" in caught.value.message


def test_a_chain_to_a_missing_proof_is_refused() -> None:
    doc = sign_document(spec_credential(), SPEC_KEY, "did:web:one#key-1", proof_id="urn:uuid:first")
    doc = sign_document(doc, SPEC_KEY, "did:web:one#key-1", previous_proof="urn:uuid:first")
    doc["proof"][1]["previousProof"] = "urn:uuid:missing"
    with pytest.raises(ProofError) as caught:
        verify_document(doc, lambda _method: SPEC_KEY.public_key)
    assert caught.value.code == "missing_previous_proof"


def test_the_required_proof_purpose_is_enforced() -> None:
    with pytest.raises(ProofError) as caught:
        verify_document(_signed(), spec_key_for, proof_purpose="authentication")
    assert caught.value.code == "wrong_proof_purpose"


def test_numbers_outside_the_json_safe_range_cannot_be_signed() -> None:
    doc = spec_credential()
    doc["count"] = 2**60
    with pytest.raises(ProofError) as caught:
        sign_document(doc, SPEC_KEY, SPEC_METHOD)
    assert caught.value.code == "not_canonicalizable"


def test_a_proof_by_an_unknown_key_is_refused() -> None:
    with pytest.raises(ProofError) as caught:
        verify_document(_signed(), {}.__getitem__)
    assert caught.value.code == "unknown_key"
