"""The pure core of the audit log: how an entry is hashed, linked and signed, and how a chain is checked.

Each entry carries a *body* (what happened: agreement, job, query hash, rows and bytes returned,
decision...). The chain links entries, not bodies:

    body_hash  = sha256(JCS(body))
    entry_hash = sha256(JCS({"seq": n, "prev": entry_hash of n-1, "body": body_hash}))
    signature  = Ed25519(AUDIT_SIGNING_PREFIX + entry_hash)   by the provider's participant key

Linking through ``body_hash`` lets an export *redact* a body (another consumer's read) while
keeping the whole chain verifiable. A changed body breaks its ``body_hash``; a changed, removed
or reordered entry breaks ``seq`` continuity or the ``prev`` link of the next one; a re-hashed
forgery fails the signature. Truncating the tail is only visible against a signed head (exports
carry one) or a head recorded earlier.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

GENESIS_HASH = "0" * 64
# The largest integer JCS (RFC 8785) represents exactly: no chain gets anywhere near it.
MAX_SEQ = 2**53 - 1
# Domain separation: an audit signature can never be replayed as any other signed message.
AUDIT_SIGNING_PREFIX = b"sluis-audit-v1:"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def body_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(rfc8785.dumps(dict(body))).hexdigest()


def entry_hash(seq: int, prev_hash: str, body_digest: str) -> str:
    return hashlib.sha256(rfc8785.dumps({"seq": seq, "prev": prev_hash, "body": body_digest})).hexdigest()


def signing_input(digest: str) -> bytes:
    return AUDIT_SIGNING_PREFIX + digest.encode("ascii")


@dataclass(frozen=True)
class AuditEntry:
    """One link of the chain. ``body`` is ``None`` when an export redacted it."""

    seq: int
    prev_hash: str
    body_hash: str
    entry_hash: str
    signature: str
    signer: str
    body: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "seq": self.seq,
            "prev_hash": self.prev_hash,
            "body_hash": self.body_hash,
            "entry_hash": self.entry_hash,
            "signature": self.signature,
            "signer": self.signer,
        }
        if self.body is None:
            data["redacted"] = True
        else:
            data["body"] = self.body
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEntry:
        """Read one exported entry; raises ``ValueError`` naming the missing or mistyped field."""
        fields: dict[str, Any] = {}
        for name, kind in (
            ("seq", int), ("prev_hash", str), ("body_hash", str), ("entry_hash", str),
            ("signature", str), ("signer", str),
        ):
            value = data.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"field {name!r} must be a {kind.__name__}")
            fields[name] = value
        if not 0 < fields["seq"] <= MAX_SEQ:
            raise ValueError(f"field 'seq' must be between 1 and {MAX_SEQ}")
        body = data.get("body")
        if body is not None and not isinstance(body, dict):
            raise ValueError("field 'body' must be an object")
        if body is None and not data.get("redacted"):
            raise ValueError("field 'body' is missing (and the entry is not marked redacted)")
        return cls(body=body, **fields)

    def redacted(self) -> AuditEntry:
        return AuditEntry(
            self.seq, self.prev_hash, self.body_hash, self.entry_hash, self.signature, self.signer, None
        )


def seal(seq: int, prev_hash: str, body: Mapping[str, Any], signer: str,
         sign: Callable[[bytes], bytes]) -> AuditEntry:
    """Build the next entry of a chain whose last entry hash is ``prev_hash``."""
    digest = body_hash(body)
    linked = entry_hash(seq, prev_hash, digest)
    signature = _b64url(sign(signing_input(linked)))
    return AuditEntry(seq, prev_hash, digest, linked, signature, signer, dict(body))


@dataclass(frozen=True)
class ChainProblem:
    """The first entry that does not check out, and why."""

    seq: int
    position: int
    reason: str

    def __str__(self) -> str:
        return f"entry #{self.position} (seq {self.seq}): {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    """Outcome of checking a chain: ``intact`` or the first bad entry."""

    checked: int
    problem: ChainProblem | None
    head: tuple[int, str] | None

    @property
    def intact(self) -> bool:
        return self.problem is None


Verifier = Callable[[bytes, bytes], bool]  # (signature, message) -> valid


def entry_problem(
    entry: AuditEntry, expected_seq: int | None, expected_prev: str | None, verify_signature: Verifier
) -> str | None:
    """Why ``entry`` does not fit where it stands in the chain, or ``None`` when it does."""
    if expected_seq is not None and entry.seq != expected_seq:
        if entry.seq > expected_seq:
            return f"expected seq {expected_seq}: an entry before it was removed or reordered"
        return f"expected seq {expected_seq}: entries are out of order or duplicated"
    if expected_prev is not None and entry.prev_hash != expected_prev:
        return "its prev_hash does not match the previous entry's hash (an entry before it was removed, "\
            "reordered or changed)"
    try:
        changed = entry.body is not None and body_hash(entry.body) != entry.body_hash
    except rfc8785.CanonicalizationError:  # a number JSON holds but JCS cannot (never sealed so)
        return "its body holds a number outside the range an entry can hold (the entry was changed)"
    if changed:
        return "its body does not match its body_hash (the entry was changed)"
    if entry_hash(entry.seq, entry.prev_hash, entry.body_hash) != entry.entry_hash:
        return "its entry_hash does not match its seq, prev_hash and body_hash (the entry was changed)"
    try:
        signature = _b64url_decode(entry.signature)
    except (ValueError, TypeError):
        return "its signature is not base64url"
    if not verify_signature(signature, signing_input(entry.entry_hash)):
        return "its signature does not verify with the signer's key (forged or re-hashed)"
    return None


def verify_chain(
    entries: Iterable[AuditEntry],
    verify_signature: Verifier,
    start_prev_hash: str | None = GENESIS_HASH,
    start_seq: int | None = 1,
) -> ChainReport:
    """Check hashes, links, sequence and signatures, stopping at the first bad entry.

    ``start_prev_hash``/``start_seq`` say where the chain should begin (the genesis by default);
    pass ``None`` to accept whatever the first entry links to (a log read from a later point).
    """
    expected_prev = start_prev_hash
    expected_seq = start_seq
    head: tuple[int, str] | None = None
    checked = 0
    for position, entry in enumerate(entries, start=1):
        reason = entry_problem(entry, expected_seq, expected_prev, verify_signature)
        if reason is not None:
            return ChainReport(checked, ChainProblem(entry.seq, position, reason), head)
        checked = position
        expected_prev = entry.entry_hash
        expected_seq = entry.seq + 1
        head = (entry.seq, entry.entry_hash)
    return ChainReport(checked, None, head)
