"""W3C Data Integrity proofs with the ``eddsa-jcs-2022`` cryptosuite, including proof sets and chains.

Why JCS and not RDF canonicalisation: the documents we sign (credentials, agreements, catalogue
records) are JSON first; JCS (RFC 8785) is fast, has no JSON-LD context to fetch, and never drops
undefined terms silently. The algorithm follows the vc-di-eddsa specification:

* proof configuration = the proof options without ``proofValue``, carrying the document's
  ``@context`` when it has one, canonicalised with JCS;
* transformed document = the document without ``proof``, canonicalised with JCS;
* signed bytes = SHA-256(proof configuration) || SHA-256(transformed document), signed with
  Ed25519; ``proofValue`` is the signature in multibase base58btc.

Several proofs form a *proof set* (each signs the document without the others); a proof that
names ``previousProof`` forms a *chain* and also signs the proofs it names, which is how a
counter-signature commits to the first signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connector.identity._jcs import canonicalize
from connector.identity._multibase import multibase_decode, multibase_encode
from connector.identity._time import format_datetime, parse_datetime, utc_now
from connector.identity.errors import IdentityError, ProofError
from connector.identity.keys import KeyPair, verify_signature

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
ED25519_SIGNATURE_BYTES = 64

# A document carries its signer's proof and at most a few counter-signatures; more is abuse
# (each proof costs a canonicalisation and a signature check).
MAX_PROOFS = 8
# Signatures already verified (64-byte inputs only, so the cache stays under a megabyte).
VERIFIED_CACHE_SIZE = 4096

KeyLookup = Callable[[str], Ed25519PublicKey]


def _canonical(value: Any, what: str) -> bytes:
    try:
        return canonicalize(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeError) as error:
        raise ProofError("not_canonicalizable", f"{what} cannot be canonicalised with JCS: {error}") from None


def _proofs_of(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = doc.get("proof")
    if raw is None:
        return []
    proofs = raw if isinstance(raw, list) else [raw]
    if len(proofs) > MAX_PROOFS:
        raise ProofError("too_many_proofs", f"a document may carry at most {MAX_PROOFS} proofs")
    for proof in proofs:
        if not isinstance(proof, dict):
            raise ProofError("malformed_proof", "every proof must be a JSON object")
    return list(proofs)


def _hash_data(unsecured: Mapping[str, Any], proof_config: Mapping[str, Any]) -> bytes:
    config_hash = hashlib.sha256(_canonical(proof_config, "the proof configuration")).digest()
    document_hash = hashlib.sha256(_canonical(unsecured, "the document")).digest()
    return config_hash + document_hash


def _input_document(doc: Mapping[str, Any], previous: list[dict[str, Any]]) -> dict[str, Any]:
    """The document a new proof signs: without proofs, plus the proofs it chains to."""
    unsecured = {name: value for name, value in doc.items() if name != "proof"}
    if previous:
        unsecured["proof"] = previous
    return unsecured


def _previous_ids(proof: Mapping[str, Any]) -> list[str]:
    previous = proof.get("previousProof")
    if previous is None:
        return []
    ids = previous if isinstance(previous, list) else [previous]
    if not all(isinstance(item, str) for item in ids):
        raise ProofError("malformed_proof", "previousProof must be a proof id or a list of proof ids")
    return list(ids)


def _matching_proofs(all_proofs: list[dict[str, Any]], ids: list[str]) -> list[dict[str, Any]]:
    by_id = {proof.get("id"): proof for proof in all_proofs if isinstance(proof.get("id"), str)}
    missing = [proof_id for proof_id in ids if proof_id not in by_id]
    if missing:
        raise ProofError("missing_previous_proof", f"previousProof {missing[0]!r} is not in the proof set")
    return [by_id[proof_id] for proof_id in ids]


def create_proof(
    unsecured: Mapping[str, Any],
    key: KeyPair,
    verification_method: str,
    proof_purpose: str = "assertionMethod",
    created: datetime | None = None,
    *,
    proof_id: str | None = None,
    previous_proof: str | list[str] | None = None,
) -> dict[str, Any]:
    """One eddsa-jcs-2022 proof over ``unsecured`` (which must not carry other proofs to sign)."""
    proof: dict[str, Any] = {}
    if proof_id is not None:
        proof["id"] = proof_id
    proof.update(
        {
            "type": PROOF_TYPE,
            "cryptosuite": CRYPTOSUITE,
            "created": format_datetime(created or utc_now()),
            "verificationMethod": verification_method,
            "proofPurpose": proof_purpose,
        }
    )
    if previous_proof is not None:
        proof["previousProof"] = previous_proof
    if "@context" in unsecured:
        proof["@context"] = unsecured["@context"]
    signature = key.sign(_hash_data(unsecured, proof))
    proof["proofValue"] = multibase_encode(signature)
    return proof


def sign_document(
    doc: Mapping[str, Any],
    key: KeyPair,
    verification_method: str,
    proof_purpose: str = "assertionMethod",
    created: datetime | None = None,
    *,
    proof_id: str | None = None,
    previous_proof: str | list[str] | None = None,
) -> dict[str, Any]:
    """A copy of ``doc`` with one more proof: the first proof is an object, later ones make a list.

    With ``previous_proof`` (ids of proofs already on the document) the new proof forms a chain
    and also covers those proofs; without it, it joins the proof set and covers the document only.
    """
    existing = _proofs_of(doc)
    if len(existing) >= MAX_PROOFS:
        raise ProofError("too_many_proofs", f"a document may carry at most {MAX_PROOFS} proofs")
    previous = _matching_proofs(existing, _previous_ids({"previousProof": previous_proof}))
    proof = create_proof(
        _input_document(doc, previous),
        key,
        verification_method,
        proof_purpose,
        created,
        proof_id=proof_id,
        previous_proof=previous_proof,
    )
    secured = {name: value for name, value in doc.items() if name != "proof"}
    secured["proof"] = [*existing, proof] if existing else proof
    return secured


@lru_cache(maxsize=VERIFIED_CACHE_SIZE)
def _cached_check(public_raw: bytes, signature: bytes, hashed: bytes) -> bool:
    return verify_signature(Ed25519PublicKey.from_public_bytes(public_raw), signature, hashed)


def _signature_holds(public_key: Ed25519PublicKey, signature: bytes, hashed: bytes) -> bool:
    """Ed25519 check, remembered: the same credential arrives with every DSP request.

    The cache key is the public key, the signature and the 64 signed bytes (two SHA-256 digests),
    so a hit means exactly this key already verified exactly this signature over exactly this data.
    """
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _cached_check(raw, signature, hashed)


def forget_verified_signatures() -> None:
    """Empty the cache of verified signatures (benchmarks measure the cold path with it)."""
    _cached_check.cache_clear()


def _check_proof_shape(proof: Mapping[str, Any]) -> None:
    if proof.get("type") != PROOF_TYPE:
        raise ProofError("unsupported_proof", f"proof type must be {PROOF_TYPE!r}, got {proof.get('type')!r}")
    if proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(
            "unsupported_cryptosuite",
            f"cryptosuite must be {CRYPTOSUITE!r}, got {proof.get('cryptosuite')!r}",
        )
    for field in ("verificationMethod", "proofPurpose", "proofValue"):
        if not isinstance(proof.get(field), str) or not proof[field]:
            raise ProofError("malformed_proof", f"proof.{field} must be a non-empty string")
    if "created" in proof:
        try:
            parse_datetime(proof["created"], "proof.created")
        except IdentityError as error:
            raise ProofError("malformed_proof", error.message) from None


def verify_proof(
    doc: Mapping[str, Any],
    proof: Mapping[str, Any],
    public_key: Ed25519PublicKey,
    previous: list[dict[str, Any]] | None = None,
) -> None:
    """Check one proof against the document it sits on; raise ``ProofError`` if it fails."""
    _check_proof_shape(proof)
    unsecured = _input_document(doc, previous or [])
    options = {name: value for name, value in proof.items() if name != "proofValue"}
    if "@context" in options:
        proof_context = options["@context"]
        doc_context = doc.get("@context")
        wanted = proof_context if isinstance(proof_context, list) else [proof_context]
        have = doc_context if isinstance(doc_context, list) else [doc_context]
        if have[: len(wanted)] != wanted:
            raise ProofError(
                "context_mismatch", "the proof's @context does not match the document's @context"
            )
        unsecured["@context"] = proof_context
    try:
        signature = multibase_decode(proof["proofValue"])
    except IdentityError as error:
        raise ProofError("bad_signature", f"proofValue is not multibase: {error.message}") from None
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise ProofError("bad_signature", "proofValue is not a 64-byte Ed25519 signature")
    if not _signature_holds(public_key, signature, _hash_data(unsecured, options)):
        raise ProofError(
            "bad_signature",
            f"the proof by {proof['verificationMethod']} does not verify: the document or proof was changed "
            "or signed with another key",
        )


def verify_document(
    doc: Mapping[str, Any],
    key_for: KeyLookup,
    *,
    proof_purpose: str | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Verify every proof on ``doc``; return the verification methods whose proofs verified.

    ``key_for`` maps a verification method id to its public key (a DID resolver, a pinned
    authority key, the DID documents of an agreement bundle) and raises when it does not know it.
    One bad proof fails the whole document: a proof set is only as good as its weakest member.
    """
    if not isinstance(doc, Mapping):
        raise ProofError("malformed_document", "a signed document must be a JSON object")
    proofs = _proofs_of(doc)
    if not proofs:
        raise ProofError("no_proof", "the document carries no proof")
    verified: list[str] = []
    for proof in proofs:
        _check_proof_shape(proof)
        if proof_purpose is not None and proof["proofPurpose"] != proof_purpose:
            raise ProofError(
                "wrong_proof_purpose",
                f"proof purpose must be {proof_purpose!r}, got {proof['proofPurpose']!r}",
            )
        if now is not None and "expires" in proof:
            try:
                expires = parse_datetime(proof["expires"], "proof.expires")
            except IdentityError as error:
                raise ProofError("malformed_proof", error.message) from None
            if now >= expires:
                raise ProofError("proof_expired", f"the proof by {proof['verificationMethod']} has expired")
        previous = _matching_proofs(proofs, _previous_ids(proof))
        try:
            public_key = key_for(proof["verificationMethod"])
        except ProofError:
            raise
        except IdentityError as error:
            raise ProofError(error.code, error.message) from None
        except LookupError:
            raise ProofError("unknown_key", f"no key is known for {proof['verificationMethod']}") from None
        verify_proof(doc, proof, public_key, previous)
        verified.append(proof["verificationMethod"])
    return verified
