"""Participant identity: Ed25519 keys, did:web documents, self-issued tokens, credentials, proofs.

Everything here is a pure function over values except ``DidResolver`` (HTTP) and the key file
helpers; verification raises ``IdentityError`` (``ProofError`` for signatures) with a ``code``.
"""

from connector.identity._time import utc_now
from connector.identity.agreements import (
    AgreementVerification,
    make_agreement_bundle,
    sign_agreement,
    verify_agreement,
)
from connector.identity.credentials import (
    CREDENTIALS_V2_CONTEXT,
    EHDS_DATA_PERMIT,
    MEMBERSHIP_CREDENTIAL,
    TrustedAuthority,
    credential_subject,
    credential_types,
    issue_credential,
    verify_credential,
)
from connector.identity.did import (
    DidResolver,
    PublicKeyResolver,
    StaticDidResolver,
    check_host_pattern,
    did_document,
    did_to_url,
    did_web_for,
    dsp_service,
    host_matches,
    parse_did_web,
    public_key_from_document,
    verification_method_id,
)
from connector.identity.errors import IdentityError, ProofError
from connector.identity.keys import KeyPair, public_key_from_multibase, public_key_to_multibase
from connector.identity.proofs import sign_document, verify_document
from connector.identity.tokens import (
    InMemoryReplayGuard,
    ReplayGuard,
    VerifiedClaims,
    issue_token,
    verify_token,
)

__all__ = [
    "CREDENTIALS_V2_CONTEXT",
    "EHDS_DATA_PERMIT",
    "MEMBERSHIP_CREDENTIAL",
    "AgreementVerification",
    "DidResolver",
    "IdentityError",
    "InMemoryReplayGuard",
    "KeyPair",
    "ProofError",
    "PublicKeyResolver",
    "ReplayGuard",
    "StaticDidResolver",
    "TrustedAuthority",
    "VerifiedClaims",
    "check_host_pattern",
    "credential_subject",
    "credential_types",
    "did_document",
    "did_to_url",
    "did_web_for",
    "dsp_service",
    "host_matches",
    "issue_credential",
    "issue_token",
    "make_agreement_bundle",
    "parse_did_web",
    "public_key_from_document",
    "public_key_from_multibase",
    "public_key_to_multibase",
    "sign_agreement",
    "sign_document",
    "utc_now",
    "verification_method_id",
    "verify_agreement",
    "verify_credential",
    "verify_document",
    "verify_token",
]
