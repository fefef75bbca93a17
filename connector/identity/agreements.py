"""Signed contract agreements that a compliance officer can check offline.

The provider (ODRL ``assigner``) signs the DSP ``Agreement`` when it sends it; the consumer
(``assignee``) counter-signs when it verifies it. Both are ``eddsa-jcs-2022`` proofs on the
agreement JSON: the provider's proof has an ``id``, and the consumer's proof names it in
``previousProof``, forming a proof chain, so the counter-signature commits to the provider's
signature and not just to the terms.

For offline checking we keep a *signed agreement bundle*: the signed agreement plus the DID
documents of both parties as they were at signing time. ``verify_agreement`` then needs no
network: each proof must verify with a key its party's DID document lists under
``assertionMethod``, and each document's ``id`` must be that party's DID.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connector.identity.did import PublicKeyResolver, StaticDidResolver, split_verification_method
from connector.identity.errors import IdentityError, ProofError
from connector.identity.keys import KeyPair
from connector.identity.proofs import sign_document, verify_document

BUNDLE_TYPE = "SignedAgreementBundle"
BUNDLE_VERSION = 1
# An agreement has two signers, the provider and the consumer; a third proof is never legitimate.
MAX_AGREEMENT_PROOFS = 2
_AGREEMENT_TYPES = frozenset({"Agreement", "odrl:Agreement", "http://www.w3.org/ns/odrl/2/Agreement"})


@dataclass(frozen=True)
class AgreementParties:
    agreement_id: str
    assigner: str
    assignee: str
    target: str
    timestamp: str


@dataclass(frozen=True)
class AgreementVerification:
    """The outcome of checking an agreement's signatures; ``valid`` is the one bit that matters."""

    valid: bool
    reason: str
    code: str | None = None
    agreement_id: str | None = None
    assigner: str | None = None
    assignee: str | None = None
    target: str | None = None
    signed_by: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "code": self.code,
            "agreementId": self.agreement_id,
            "assigner": self.assigner,
            "assignee": self.assignee,
            "target": self.target,
            "signedBy": list(self.signed_by),
        }


def _term(agreement: Mapping[str, Any], name: str) -> Any:
    for key in (name, f"odrl:{name}", f"http://www.w3.org/ns/odrl/2/{name}"):
        if key in agreement:
            return agreement[key]
    return None


def _identifier(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("@id", value.get("uid"))
    return value if isinstance(value, str) and value else None


def agreement_parties(agreement: Mapping[str, Any]) -> AgreementParties:
    """The fields of a DSP Agreement a signature binds: id, both parties, target, timestamp."""
    if not isinstance(agreement, Mapping):
        raise IdentityError("malformed_agreement", "an agreement must be a JSON object")
    kind = agreement.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    if not _AGREEMENT_TYPES.intersection(item for item in kinds if isinstance(item, str)):
        raise IdentityError("malformed_agreement", "the document's @type is not an ODRL Agreement")
    values: dict[str, str] = {}
    for name in ("assigner", "assignee", "target"):
        found = _identifier(_term(agreement, name))
        if found is None:
            raise IdentityError("malformed_agreement", f"the agreement has no {name}")
        values[name] = found
    agreement_id = _identifier(agreement.get("@id", agreement.get("uid")))
    if agreement_id is None:
        raise IdentityError("malformed_agreement", "the agreement has no @id")
    timestamp = _term(agreement, "timestamp")
    if isinstance(timestamp, dict):
        timestamp = timestamp.get("@value")
    if not isinstance(timestamp, str) or not timestamp:
        raise IdentityError("malformed_agreement", "the agreement has no timestamp")
    return AgreementParties(agreement_id, values["assigner"], values["assignee"], values["target"], timestamp)


def _proofs(agreement: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = agreement.get("proof")
    if raw is None:
        return []
    proofs = raw if isinstance(raw, list) else [raw]
    return [proof for proof in proofs if isinstance(proof, dict)]


def sign_agreement(
    agreement: Mapping[str, Any],
    key: KeyPair,
    verification_method: str,
    created: datetime | None = None,
) -> dict[str, Any]:
    """Add the next signature: the provider's on an unsigned agreement, then the consumer's.

    The signer's DID (from ``verification_method``) must be the party whose turn it is, so a
    consumer cannot sign in the provider's place and nobody can sign a third time.
    """
    parties = agreement_parties(agreement)
    signer, _ = split_verification_method(verification_method)
    existing = _proofs(agreement)
    if not existing:
        if signer != parties.assigner:
            raise IdentityError(
                "wrong_signer", f"the provider (assigner {parties.assigner}) signs first, not {signer}"
            )
        return sign_document(
            agreement, key, verification_method, created=created, proof_id=f"urn:uuid:{uuid.uuid4()}"
        )
    if len(existing) == 1:
        if signer != parties.assignee:
            raise IdentityError(
                "wrong_signer", f"the consumer (assignee {parties.assignee}) counter-signs, not {signer}"
            )
        first_id = existing[0].get("id")
        if not isinstance(first_id, str):
            raise IdentityError("malformed_agreement", "the provider's proof has no id to counter-sign")
        return sign_document(agreement, key, verification_method, created=created, previous_proof=first_id)
    raise IdentityError("already_countersigned", "the agreement already carries both signatures")


def make_agreement_bundle(
    signed_agreement: Mapping[str, Any], did_documents: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The self-contained file ``sluis agreement verify`` checks: agreement + both DID documents."""
    parties = agreement_parties(signed_agreement)
    by_id = {document.get("id"): dict(document) for document in did_documents}
    missing = [did for did in (parties.assigner, parties.assignee) if did not in by_id]
    if missing:
        raise IdentityError("missing_did_document", f"no DID document given for {', '.join(missing)}")
    return {
        "type": BUNDLE_TYPE,
        "version": BUNDLE_VERSION,
        "agreement": dict(signed_agreement),
        "didDocuments": [by_id[parties.assigner], by_id[parties.assignee]]
        if parties.assigner != parties.assignee
        else [by_id[parties.assigner]],
    }


def is_agreement_bundle(doc: object) -> bool:
    return isinstance(doc, Mapping) and doc.get("type") == BUNDLE_TYPE


def _invalid(code: str, reason: str, parties: AgreementParties | None = None) -> AgreementVerification:
    return AgreementVerification(
        valid=False,
        reason=reason,
        code=code,
        agreement_id=parties.agreement_id if parties else None,
        assigner=parties.assigner if parties else None,
        assignee=parties.assignee if parties else None,
        target=parties.target if parties else None,
    )


def _bundle_resolver(bundle: Mapping[str, Any], parties: AgreementParties) -> StaticDidResolver:
    if bundle.get("version") != BUNDLE_VERSION:
        raise IdentityError(
            "unsupported_bundle", f"bundle version {bundle.get('version')!r} is not supported"
        )
    documents = bundle.get("didDocuments")
    if not isinstance(documents, list) or not all(isinstance(item, dict) for item in documents):
        raise IdentityError("malformed_bundle", "didDocuments must be a list of DID documents")
    ids = [document.get("id") for document in documents]
    expected = {parties.assigner, parties.assignee}
    if set(ids) != expected or len(ids) != len(expected):
        raise IdentityError(
            "did_mismatch",
            f"the bundle's DID documents are for {', '.join(map(str, ids))}; "
            f"expected exactly {', '.join(sorted(expected))}",
        )
    return StaticDidResolver(documents)


def verify_agreement(
    doc: Mapping[str, Any],
    resolver: PublicKeyResolver | None = None,
    *,
    require_countersignature: bool = True,
) -> AgreementVerification:
    """Check a signed agreement bundle (or a signed agreement with a resolver) offline.

    Valid means: the provider (assigner) signed with a key its DID document lists for
    ``assertionMethod``; the consumer (assignee) counter-signed likewise, chaining to the
    provider's proof; and no proof fails. With ``require_countersignature=False`` the
    provider's signature alone suffices (what the consumer checks before counter-signing).
    """
    if not isinstance(doc, Mapping):
        return _invalid("malformed_bundle", "the document is not a JSON object")
    agreement = doc.get("agreement") if is_agreement_bundle(doc) else doc
    if not isinstance(agreement, Mapping):
        return _invalid("malformed_bundle", "the bundle has no agreement object")
    try:
        parties = agreement_parties(agreement)
    except IdentityError as error:
        return _invalid(error.code, error.message)
    try:
        if is_agreement_bundle(doc):
            resolver = _bundle_resolver(doc, parties)
        elif resolver is None:
            return _invalid(
                "no_did_documents", "a bare agreement needs a DID resolver; verify a bundle", parties
            )
        key_resolver = resolver

        def assertion_key(verification_method: str) -> Ed25519PublicKey:
            return key_resolver.public_key(verification_method, "assertionMethod")

        proofs = _proofs(agreement)
        expected = 2 if require_countersignature else 1
        if len(proofs) > MAX_AGREEMENT_PROOFS or len(proofs) < expected:
            return _invalid(
                "wrong_signature_count",
                f"the agreement carries {len(proofs)} signature(s); expected the provider's"
                + (" and the consumer's" if require_countersignature else ""),
                parties,
            )
        signed_by = verify_document(agreement, assertion_key, proof_purpose="assertionMethod")
    except ProofError as error:
        return _invalid(error.code, error.message, parties)
    except IdentityError as error:
        return _invalid(error.code, error.message, parties)

    signers = [split_verification_method(method)[0] for method in signed_by]
    if signers[0] != parties.assigner:
        return _invalid("wrong_signer", f"the first signature is by {signers[0]}, not the provider", parties)
    if len(signers) == 2:
        if signers[1] != parties.assignee:
            return _invalid(
                "wrong_signer", f"the counter-signature is by {signers[1]}, not the consumer", parties
            )
        if proofs[1].get("previousProof") != proofs[0].get("id"):
            return _invalid(
                "unchained_countersignature",
                "the consumer's signature does not chain to the provider's (previousProof)",
                parties,
            )
    described = " and ".join(
        f"{role} {signer}" for role, signer in zip(("provider", "consumer"), signers, strict=False)
    )
    return AgreementVerification(
        valid=True,
        reason=f"agreement {parties.agreement_id} is signed by the {described}",
        agreement_id=parties.agreement_id,
        assigner=parties.assigner,
        assignee=parties.assignee,
        target=parties.target,
        signed_by=tuple(signed_by),
    )
