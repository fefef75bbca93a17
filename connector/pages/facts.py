"""What the pages show about an agreement, gathered once from the connector's own records.

An agreement page needs more than the stored document: who is the other side, what the policy
says (as sentences), the period it runs for, how many reads it allows and how many were made,
the purpose the consumer declared, and whether its signatures verify. Each fact comes from the
package that owns it — the policy engine reads the policy, the identity package checks the
signatures, the data plane's store counts the reads — and is put in one value here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from connector import policy_gate
from connector.identity import PublicKeyResolver
from connector.identity.agreements import verify_agreement
from connector.store import AgreementRecord, ProcessRecord, Store
from policies import Constraint, Policy, PolicyError, terms
from policies.sentences import Sentence, policy_sentences
from policies.values import ValueMismatch, parse_datetime
from vocab.hierarchy import purposes


class ReadCounter(Protocol):
    """The data plane's count of reads made under an agreement (:class:`connector.pages.reads.ReadCounts`)."""

    def used(self, agreement_id: str, policy: Policy) -> int | None: ...


@dataclass(frozen=True)
class Signatures:
    """Whether the agreement's proofs verify, checked when the page is shown."""

    valid: bool
    reason: str
    signed_by: tuple[str, ...]

    @property
    def label(self) -> str:
        if self.valid:
            return "verified" if len(self.signed_by) > 1 else "signed by the provider"
        return "not verified"


@dataclass(frozen=True)
class AgreementFacts:
    id: str
    role: str  # provider | consumer: our side of it
    provider_id: str
    consumer_id: str
    dataset: str
    state: str  # active | terminated
    signed_at: str | None
    ends: str | None
    purpose: str | None
    sentences: tuple[Sentence, ...]
    read_limit: int | None
    reads_used: int | None
    negotiation_id: str
    offer_id: str | None
    signatures: Signatures | None = None

    @property
    def counterparty(self) -> str:
        return self.consumer_id if self.role == "provider" else self.provider_id

    @property
    def purpose_label(self) -> str | None:
        """The declared purpose by its name in the EHDS purpose list, else as declared."""
        if self.purpose is None:
            return None
        return purposes().label(self.purpose) or self.purpose

    @property
    def reads_left(self) -> int | None:
        if self.read_limit is None or self.reads_used is None:
            return None
        return max(self.read_limit - self.reads_used, 0)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "role": self.role,
            "provider_id": self.provider_id,
            "consumer_id": self.consumer_id,
            "dataset": self.dataset,
            "state": self.state,
            "signed_at": self.signed_at,
            "ends": self.ends,
            "purpose": self.purpose,
            "policy": [sentence.text for sentence in self.sentences],
            "read_limit": self.read_limit,
            "reads_used": self.reads_used,
            "reads_left": self.reads_left,
        }
        if self.signatures is not None:
            body["signatures"] = {
                "valid": self.signatures.valid,
                "reason": self.signatures.reason,
                "signed_by": list(self.signatures.signed_by),
            }
        return body


def agreement_policy(record: AgreementRecord) -> Policy | None:
    """The agreement's policy as the engine reads it (``None`` if it no longer parses)."""
    document = {key: value for key, value in record.agreement.items() if key != "proof"}
    try:
        return policy_gate.parsed_policy(document)
    except (PolicyError, ValueError, TypeError):
        return None


def read_limit(policy: Policy) -> int | None:
    """The smallest ``count lteq N`` (or ``lt N+1``) bound over the policy's permissions."""
    limits: list[int] = []
    for rule in policy.permissions():
        for node in rule.constraints:
            for atom in node.iter_atoms():
                limit = _count_bound(atom)
                if limit is not None:
                    limits.append(limit)
    return min(limits) if limits else None


def _count_bound(atom: Constraint) -> int | None:
    if atom.left_operand != terms.COUNT or len(atom.right) != 1:
        return None
    raw = atom.right[0].value
    if isinstance(raw, bool):
        return None
    try:
        number = int(str(raw))
    except ValueError:
        return None
    name = terms.local_name(atom.operator)
    return number if name == "lteq" else number - 1 if name == "lt" else None


def period_end(policy: Policy) -> str | None:
    """When use ends, from ``dateTime lt|lteq`` (ISO form), or ``None`` when open-ended."""
    ends: list[datetime] = []
    for rule in policy.permissions():
        for node in rule.constraints:
            for atom in node.iter_atoms():
                if atom.left_operand == terms.DATE_TIME and terms.local_name(atom.operator) in ("lt", "lteq"):
                    try:
                        ends.append(parse_datetime(str(atom.right[0].value)))
                    except (ValueMismatch, IndexError):
                        continue
    return min(ends).isoformat().replace("+00:00", "Z") if ends else None


def gather(
    record: AgreementRecord,
    participant_id: str,
    store: Store,
    counter: ReadCounter | None,
    resolver: PublicKeyResolver | None = None,
) -> AgreementFacts:
    """Every fact the pages show about one agreement; signatures only when a resolver is given."""
    policy = agreement_policy(record)
    negotiation: ProcessRecord | None = store.get_process(record.negotiation_id, "negotiation")
    details = negotiation.details if negotiation else {}
    offer = details.get("offer") if isinstance(details.get("offer"), dict) else None
    role = "provider" if record.provider_id == participant_id else "consumer"
    limit = read_limit(policy) if policy else None
    used = counter.used(record.id, policy) if counter is not None and policy and role == "provider" else None
    signatures = None
    if resolver is not None:
        check = verify_agreement(record.agreement, resolver, require_countersignature=True)
        signatures = Signatures(check.valid, check.reason, tuple(check.signed_by))
    timestamp = record.agreement.get("timestamp") or record.agreement.get("odrl:timestamp")
    return AgreementFacts(
        id=record.id,
        role=role,
        provider_id=record.provider_id,
        consumer_id=record.consumer_id,
        dataset=record.asset_id,
        state="terminated" if record.terminated else "active",
        signed_at=str(timestamp) if timestamp else None,
        ends=period_end(policy) if policy else None,
        purpose=str(details["purpose"]) if details.get("purpose") else None,
        sentences=policy_sentences(policy)
        if policy
        else (
            Sentence(
                "permission",
                record.id,
                "The stored policy could not be read: every request is refused.",
                ("policy",),
            ),
        ),
        read_limit=limit,
        reads_used=used,
        negotiation_id=record.negotiation_id,
        offer_id=str(offer["@id"]) if offer and offer.get("@id") else None,
        signatures=signatures,
    )
