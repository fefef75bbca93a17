"""Audit exports for compliance officers: JSON Lines with a signed header, verifiable offline.

The provider's export holds every entry. A consumer's export holds the *whole chain* too, but
bodies about other consumers are redacted (only their ``body_hash`` stays), so the consumer's
officer can check that nothing about their reads was changed, removed or reordered without
seeing anyone else's activity. The header names the signer's public key and the chain head,
and is itself signed, so a truncated export is detected. The header also commits to which
entries are redacted (their count and a digest of their seqs): redaction keeps the chain
verifiable, so without that commitment anyone passing the file on could redact an entry to hide
it. A provider's export redacts nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connector.audit.chain import AuditEntry, ChainProblem, ChainReport, verify_chain
from connector.audit.errors import AuditError
from connector.audit.log import AuditLog, Signer
from connector.identity.keys import public_key_from_multibase, verify_signature
from vocab.jsonobjects import unique_keys

EXPORT_TYPE = "sluis-audit-export"
EXPORT_VERSION = 1
HEADER_SIGNING_PREFIX = b"sluis-audit-head-v1:"
# One exported line is one entry (a few KB at most); a longer line is not ours.
MAX_LINE_BYTES = 256 * 1024


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def redactions_digest(seqs: Iterable[int]) -> str:
    """What the header commits to about redactions: a digest of the redacted entries' seqs."""
    return hashlib.sha256(",".join(str(seq) for seq in sorted(seqs)).encode("ascii")).hexdigest()


def _header_signing_input(header: dict[str, Any]) -> bytes:
    unsigned = {key: value for key, value in header.items() if key != "signature"}
    return HEADER_SIGNING_PREFIX + rfc8785.dumps(unsigned)


@dataclass(frozen=True)
class ExportSummary:
    entries: int
    redacted: int
    head: tuple[int, str] | None


def export_log(
    log: AuditLog,
    out: IO[str],
    key: Signer,
    public_multibase: str,
    signer_id: str,
    consumer_id: str | None = None,
    now: datetime | None = None,
) -> ExportSummary:
    """Write the chain to ``out``; with ``consumer_id``, other consumers' bodies are redacted."""
    entries = list(log.entries())
    redacted: list[int] = []
    lines: list[str] = []
    for entry in entries:
        shown = entry
        if consumer_id is not None and (entry.body or {}).get("consumer_id") != consumer_id:
            shown = entry.redacted()
            redacted.append(entry.seq)
        lines.append(json.dumps(shown.to_json(), sort_keys=True, ensure_ascii=False))
    head = (entries[-1].seq, entries[-1].entry_hash) if entries else None
    header: dict[str, Any] = {
        "type": EXPORT_TYPE,
        "version": EXPORT_VERSION,
        "scope": "consumer" if consumer_id is not None else "provider",
        "consumer": consumer_id,
        "signer": signer_id,
        "publicKeyMultibase": public_multibase,
        "exported_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "entries": len(entries),
        "head": {"seq": head[0], "entry_hash": head[1]} if head else None,
        "redacted": len(redacted),
        "redacted_seqs_sha256": redactions_digest(redacted),
    }
    header["signature"] = _b64url(key.sign(_header_signing_input(header)))
    out.write(json.dumps(header, sort_keys=True, ensure_ascii=False) + "\n")
    for line in lines:
        out.write(line + "\n")
    return ExportSummary(len(entries), len(redacted), head)


@dataclass(frozen=True)
class ExportVerification:
    """What ``verify_export`` found: the chain report plus header checks."""

    report: ChainReport
    header: dict[str, Any]
    key_source: str
    redacted: int
    notes: tuple[str, ...] = field(default=())

    @property
    def intact(self) -> bool:
        return self.report.intact


def _read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as error:
        raise AuditError("export_unreadable", f"cannot read {path}: {error.strerror}") from None
    with handle:
        for number, line in _numbered(handle, path):
            if len(line) > MAX_LINE_BYTES:
                raise AuditError("bad_export", f"line {number} is longer than {MAX_LINE_BYTES} bytes")
            if not line.strip():
                continue
            try:
                data = json.loads(line, object_pairs_hook=unique_keys)
            except json.JSONDecodeError as error:
                raise AuditError("bad_export", f"line {number} is not JSON: {error.msg}") from None
            except (ValueError, RecursionError) as error:  # a repeated key, a too-long integer
                raise AuditError(
                    "bad_export", f"line {number} is not readable JSON: {str(error)[:200]}"
                ) from None
            if not isinstance(data, dict):
                raise AuditError("bad_export", f"line {number} is not a JSON object")
            yield number, data


def _numbered(handle: IO[str], path: Path) -> Iterator[tuple[int, str]]:
    try:
        yield from enumerate(handle, start=1)
    except UnicodeDecodeError:
        raise AuditError("bad_export", f"{path} is not UTF-8 text") from None


def _header_signature_ok(header: dict[str, Any], check: Any) -> bool:
    """Whether the header's signature verifies; ``False`` for one that is not even base64url."""
    signature = header.get("signature")
    if not isinstance(signature, str):
        return False
    try:
        return bool(check(_b64url_decode(signature), _header_signing_input(header)))
    except (ValueError, binascii.Error):  # not base64url, or a number JCS cannot hold
        return False


def public_key_verifier(public_key: Ed25519PublicKey) -> Any:
    def check(signature: bytes, message: bytes) -> bool:
        return verify_signature(public_key, signature, message)

    return check


def verify_export(path: Path, public_multibase: str | None = None) -> ExportVerification:
    """Check an export file offline. ``public_multibase`` pins the provider's key; without it
    the key named in the header is used (which proves integrity, not who signed)."""
    lines = _read_lines(path)
    try:
        _, header = next(lines)
    except StopIteration:
        raise AuditError("bad_export", f"{path} is empty") from None
    if header.get("type") != EXPORT_TYPE or header.get("version") != EXPORT_VERSION:
        raise AuditError("bad_export", f"{path} is not a {EXPORT_TYPE} version {EXPORT_VERSION} file")
    named = header.get("publicKeyMultibase")
    key_text = public_multibase or (named if isinstance(named, str) else None)
    if key_text is None:
        raise AuditError("bad_export", "the header names no publicKeyMultibase; pass --key")
    try:
        public_key = public_key_from_multibase(key_text)
    except Exception as error:
        raise AuditError("bad_key", f"not an Ed25519 Multikey: {error}") from None
    notes: list[str] = []
    if public_multibase and named and named != public_multibase:
        notes.append("the header names a different key than the one given with --key")
    check = public_key_verifier(public_key)
    header_ok = _header_signature_ok(header, check)

    entries: list[AuditEntry] = []
    for number, data in lines:
        try:
            entries.append(AuditEntry.from_json(data))
        except ValueError as error:
            seq = data.get("seq")
            shown = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
            problem = ChainProblem(shown, len(entries) + 1, f"line {number}: {error}")
            return ExportVerification(ChainReport(len(entries), problem, None), header,
                                      key_text, 0, tuple(notes))
    redacted = sum(1 for entry in entries if entry.body is None)
    report = verify_chain(entries, check)
    if report.intact:
        reason = _header_problem(header, header_ok, report.head) or _redaction_problem(header, entries)
        if reason is not None:
            last_seq = entries[-1].seq if entries else 0
            report = ChainReport(report.checked, ChainProblem(last_seq, len(entries), reason), report.head)
    source = "--key" if public_multibase else "the export header (pin it with --key)"
    return ExportVerification(report, header, source, redacted, tuple(notes))


def _header_problem(header: dict[str, Any], signature_ok: bool, head: tuple[int, str] | None) -> str | None:
    if not signature_ok:
        return "the export header's signature does not verify (header changed or wrong key)"
    named = header.get("head")
    expected = (named.get("seq"), named.get("entry_hash")) if isinstance(named, dict) else None
    if expected != head:
        return f"the chain ends at {head} but the signed header says the head is {expected} " \
            "(entries were removed from the end)"
    return None


def _redaction_problem(header: dict[str, Any], entries: list[AuditEntry]) -> str | None:
    """Why the redacted entries are not the ones the signed header commits to, if they are not."""
    redacted = [entry.seq for entry in entries if entry.body is None]
    if header.get("scope") != "consumer" and redacted:
        return f"a provider's export redacts nothing, but entry seq {redacted[0]} is redacted (hidden)"
    if "redacted_seqs_sha256" not in header:
        return None  # an export made before headers committed to redactions (signed as it is)
    committed = (header.get("redacted"), header.get("redacted_seqs_sha256"))
    if committed != (len(redacted), redactions_digest(redacted)):
        return (f"{len(redacted)} entries are redacted, not the ones the signed header commits to "
                "(an entry was redacted to hide it, or a redacted one was filled in)")
    return None
