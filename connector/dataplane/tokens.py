"""Job-scoped access tokens, bound to the consumer's key, and their proofs of possession.

Choice (documented in docs/dataplane.md): the access token is an EdDSA JWT the *provider*
signs, carrying agreement, transfer, job id, consumer DID, purpose and compute site, valid for
at most ten minutes, and bound to the consumer's participant key with ``cnf.jkt`` (RFC 7638
thumbprint of the Ed25519 key in the consumer's DID document). Every request must carry,
beside the token, a fresh proof JWT signed by that key (RFC 9449 DPoP shape: ``typ``
``dpop+jwt``, the public ``jwk`` in the header, ``htm``, ``htu``, ``iat``, ``jti`` and ``ath``
= hash of the token). A token copied out of a log or a proxy is useless without the key, and
each proof is single-use. Algorithms: we sign with RFC 9864's ``Ed25519`` and accept ``EdDSA``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import OKPKey

from connector.dataplane.contract_state import TransferView
from connector.dataplane.errors import InvalidToken
from connector.identity import KeyPair
from connector.identity.keys import public_key_to_jwk
from connector.identity.tokens import holds_unstorable_text

warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT media type, not a secret
PROOF_TYPE = "dpop+jwt"
SIGNING_ALGORITHM = "Ed25519"
ACCEPTED_ALGORITHMS = ("Ed25519", "EdDSA")
# The issue caps a job-scoped token at ten minutes; refresh gives a new one.
MAX_ACCESS_TOKEN_SECONDS = 600
DEFAULT_ACCESS_TOKEN_SECONDS = 300
# A proof is made just before its request; a minute covers clock drift and a slow hop.
PROOF_MAX_AGE_SECONDS = 60
# Clocks of provider and job drift; this much skew is tolerated on iat/exp.
CLOCK_SKEW_SECONDS = 30
# An expired token may still be exchanged (once) this long after expiry, with a valid proof,
# so a job that paused keeps its transfer; state and policy are re-checked at refresh.
REFRESH_GRACE_SECONDS = 3600
# A token is under 2 KB; this bounds decoding work on hostile input.
MAX_TOKEN_BYTES = 8 * 1024
MAX_JTI_CHARS = 128


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwk_thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of an Ed25519 public key (the ``cnf.jkt`` value)."""
    jwk = public_key_to_jwk(public_key)
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def token_hash(token: str) -> str:
    """The ``ath`` claim of a proof: base64url(sha256(access token))."""
    return _b64url(hashlib.sha256(token.encode("ascii")).digest())


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    jti: str
    issuer: str
    transfer_id: str
    agreement_id: str
    consumer_id: str
    job_id: str | None
    purpose: str | None
    compute_site: str | None
    jkt: str
    issued_at: int
    expires_at: int

    def expires_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


def issue_access_token(
    key: KeyPair, issuer: str, audience: str, transfer: TransferView, jkt: str, now: datetime,
    ttl_seconds: int = DEFAULT_ACCESS_TOKEN_SECONDS,
) -> tuple[str, AccessClaims]:
    """Sign a token for one transfer and job, bound to the consumer key thumbprint ``jkt``."""
    if not 0 < ttl_seconds <= MAX_ACCESS_TOKEN_SECONDS:
        raise ValueError(f"access tokens live 1..{MAX_ACCESS_TOKEN_SECONDS} seconds")
    issued = int(now.timestamp())
    claims = AccessClaims(
        jti=str(uuid.uuid4()), issuer=issuer, transfer_id=transfer.id, agreement_id=transfer.agreement_id,
        consumer_id=transfer.consumer_id, job_id=transfer.job_id, purpose=transfer.purpose,
        compute_site=transfer.compute_site, jkt=jkt, issued_at=issued, expires_at=issued + ttl_seconds,
    )
    payload: dict[str, Any] = {
        "iss": issuer, "sub": transfer.consumer_id, "aud": audience, "iat": issued, "nbf": issued,
        "exp": claims.expires_at, "jti": claims.jti, "cnf": {"jkt": jkt},
        "sluis:transfer": transfer.id, "sluis:agreement": transfer.agreement_id,
        "sluis:jobId": transfer.job_id, "sluis:purpose": transfer.purpose,
        "sluis:computeSite": transfer.compute_site,
    }
    header = {"alg": SIGNING_ALGORITHM, "typ": ACCESS_TOKEN_TYPE}
    token = jwt.encode(header, payload, OKPKey.import_key(key.private_key), algorithms=[SIGNING_ALGORITHM])
    return token, claims


def _decode(token: str, key: OKPKey, expected_type: str, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        raise InvalidToken(f"bad_{what}", f"the {what} is not a compact JWT")
    try:
        decoded = jwt.decode(token, key, algorithms=list(ACCEPTED_ALGORITHMS))
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidToken(f"bad_{what}", f"the {what} signature or format is invalid ({error})") from None
    header = dict(decoded.header)
    if holds_unstorable_text(header) or holds_unstorable_text(decoded.claims):
        raise InvalidToken(f"bad_{what}", f"the {what} holds a lone UTF-16 surrogate or U+0000")
    if header.get("typ") != expected_type:
        raise InvalidToken(f"bad_{what}", f"the {what} must have typ {expected_type!r}")
    return header, dict(decoded.claims)


def _string(claims: Mapping[str, Any], name: str, what: str, optional: bool = False) -> str | None:
    value = claims.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise InvalidToken(f"bad_{what}", f"the {what} lacks a valid {name!r} claim")
    return value


def _integer(claims: Mapping[str, Any], name: str, what: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidToken(f"bad_{what}", f"the {what} lacks a numeric {name!r} claim")
    return value


def verify_access_token(
    token: str, provider_key: Ed25519PublicKey, issuer: str, audience: str, now: datetime,
    expired_grace_seconds: int = 0,
) -> AccessClaims:
    """Signature, type, issuer, audience and times; ``expired_grace_seconds`` > 0 only for refresh."""
    _, claims = _decode(token, OKPKey.import_key(provider_key), ACCESS_TOKEN_TYPE, "token")
    if claims.get("iss") != issuer:
        raise InvalidToken("bad_token", "the token was not issued by this provider")
    if claims.get("aud") != audience:
        raise InvalidToken("bad_token", "the token is not addressed to this data plane")
    issued, expires = _integer(claims, "iat", "token"), _integer(claims, "exp", "token")
    moment = int(now.timestamp())
    if issued > moment + CLOCK_SKEW_SECONDS:
        raise InvalidToken("bad_token", "the token is issued in the future")
    if expires - issued > MAX_ACCESS_TOKEN_SECONDS:
        raise InvalidToken("bad_token", f"the token lives longer than {MAX_ACCESS_TOKEN_SECONDS} s")
    if moment >= expires + CLOCK_SKEW_SECONDS + expired_grace_seconds:
        raise InvalidToken("token_expired", "the access token has expired; refresh it")
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not jkt:
        raise InvalidToken("bad_token", "the token is not bound to a key (cnf.jkt)")
    jti = _string(claims, "jti", "token")
    assert jti is not None
    if len(jti) > MAX_JTI_CHARS:
        raise InvalidToken("bad_token", "the token id is too long")
    return AccessClaims(
        jti=jti, issuer=issuer,
        transfer_id=str(_string(claims, "sluis:transfer", "token")),
        agreement_id=str(_string(claims, "sluis:agreement", "token")),
        consumer_id=str(_string(claims, "sub", "token")),
        job_id=_string(claims, "sluis:jobId", "token", optional=True),
        purpose=_string(claims, "sluis:purpose", "token", optional=True),
        compute_site=_string(claims, "sluis:computeSite", "token", optional=True),
        jkt=jkt, issued_at=issued, expires_at=expires,
    )


@dataclass(frozen=True)
class VerifiedProof:
    jti: str
    issued_at: int


def make_proof(key: KeyPair, method: str, url: str, access_token: str, now: datetime | None = None) -> str:
    """The per-request proof a job sends in the ``DPoP`` header (client side)."""
    moment = now or datetime.now(UTC)
    header = {"alg": SIGNING_ALGORITHM, "typ": PROOF_TYPE, "jwk": key.public_jwk}
    parts = urlsplit(url)
    claims = {
        "jti": str(uuid.uuid4()), "htm": method.upper(), "htu": f"{parts.scheme}://{parts.netloc}{parts.path}",
        "iat": int(moment.timestamp()), "ath": token_hash(access_token),
    }
    return jwt.encode(header, claims, OKPKey.import_key(key.private_key), algorithms=[SIGNING_ALGORITHM])


# Public keys of proofs seen lately, with their thumbprints: a job sends the same key with every
# request, and importing it and hashing its thumbprint cost a fifth of checking a proof. Keyed
# by the key's own bytes (``x``), so a hit is the very key; bounded, least recently used first.
_PROOF_KEYS: OrderedDict[str, tuple[OKPKey, str]] = OrderedDict()
_PROOF_KEYS_MAX = 1024
_proof_keys_lock = threading.Lock()


def _proof_key(proof: str) -> tuple[OKPKey, str]:
    """The proof's public key and its RFC 7638 thumbprint."""
    try:
        header = json.loads(_b64url_decode(proof.split(".", 1)[0]))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidToken("bad_proof", "the proof header is not base64url JSON") from None
    jwk = header.get("jwk") if isinstance(header, dict) else None
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" in jwk:
        raise InvalidToken("bad_proof", "the proof must carry the consumer's public Ed25519 jwk")
    x = str(jwk.get("x", ""))
    with _proof_keys_lock:
        known = _PROOF_KEYS.get(x)
        if known is not None:
            _PROOF_KEYS.move_to_end(x)
            return known
    try:
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": x})
    except (JoseError, ValueError, TypeError):
        raise InvalidToken("bad_proof", "the proof's jwk is not an Ed25519 key") from None
    found = (key, key.thumbprint())
    with _proof_keys_lock:
        _PROOF_KEYS[x] = found
        while len(_PROOF_KEYS) > _PROOF_KEYS_MAX:
            _PROOF_KEYS.popitem(last=False)
    return found


def verify_proof(
    proof: str | None, method: str, path: str, access_token: str, jkt: str, now: datetime
) -> VerifiedProof:
    """Check the proof of possession for one request. ``path`` is compared with the path of
    ``htu`` (hosts differ behind proxies and load balancers; the token's audience pins the host)."""
    if not proof:
        raise InvalidToken("proof_missing", "send a DPoP proof signed by the consumer's key with the token")
    if len(proof) > MAX_TOKEN_BYTES or proof.count(".") != 2:
        raise InvalidToken("bad_proof", "the proof is not a compact JWT")
    key, thumbprint = _proof_key(proof)
    if thumbprint != jkt:
        raise InvalidToken("wrong_holder", "the token was issued to another consumer's key")
    _, claims = _decode(proof, key, PROOF_TYPE, "proof")
    if claims.get("htm") != method.upper():
        raise InvalidToken("bad_proof", "the proof is for another HTTP method")
    htu = claims.get("htu")
    if not isinstance(htu, str) or urlsplit(htu).path != path:
        raise InvalidToken("bad_proof", "the proof is for another URL")
    if claims.get("ath") != token_hash(access_token):
        raise InvalidToken("bad_proof", "the proof is for another access token")
    issued = _integer(claims, "iat", "proof")
    moment = int(now.timestamp())
    if abs(moment - issued) > PROOF_MAX_AGE_SECONDS:
        raise InvalidToken("stale_proof", f"the proof is not from the last {PROOF_MAX_AGE_SECONDS} s")
    jti = _string(claims, "jti", "proof")
    assert jti is not None
    if len(jti) > MAX_JTI_CHARS:
        raise InvalidToken("bad_proof", "the proof id is too long")
    return VerifiedProof(jti, issued)
