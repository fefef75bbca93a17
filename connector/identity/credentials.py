"""Verifiable credentials (VC Data Model 2.0) issued by the data space's governance authority.

Two credential types matter to policies: a ``MembershipCredential`` (the holder is a member of
the data space) and an ``EHDSDataPermit`` (a health data access body granted the holder access to
named datasets for named purposes, EHDS Art. 68). Credentials are secured with an
``eddsa-jcs-2022`` Data Integrity proof, and checked against the authority's key *pinned in
configuration*, so verifying a credential never needs the network.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connector.identity._time import format_datetime, parse_datetime
from connector.identity.did import split_verification_method, verification_method_id
from connector.identity.errors import IdentityError, ProofError
from connector.identity.keys import KeyPair, public_key_from_multibase
from connector.identity.proofs import sign_document, verify_document
from vocab.jsonld import CREDENTIALS_V2_CONTEXT as CREDENTIALS_V2_CONTEXT
from vocab.jsonld import SLUIS_CONTEXT as SLUIS_CONTEXT

VERIFIABLE_CREDENTIAL = "VerifiableCredential"
MEMBERSHIP_CREDENTIAL = "MembershipCredential"
EHDS_DATA_PERMIT = "EHDSDataPermit"
CREDENTIAL_TYPES = frozenset({MEMBERSHIP_CREDENTIAL, EHDS_DATA_PERMIT})

# Claims a subject may carry per credential type, with the JSON type each must have. Unknown
# claims are refused at issuance so a typo never produces a credential policies misread.
_LIST_OF_STRINGS = "list of strings"
CLAIM_TYPES: dict[str, dict[str, str]] = {
    # dspEndpoints: the base URLs of the member's connectors the authority vouches for; the
    # only place (besides the member's did:web host and the operator's pins) from which a
    # callback address may be bound to the member (connector/callbacks.py)
    MEMBERSHIP_CREDENTIAL: {
        "memberOf": "string",
        "role": "string",
        "name": "string",
        "dspEndpoints": _LIST_OF_STRINGS,
    },
    EHDS_DATA_PERMIT: {
        "permitId": "string",
        "purposes": _LIST_OF_STRINGS,
        "datasets": _LIST_OF_STRINGS,
        "healthDataAccessBody": "string",
        "computeSites": _LIST_OF_STRINGS,
    },
}
REQUIRED_CLAIMS: dict[str, tuple[str, ...]] = {
    MEMBERSHIP_CREDENTIAL: (),
    EHDS_DATA_PERMIT: ("permitId", "purposes", "datasets", "healthDataAccessBody"),
}

# Credentials whose proofs already verified, by content digest: a peer presents the same
# membership credential on every request, and its proof is the costliest part of a token check.
# Bounded so strangers cannot grow it; validity dates and proof expiry are re-checked every time.
MAX_VERIFIED_CREDENTIALS = 4096

# Bounds on what a stranger can make us parse and canonicalise per credential.
MAX_CLAIMS = 32
MAX_LIST_ITEMS = 256
MAX_STRING_CHARS = 2048


@dataclass(frozen=True)
class TrustedAuthority:
    """The governance authority whose credentials we accept, pinned by DID and public key."""

    did: str
    public_multibase: str

    @cached_property
    def public_key(self) -> Ed25519PublicKey:
        return public_key_from_multibase(self.public_multibase)


def _check_claim(credential_type: str, name: str, value: object) -> None:
    expected = CLAIM_TYPES[credential_type].get(name)
    if expected is None:
        allowed = ", ".join(sorted(CLAIM_TYPES[credential_type]))
        raise IdentityError("bad_claim", f"{credential_type} has no claim {name!r} (allowed: {allowed})")
    if expected == "string":
        if not isinstance(value, str) or not value or len(value) > MAX_STRING_CHARS:
            raise IdentityError("bad_claim", f"claim {name!r} must be a non-empty string")
    elif (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_LIST_ITEMS
        or not all(isinstance(item, str) and item and len(item) <= MAX_STRING_CHARS for item in value)
    ):
        raise IdentityError("bad_claim", f"claim {name!r} must be a non-empty list of strings")


def check_claims(credential_type: str, claims: Mapping[str, object]) -> None:
    if credential_type not in CLAIM_TYPES:
        known = ", ".join(sorted(CLAIM_TYPES))
        raise IdentityError(
            "unknown_credential_type", f"unknown credential type {credential_type!r} (known: {known})"
        )
    if len(claims) > MAX_CLAIMS:
        raise IdentityError("bad_claim", f"a credential carries at most {MAX_CLAIMS} claims")
    for name, value in claims.items():
        _check_claim(credential_type, name, value)
    missing = [name for name in REQUIRED_CLAIMS[credential_type] if name not in claims]
    if missing:
        raise IdentityError("missing_claim", f"{credential_type} needs the claim(s) {', '.join(missing)}")


def issue_credential(
    authority_key: KeyPair,
    authority_did: str,
    subject_did: str,
    credential_type: str,
    claims: Mapping[str, object],
    valid_from: datetime,
    valid_until: datetime,
) -> dict[str, Any]:
    """A signed VC 2.0 credential stating ``claims`` about ``subject_did``."""
    check_claims(credential_type, claims)
    if valid_until <= valid_from:
        raise IdentityError("bad_validity", "validUntil must be after validFrom")
    if "id" in claims:
        raise IdentityError("bad_claim", "the subject id is set from subject_did, not from claims")
    credential: dict[str, Any] = {
        "@context": [CREDENTIALS_V2_CONTEXT, SLUIS_CONTEXT],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": [VERIFIABLE_CREDENTIAL, credential_type],
        "issuer": authority_did,
        "validFrom": format_datetime(valid_from),
        "validUntil": format_datetime(valid_until),
        "credentialSubject": {"id": subject_did, **claims},
    }
    return sign_document(credential, authority_key, verification_method_id(authority_did), created=valid_from)


def credential_types(vc: Mapping[str, Any]) -> frozenset[str]:
    """The credential's own types, without the generic ``VerifiableCredential``."""
    types = vc.get("type")
    listed = types if isinstance(types, list) else [types]
    return frozenset(item for item in listed if isinstance(item, str) and item != VERIFIABLE_CREDENTIAL)


def credential_subject(vc: Mapping[str, Any]) -> dict[str, Any]:
    subject = vc.get("credentialSubject")
    if not isinstance(subject, dict) or not isinstance(subject.get("id"), str):
        raise ProofError("malformed_credential", "credentialSubject must be an object with a string id")
    return subject


def _issuer_id(vc: Mapping[str, Any]) -> str:
    issuer = vc.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str):
        raise ProofError("malformed_credential", "issuer must be a DID or an object with an id")
    return issuer


def _authority_for(issuer: str, trusted: TrustedAuthority | Sequence[TrustedAuthority]) -> TrustedAuthority:
    candidates = [trusted] if isinstance(trusted, TrustedAuthority) else list(trusted)
    for authority in candidates:
        if authority.did == issuer:
            return authority
    raise ProofError("untrusted_issuer", f"credentials issued by {issuer} are not trusted here")


def verify_credential(
    vc: Mapping[str, Any],
    trusted: TrustedAuthority | Sequence[TrustedAuthority],
    now: datetime,
) -> dict[str, Any]:
    """Check a credential's shape, validity period, issuer and proof; return it when all hold."""
    if not isinstance(vc, Mapping):
        raise ProofError("malformed_credential", "a credential must be a JSON object")
    context = vc.get("@context")
    if not isinstance(context, list) or not context or context[0] != CREDENTIALS_V2_CONTEXT:
        raise ProofError("malformed_credential", f"@context must start with {CREDENTIALS_V2_CONTEXT}")
    types = vc.get("type")
    if not isinstance(types, list) or VERIFIABLE_CREDENTIAL not in types:
        raise ProofError("malformed_credential", "type must be a list containing VerifiableCredential")
    subject = credential_subject(vc)
    if len(subject) > MAX_CLAIMS + 1:
        raise ProofError("malformed_credential", f"credentialSubject carries more than {MAX_CLAIMS} claims")
    authority = _authority_for(_issuer_id(vc), trusted)
    try:
        valid_from = parse_datetime(vc.get("validFrom"), "validFrom")
        valid_until = parse_datetime(vc["validUntil"], "validUntil") if "validUntil" in vc else None
    except IdentityError as error:
        raise ProofError("malformed_credential", error.message) from None
    if now < valid_from:
        raise ProofError(
            "credential_not_yet_valid",
            f"the {'/'.join(sorted(credential_types(vc)))} is valid only from {vc['validFrom']}",
        )
    if valid_until is not None and now >= valid_until:
        raise ProofError(
            "credential_expired",
            f"the {'/'.join(sorted(credential_types(vc)))} expired at {vc['validUntil']}",
        )

    def authority_key(verification_method: str) -> Ed25519PublicKey:
        did, _ = split_verification_method(verification_method)
        if did != authority.did:
            raise ProofError("untrusted_issuer", f"the credential is signed by {did}, not by its issuer")
        return authority.public_key

    digest = _content_digest(vc, authority)
    if digest is None or not _VERIFIED.seen(digest) or _has_expiring_proof(vc):
        verify_document(vc, authority_key, proof_purpose="assertionMethod", now=now)
        if digest is not None:
            _VERIFIED.remember(digest)
    return dict(vc)


class _VerifiedDigests:
    """Digests of credentials whose proofs verified (an LRU set, shared by all threads)."""

    def __init__(self, limit: int) -> None:
        self._digests: OrderedDict[bytes, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def seen(self, digest: bytes) -> bool:
        with self._lock:
            if digest in self._digests:
                self._digests.move_to_end(digest)
                return True
            return False

    def remember(self, digest: bytes) -> None:
        with self._lock:
            self._digests[digest] = None
            while len(self._digests) > self._limit:
                self._digests.popitem(last=False)


_VERIFIED = _VerifiedDigests(MAX_VERIFIED_CREDENTIALS)


def _content_digest(vc: Mapping[str, Any], authority: TrustedAuthority) -> bytes | None:
    """SHA-256 over the whole credential (proof included) and the key it was checked with.

    Any change to a claim, a date or the proof gives another digest, so only a byte-for-byte
    re-presentation of a credential that verified under the same pinned key skips the proof.
    """
    try:
        text = json.dumps(
            [authority.did, authority.public_multibase, vc],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).digest()


def _has_expiring_proof(vc: Mapping[str, Any]) -> bool:
    """A proof with its own ``expires`` is checked in full each time (its time check lives there)."""
    proofs = vc.get("proof")
    listed = proofs if isinstance(proofs, list) else [proofs]
    return any(not isinstance(proof, Mapping) or "expires" in proof for proof in listed)
