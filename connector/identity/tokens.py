"""Self-issued identity tokens for Dataspace Protocol requests.

A participant proves who it is on each DSP request with a short-lived JWT it signs itself
(``iss`` = ``sub`` = its did:web), addressed to one counter-party (``aud``), unique (``jti``), and
carrying its verifiable credentials in a ``vp`` claim. The receiver resolves the issuer's DID for
the key, checks the signature and the times, refuses a ``jti`` it has seen, and verifies each
credential against the pinned authority key. Only then do the claims reach a policy.

Algorithms: we sign with RFC 9864's ``Ed25519`` and accept the older ``EdDSA`` name too.
Both name the same Ed25519 signature over ``header.payload``, so the compact JWS is built and
checked here directly with ``cryptography`` (every DSP request pays for one of each; a general
JOSE library's key wrapping and registry lookups cost more than the signature itself).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from connector.identity._time import utc_now
from connector.identity.credentials import (
    CREDENTIALS_V2_CONTEXT,
    TrustedAuthority,
    credential_subject,
    credential_types,
    verify_credential,
)
from connector.identity.did import (
    PublicKeyResolver,
    parse_did_web,
    split_verification_method,
    verification_method_id,
)
from connector.identity.errors import IdentityError
from connector.identity.keys import KeyPair, verify_signature

ACCEPTED_ALGORITHMS = ("Ed25519", "EdDSA")
DEFAULT_ALGORITHM = "Ed25519"
DEFAULT_TTL_SECONDS = 300
# Clocks of two connectors drift; half a minute is tolerated either way.
CLOCK_SKEW_SECONDS = 30
# A token may live at most an hour: the replay guard must remember each jti that long.
MAX_TOKEN_LIFETIME_SECONDS = 3600
# A token with a handful of credentials is a few KB; 64 KiB bounds parsing and proof work.
MAX_TOKEN_BYTES = 64 * 1024
# A participant holds a membership credential and a few permits; more is a verification-cost attack.
MAX_CREDENTIALS_PER_TOKEN = 8
# A UUID is 36 characters; the replay store indexes this value, so it must stay short.
MAX_JTI_CHARS = 128
ED25519_SIGNATURE_BYTES = 64
_REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "iat", "exp", "nbf", "jti", "vp"})

# Credential claims that reach policies, under the names policies read them by.
_CONTEXT_KEYS = {
    "permitId": "sluis:permitId",
    "purposes": "sluis:permitPurposes",
    "datasets": "sluis:permitDatasets",
    "healthDataAccessBody": "sluis:healthDataAccessBody",
    "computeSites": "sluis:permitComputeSites",
    "memberOf": "sluis:memberOf",
    "role": "sluis:role",
}


class ReplayGuard(Protocol):
    """Remembers token ids until they expire; a second use of one is refused."""

    def check_and_remember(self, jti: str, expires_at: datetime) -> bool:
        """True if ``jti`` is new (and is now remembered), False if it was seen before."""
        ...


class InMemoryReplayGuard:
    """A replay guard for one process (tests, the CLI, a single connector on SQLite).

    It needs no clock: a token is only accepted while ``now < exp + skew`` and ``exp - iat`` is at
    most the maximum lifetime, so once a token expiring at E has been seen, ``now`` is at least
    ``E - lifetime - skew`` and every id expiring well before that can be forgotten safely.
    """

    # Beyond this many live ids something is flooding us; refusing is safer than forgetting.
    MAX_REMEMBERED = 1_000_000

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}
        self._latest_expiry: datetime | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_remember(self, jti: str, expires_at: datetime) -> bool:
        with self._lock:
            if jti in self._seen:
                return False
            if self._latest_expiry is None or expires_at > self._latest_expiry:
                self._latest_expiry = expires_at
            if len(self._seen) >= self.MAX_REMEMBERED:
                self._forget_expired()
                if len(self._seen) >= self.MAX_REMEMBERED:
                    raise IdentityError("replay_guard_full", "too many live token ids; try again later")
            self._seen[jti] = expires_at
            return True

    def _forget_expired(self) -> None:
        if self._latest_expiry is None:
            return
        horizon = self._latest_expiry - timedelta(seconds=MAX_TOKEN_LIFETIME_SECONDS + 2 * CLOCK_SKEW_SECONDS)
        self._seen = {jti: expiry for jti, expiry in self._seen.items() if expiry >= horizon}


@dataclass(frozen=True)
class VerifiedClaims:
    """Who sent a request, established by a verified token and verified credentials."""

    participant_id: str
    credentials: tuple[dict[str, Any], ...] = ()
    credential_types: frozenset[str] = frozenset()
    attributes: Mapping[str, object] = field(default_factory=dict)

    def policy_context(self) -> dict[str, object]:
        """The request context a policy evaluates: credentials held, recipient and their claims."""
        return {
            "sluis:credential": sorted(self.credential_types),
            "recipient": self.participant_id,
            **self.attributes,
        }


def issue_token(
    key: KeyPair,
    issuer_did: str,
    audience: str,
    credentials: Sequence[Mapping[str, Any]] = (),
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    now: datetime | None = None,
    *,
    key_id: str | None = None,
    algorithm: str = DEFAULT_ALGORITHM,
    extra_claims: Mapping[str, object] | None = None,
) -> str:
    """A compact JWS (JWT) signed by ``key`` asserting ``issuer_did`` to ``audience``."""
    if algorithm not in ACCEPTED_ALGORITHMS:
        raise IdentityError("unsupported_alg", f"algorithm must be one of {', '.join(ACCEPTED_ALGORITHMS)}")
    if not 0 < ttl_seconds <= MAX_TOKEN_LIFETIME_SECONDS:
        raise IdentityError("bad_ttl", f"token lifetime must be 1..{MAX_TOKEN_LIFETIME_SECONDS} seconds")
    if len(credentials) > MAX_CREDENTIALS_PER_TOKEN:
        raise IdentityError(
            "too_many_credentials", f"a token carries at most {MAX_CREDENTIALS_PER_TOKEN} credentials"
        )
    issued = int((now or utc_now()).timestamp())
    claims: dict[str, Any] = dict(extra_claims or {})
    clashing = _REGISTERED_CLAIMS.intersection(claims)
    if clashing:
        raise IdentityError("bad_claim", f"extra claims may not set {', '.join(sorted(clashing))}")
    claims.update(
        {
            "iss": issuer_did,
            "sub": issuer_did,
            "aud": audience,
            "iat": issued,
            "exp": issued + ttl_seconds,
            "jti": str(uuid.uuid4()),
        }
    )
    if credentials:
        claims["vp"] = {
            "@context": [CREDENTIALS_V2_CONTEXT],
            "type": ["VerifiablePresentation"],
            "holder": issuer_did,
            "verifiableCredential": [dict(credential) for credential in credentials],
        }
    header = {"alg": algorithm, "typ": "JWT", "kid": key_id or verification_method_id(issuer_did)}
    # A JWS over Ed25519 is two base64url JSON segments and one signature (RFC 7515, RFC 8037/9864);
    # written out directly, it costs a fraction of a general JOSE library's round trip.
    signing_input = _b64url_json(header) + b"." + _b64url_json(claims)
    return (signing_input + b"." + _b64url(key.sign(signing_input))).decode("ascii")


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64url_json(value: Mapping[str, Any]) -> bytes:
    return _b64url(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


_B64URL_SEGMENT = re.compile(rb"^[A-Za-z0-9_-]*$")


def _signature_of(segment: bytes) -> bytes:
    """The raw signature of a compact JWS: strict base64url, exactly 64 bytes for Ed25519."""
    if not _B64URL_SEGMENT.match(segment) or len(segment) % 4 == 1:
        raise IdentityError("token_malformed", "the token is not a valid compact JWS")
    signature = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise IdentityError("token_malformed", "the token signature is not a 64-byte Ed25519 signature")
    return signature


# A lone UTF-16 surrogate (JSON can escape one: "\ud800") cannot be encoded by any database
# driver, and PostgreSQL text cannot hold U+0000; token ids and DIDs are stored (replay guards,
# processes), so a token holding either anywhere is malformed, before anything is stored.
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def holds_unstorable_text(value: object) -> bool:
    """Whether a decoded JSON value holds a lone surrogate or U+0000 in any string or key."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            if any(_UNSTORABLE.search(key) for key in item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _segment_json(segment: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IdentityError("token_malformed", f"the token {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise IdentityError("token_malformed", f"the token {what} is not a JSON object")
    if holds_unstorable_text(value):
        raise IdentityError(
            "token_malformed", f"the token {what} holds a lone UTF-16 surrogate or U+0000, which no token may"
        )
    return value


def _int_claim(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise IdentityError("token_malformed", f"the token claim {name!r} must be an integer (seconds)")
    return value


def _check_times(claims: Mapping[str, Any], now: datetime, skew: int, max_lifetime: int) -> datetime:
    issued_at = _int_claim(claims, "iat")
    expires = _int_claim(claims, "exp")
    moment = now.timestamp()
    if expires <= issued_at:
        raise IdentityError("token_malformed", "the token expires before it was issued")
    if expires - issued_at > max_lifetime:
        raise IdentityError("token_lifetime_too_long", f"tokens may live at most {max_lifetime} seconds")
    if moment >= expires + skew:
        raise IdentityError("token_expired", "the token has expired")
    if issued_at > moment + skew:
        raise IdentityError(
            "token_not_yet_valid", "the token was issued in the future (clock skew too large)"
        )
    if "nbf" in claims and _int_claim(claims, "nbf") > moment + skew:
        raise IdentityError("token_not_yet_valid", "the token is not valid yet (nbf)")
    return datetime.fromtimestamp(expires + skew, UTC)


def _credentials_in(claims: Mapping[str, Any], issuer: str) -> list[Mapping[str, Any]]:
    presentation = claims.get("vp")
    if presentation is None:
        return []
    if not isinstance(presentation, dict):
        raise IdentityError("token_malformed", "the vp claim must be a verifiable presentation object")
    holder = presentation.get("holder", issuer)
    if holder != issuer:
        raise IdentityError(
            "subject_mismatch", f"the presentation's holder {holder!r} is not the token issuer"
        )
    listed = presentation.get("verifiableCredential", [])
    listed = listed if isinstance(listed, list) else [listed]
    if len(listed) > MAX_CREDENTIALS_PER_TOKEN:
        raise IdentityError(
            "too_many_credentials", f"a token carries at most {MAX_CREDENTIALS_PER_TOKEN} credentials"
        )
    return listed


def _attributes(credentials: Sequence[Mapping[str, Any]]) -> dict[str, object]:
    collected: dict[str, list[str]] = {}
    for credential in credentials:
        for claim, value in credential_subject(credential).items():
            key = _CONTEXT_KEYS.get(claim)
            if key is None:
                continue
            values = value if isinstance(value, list) else [value]
            bucket = collected.setdefault(key, [])
            bucket.extend(item for item in values if isinstance(item, str) and item not in bucket)
    return {key: sorted(values) for key, values in collected.items()}


def verify_token(
    token: str,
    audience: str,
    resolver: PublicKeyResolver,
    replay_guard: ReplayGuard,
    trusted: TrustedAuthority | Sequence[TrustedAuthority],
    now: datetime | None = None,
    *,
    required_credentials: Collection[str] = (),
    clock_skew_seconds: int = CLOCK_SKEW_SECONDS,
    max_lifetime_seconds: int = MAX_TOKEN_LIFETIME_SECONDS,
) -> VerifiedClaims:
    """Verify a self-issued token end to end; raise ``IdentityError`` with a precise code if not."""
    moment = now or utc_now()
    if not isinstance(token, str) or not token:
        raise IdentityError("token_missing", "no token was presented")
    if len(token) > MAX_TOKEN_BYTES:
        raise IdentityError("token_too_large", f"the token is larger than {MAX_TOKEN_BYTES} bytes")
    raw = token.encode("ascii", errors="replace")
    parts = raw.split(b".")
    if len(parts) != 3:
        raise IdentityError("token_malformed", "a token is three base64url parts separated by dots")
    header = _segment_json(parts[0], "header")
    claims = _segment_json(parts[1], "payload")
    algorithm = header.get("alg")
    if algorithm not in ACCEPTED_ALGORITHMS:
        raise IdentityError("unsupported_alg", f"token algorithm {algorithm!r} is not accepted (use Ed25519)")
    if "crit" in header:
        raise IdentityError("token_malformed", "critical header parameters are not supported")
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        raise IdentityError("token_malformed", "the token has no issuer (iss)")
    parse_did_web(issuer)
    if claims.get("sub") != issuer:
        raise IdentityError("issuer_mismatch", "a self-issued token must have sub equal to iss")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise IdentityError("token_malformed", "the token header names no key (kid)")
    kid = issuer + kid if kid.startswith("#") else kid
    kid_did, _ = split_verification_method(kid)
    if kid_did != issuer:
        raise IdentityError(
            "issuer_mismatch", f"the token is signed with a key of {kid_did}, not of its issuer"
        )

    public_key = resolver.public_key(kid, "authentication")
    if not (_B64URL_SEGMENT.match(parts[0]) and _B64URL_SEGMENT.match(parts[1])):
        raise IdentityError("token_malformed", "the token is not a valid compact JWS")
    signature = _signature_of(parts[2])
    if not verify_signature(public_key, signature, parts[0] + b"." + parts[1]):
        raise IdentityError("bad_signature", f"the token signature does not verify with {kid}")

    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise IdentityError("audience_mismatch", f"the token is addressed to {aud!r}, not to {audience!r}")
    remember_until = _check_times(claims, moment, clock_skew_seconds, max_lifetime_seconds)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
        raise IdentityError("token_malformed", f"the token needs a jti of 1..{MAX_JTI_CHARS} characters")

    credentials: list[dict[str, Any]] = []
    for presented in _credentials_in(claims, issuer):
        credential = verify_credential(presented, trusted, moment)
        subject = credential_subject(credential)["id"]
        if subject != issuer:
            raise IdentityError(
                "subject_mismatch",
                f"a presented credential is about {subject}, not about the token issuer {issuer}",
            )
        credentials.append(credential)
    types = frozenset().union(*(credential_types(credential) for credential in credentials))
    missing = sorted(set(required_credentials) - types)
    if missing:
        raise IdentityError("missing_credential", f"the token carries no {', '.join(missing)}")

    if not replay_guard.check_and_remember(jti, remember_until):
        raise IdentityError("token_replayed", f"the token id {jti} was already used")
    return VerifiedClaims(
        participant_id=issuer,
        credentials=tuple(credentials),
        credential_types=types,
        attributes=_attributes(credentials),
    )
