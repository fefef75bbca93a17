"""Self-issued DSP tokens: what a provider accepts and every way it refuses."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey

from connector.identity import (
    DidResolver,
    IdentityError,
    InMemoryReplayGuard,
    KeyPair,
    TrustedAuthority,
    issue_token,
    verify_token,
)
from tests.identity.conftest import NOW, DidHost, Party, membership_for, permit_for

AUDIENCE = "did:web:provider.example.eu"


@pytest.fixture(scope="module")
def resolver():
    with DidResolver() as shared:
        yield shared


def _verify(token: str, resolver: DidResolver, trusted: TrustedAuthority, **options):
    return verify_token(
        token, AUDIENCE, resolver, InMemoryReplayGuard(), trusted, options.pop("now", NOW), **options
    )


def test_a_member_with_a_permit_is_recognised_with_its_claims(
    consumer: Party, authority: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    credentials = [membership_for(authority, consumer.did), permit_for(authority, consumer.did)]
    token = issue_token(consumer.key, consumer.did, AUDIENCE, credentials, now=NOW)
    claims = _verify(token, resolver, trusted)
    assert claims.participant_id == consumer.did
    assert claims.credential_types == frozenset({"MembershipCredential", "EHDSDataPermit"})
    context = claims.policy_context()
    assert context["sluis:credential"] == ["EHDSDataPermit", "MembershipCredential"]
    assert context["recipient"] == consumer.did
    assert context["sluis:permitPurposes"] == ["https://w3id.org/sluis/purpose/scientific-research"]
    assert context["sluis:permitId"] == ["NL-HDAB-2026-0042"]


def test_the_token_carries_the_registered_claims_and_a_presentation(
    consumer: Party, authority: Party
) -> None:
    token = issue_token(
        consumer.key, consumer.did, AUDIENCE, [membership_for(authority, consumer.did)], now=NOW
    )
    decoded = jwt.decode(token, OKPKey.import_key(consumer.key.public_key), algorithms=["Ed25519"])
    assert decoded.header["alg"] == "Ed25519"
    assert decoded.header["kid"] == f"{consumer.did}#key-1"
    claims = decoded.claims
    assert claims["iss"] == claims["sub"] == consumer.did
    assert claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]
    assert claims["vp"]["holder"] == consumer.did
    assert claims["vp"]["verifiableCredential"][0]["type"][1] == "MembershipCredential"


def test_a_token_without_credentials_identifies_but_grants_no_credential(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    claims = _verify(issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW), resolver, trusted)
    assert claims.policy_context() == {"sluis:credential": [], "recipient": consumer.did}
    with pytest.raises(IdentityError) as caught:
        _verify(
            issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW),
            resolver,
            trusted,
            required_credentials=["MembershipCredential"],
        )
    assert caught.value.code == "missing_credential"


def test_older_peers_using_the_eddsa_algorithm_name_are_accepted(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    token = issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW, algorithm="EdDSA")
    assert _verify(token, resolver, trusted).participant_id == consumer.did


def test_a_replayed_token_is_refused(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    guard = InMemoryReplayGuard()
    token = issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW)
    verify_token(token, AUDIENCE, resolver, guard, trusted, NOW)
    with pytest.raises(IdentityError) as caught:
        verify_token(token, AUDIENCE, resolver, guard, trusted, NOW + timedelta(seconds=5))
    assert caught.value.code == "token_replayed"


def test_a_rejected_token_does_not_burn_its_id(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    guard = InMemoryReplayGuard()
    token = issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW)
    with pytest.raises(IdentityError):
        verify_token(token, "did:web:someone-else.example", resolver, guard, trusted, NOW)
    assert len(guard) == 0
    verify_token(token, AUDIENCE, resolver, guard, trusted, NOW)


@pytest.mark.parametrize(
    ("moment", "code"),
    [
        (NOW + timedelta(seconds=300 + 31), "token_expired"),
        (NOW - timedelta(seconds=31), "token_not_yet_valid"),
    ],
)
def test_tokens_outside_their_lifetime_are_refused(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver, moment, code: str
) -> None:
    token = issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW)
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted, now=moment)
    assert caught.value.code == code


def test_small_clock_skew_is_tolerated(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    token = issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW)
    assert _verify(token, resolver, trusted, now=NOW - timedelta(seconds=20))
    token = issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW)
    assert _verify(token, resolver, trusted, now=NOW + timedelta(seconds=310))


def test_a_token_for_another_audience_is_refused(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    token = issue_token(consumer.key, consumer.did, "did:web:other-provider.example", now=NOW)
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted)
    assert caught.value.code == "audience_mismatch"


def test_a_token_signed_with_a_key_not_in_the_did_document_is_refused(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    thief = KeyPair.generate()
    token = issue_token(thief, consumer.did, AUDIENCE, now=NOW)
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted)
    assert caught.value.code == "bad_signature"


def _with_payload(token: str, change) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    change(claims)
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def test_a_token_whose_claims_were_edited_is_refused(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    token = issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW)
    edited = _with_payload(token, lambda claims: claims.update(exp=claims["exp"] + 3600))
    with pytest.raises(IdentityError) as caught:
        _verify(edited, resolver, trusted)
    assert caught.value.code == "bad_signature"


def test_a_token_claiming_someone_elses_identity_is_refused(
    consumer: Party, provider: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    # Signed with the consumer's key but claiming to be the provider: the provider's DID document
    # holds another key, so the signature cannot verify.
    token = issue_token(consumer.key, provider.did, AUDIENCE, now=NOW)
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted)
    assert caught.value.code == "bad_signature"
    # And a kid pointing at the consumer's own key while iss says provider is refused outright.
    mismatched = issue_token(consumer.key, provider.did, AUDIENCE, now=NOW, key_id=f"{consumer.did}#key-1")
    with pytest.raises(IdentityError) as kid_caught:
        _verify(mismatched, resolver, trusted)
    assert kid_caught.value.code == "issuer_mismatch"


def test_credentials_from_an_untrusted_authority_are_refused(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    rogue = Party("did:web:rogue-authority.example", KeyPair.generate())
    token = issue_token(consumer.key, consumer.did, AUDIENCE, [permit_for(rogue, consumer.did)], now=NOW)
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted)
    assert caught.value.code == "untrusted_issuer"


def test_presenting_another_participants_credential_is_refused(
    consumer: Party, provider: Party, authority: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    stolen = permit_for(authority, provider.did)
    token = issue_token(consumer.key, consumer.did, AUDIENCE, [stolen], now=NOW)
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted)
    assert caught.value.code == "subject_mismatch"


def test_an_expired_credential_in_a_fresh_token_is_refused(
    consumer: Party, authority: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    old = permit_for(authority, consumer.did, now=NOW - timedelta(days=200))
    token = issue_token(consumer.key, consumer.did, AUDIENCE, [old], now=NOW)
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted)
    assert caught.value.code == "credential_expired"


def test_an_unsigned_token_is_refused(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    token = issue_token(consumer.key, consumer.did, AUDIENCE, now=NOW)
    _, payload, _ = token.split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"#key-1"}').rstrip(b"=").decode()
    with pytest.raises(IdentityError) as caught:
        _verify(f"{header}.{payload}.", resolver, trusted)
    assert caught.value.code == "unsupported_alg"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("", "token_missing"),
        ("a.b", "token_malformed"),
        ("!!!.???.###", "token_malformed"),
        ("x" * (65 * 1024), "token_too_large"),
    ],
)
def test_garbage_tokens_are_refused_with_a_code(
    token: str, code: str, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted)
    assert caught.value.code == code


def test_overlong_lifetimes_are_refused_on_both_sides(
    consumer: Party, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    with pytest.raises(IdentityError):
        issue_token(consumer.key, consumer.did, AUDIENCE, ttl_seconds=7200, now=NOW)
    token = issue_token(consumer.key, consumer.did, AUDIENCE, ttl_seconds=3600, now=NOW)
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted, max_lifetime_seconds=600)
    assert caught.value.code == "token_lifetime_too_long"


def test_a_participant_whose_did_cannot_be_resolved_is_refused(
    did_host: DidHost, trusted: TrustedAuthority, resolver: DidResolver
) -> None:
    ghost = KeyPair.generate()
    token = issue_token(ghost, did_host.did("ghost"), AUDIENCE, now=NOW)
    with pytest.raises(IdentityError) as caught:
        _verify(token, resolver, trusted)
    assert caught.value.code == "did_not_found"


def test_the_replay_guard_forgets_only_ids_that_can_no_longer_be_used() -> None:
    guard = InMemoryReplayGuard()
    assert guard.check_and_remember("a", NOW)
    assert not guard.check_and_remember("a", NOW)
    assert guard.check_and_remember("b", NOW + timedelta(hours=3))
    guard._forget_expired()
    assert len(guard) == 1
    assert not guard.check_and_remember("b", NOW + timedelta(hours=3))
