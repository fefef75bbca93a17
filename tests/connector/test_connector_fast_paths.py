"""What the control plane's fast paths skip must never change what it accepts.

Tokens are signed and checked without a JOSE library, credentials whose proofs verified are
remembered by content, parsed policies are cached by content: each test here shows that a
changed byte still fails exactly as before, and that cached results cannot be altered by callers.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import policies
from connector.control.negotiation import proof_by
from connector.identity import (
    IdentityError,
    InMemoryReplayGuard,
    KeyPair,
    StaticDidResolver,
    TrustedAuthority,
    did_document,
    did_web_for,
    issue_credential,
    issue_token,
    verify_token,
)
from connector.policy_gate import decide, offer_for_catalog

TRANSFER = policies.Scope.TRANSFER
RESEARCH = "https://w3id.org/sluis/purpose/scientific-research"
MARKETING = "https://w3id.org/sluis/purpose/marketing"


class World:
    def __init__(self) -> None:
        self.authority = KeyPair.generate()
        self.authority_did = did_web_for("127.0.0.1", 8)
        self.trusted = TrustedAuthority(self.authority_did, self.authority.public_multibase)
        self.key = KeyPair.generate()
        self.did = did_web_for("127.0.0.1", 9)
        self.resolver = StaticDidResolver([did_document(self.did, self.key)])
        now = datetime.now(UTC)
        self.credential = issue_credential(
            self.authority,
            self.authority_did,
            self.did,
            "MembershipCredential",
            {"memberOf": "fast-path"},
            now - timedelta(minutes=1),
            now + timedelta(days=1),
        )

    def token(self, credential: dict[str, Any] | None = None, **kwargs: Any) -> str:
        return issue_token(self.key, self.did, "did:web:aud", [credential or self.credential], **kwargs)

    def verify(self, token: str, now: datetime | None = None) -> Any:
        return verify_token(token, "did:web:aud", self.resolver, InMemoryReplayGuard(), self.trusted, now)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_a_token_verifies_and_carries_its_verified_credential(world: World) -> None:
    claims = world.verify(world.token())
    assert claims.participant_id == world.did
    assert "MembershipCredential" in claims.credential_types
    # the older algorithm name is accepted for older peers
    assert world.verify(world.token(algorithm="EdDSA")).participant_id == world.did


def test_a_token_with_changed_claims_or_a_mangled_signature_is_refused(world: World) -> None:
    header, payload, signature = _segments(world.token())
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["aud"] = "did:web:aud"
    claims["exp"] += 60  # a longer life, same signature
    with pytest.raises(IdentityError) as error:
        world.verify(f"{header}.{_b64(claims)}.{signature}")
    assert error.value.code == "bad_signature"
    for broken in (signature[:-2], signature + "AA", signature.replace(signature[3], "*", 1), ""):
        with pytest.raises(IdentityError) as error:
            world.verify(f"{header}.{payload}.{broken}")
        assert error.value.code in ("token_malformed", "bad_signature")


def test_a_token_signed_by_another_key_is_refused(world: World) -> None:
    stranger = KeyPair.generate()
    forged = issue_token(stranger, world.did, "did:web:aud", [world.credential])
    with pytest.raises(IdentityError) as error:
        world.verify(forged)
    assert error.value.code == "bad_signature"


def test_a_remembered_credential_changed_by_one_claim_is_checked_again_and_refused(world: World) -> None:
    world.verify(world.token())  # its proof verified once and is remembered
    altered = json.loads(json.dumps(world.credential))
    altered["credentialSubject"]["memberOf"] = "somewhere-else"
    with pytest.raises(IdentityError) as error:
        world.verify(world.token(altered))
    assert error.value.code == "bad_signature"


def test_a_remembered_credential_still_expires(world: World) -> None:
    world.verify(world.token())
    later = datetime.now(UTC) + timedelta(days=2)
    token = world.token(now=later)
    with pytest.raises(IdentityError) as error:
        world.verify(token, now=later)
    assert error.value.code == "credential_expired"


def test_a_cached_catalog_offer_cannot_be_changed_by_its_caller() -> None:
    policy = {"@type": "Set", "uid": "urn:p", "permission": [{"action": "use"}]}
    first = offer_for_catalog(policy, "urn:offer:1")
    first["permission"].append({"action": "distribute"})
    second = offer_for_catalog(policy, "urn:offer:1")
    assert len(second["permission"]) == 1
    assert offer_for_catalog(policy, "urn:offer:2")["@id"] == "urn:offer:2"


def test_a_cached_policy_still_decides_each_request_on_its_own() -> None:
    policy = {
        "@id": "urn:p",
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [{"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH}],
            }
        ],
    }
    now = datetime.now(UTC)
    for purpose, permitted in ((RESEARCH, True), (MARKETING, False), (RESEARCH, True)):
        verdict = decide(
            policy,
            assignee="did:web:c",
            target="urn:ds",
            context={"purpose": purpose},
            now=now,
            scope=TRANSFER,
        )
        assert verdict.permitted is permitted
    denied = decide(
        policy, assignee="did:web:c", target="urn:ds", context={"purpose": MARKETING}, now=now, scope=TRANSFER
    )
    assert denied.summary
    assert denied.explanation is not None


def test_our_proof_is_found_by_the_exact_did_not_by_a_prefix() -> None:
    ours = "did:web:127.0.0.1%3A9191"
    longer = "did:web:127.0.0.1%3A91910"
    document = {
        "proof": [
            {"verificationMethod": f"{longer}#key-1", "proofValue": "z-theirs"},
            {"verificationMethod": f"{ours}#key-1", "proofValue": "z-ours"},
        ]
    }
    assert proof_by(document, ours)["proofValue"] == "z-ours"
    assert proof_by(document, longer)["proofValue"] == "z-theirs"
    only_longer = {"proof": document["proof"][:1]}
    with pytest.raises(IdentityError):
        proof_by(only_longer, ours)
