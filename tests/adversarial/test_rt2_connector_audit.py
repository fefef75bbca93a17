"""Someone between the provider and a compliance officer edits an audit export.

The export is a signed header and a hash chain; a body may be *redacted* (only its hash kept)
so a consumer's export does not show other consumers' reads. Redaction keeps the chain
verifiable by design, so it must not be a way to hide an entry: a provider's export redacts
nothing, and a consumer's export redacts exactly the entries the signed header says. A file
edited into something that is not an export at all must be reported as such (a finding, exit
code 1 or a named error), never crash the verifier with a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector.audit import AuditError, AuditLog, export_log, verify_export
from connector.database import Database
from connector.identity import KeyPair
from sluis.cli import main as sluis_main

ALICE = "did:web:alice.example"
BOB = "did:web:bob.example"
SIGNER = "did:web:provider.example#key-1"


@pytest.fixture
def signed(tmp_path: Path) -> tuple[AuditLog, KeyPair]:
    key = KeyPair.generate()
    log = AuditLog(Database(f"sqlite:///{tmp_path / 'audit.db'}"), key, SIGNER)
    for number, consumer in enumerate((ALICE, BOB, ALICE, BOB, ALICE), start=1):
        log.append({"kind": "read", "decision": "permit", "consumer_id": consumer, "rows": number})
    return log, key


def _export(log: AuditLog, key: KeyPair, path: Path, consumer: str | None = None) -> list[dict[str, Any]]:
    with path.open("w", encoding="utf-8") as out:
        export_log(log, out, key, key.public_multibase, SIGNER, consumer_id=consumer)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def _redact(line: dict[str, Any]) -> dict[str, Any]:
    shown = {key: value for key, value in line.items() if key != "body"}
    return {**shown, "redacted": True}


def test_a_providers_export_cannot_hide_an_entry_by_redacting_it(
    signed: tuple[AuditLog, KeyPair], tmp_path: Path
) -> None:
    log, key = signed
    lines = _export(log, key, tmp_path / "all.jsonl")
    lines[3] = _redact(lines[3])
    report = verify_export(_write(tmp_path / "hidden.jsonl", lines), key.public_multibase)
    assert not report.intact, "a redacted entry in a provider's export verified as intact"
    assert report.report.problem is not None
    assert "redact" in report.report.problem.reason


def test_a_consumers_export_cannot_hide_one_of_its_own_entries(
    signed: tuple[AuditLog, KeyPair], tmp_path: Path
) -> None:
    log, key = signed
    lines = _export(log, key, tmp_path / "alice.jsonl", ALICE)
    assert verify_export(tmp_path / "alice.jsonl", key.public_multibase).intact
    own = [index for index, line in enumerate(lines[1:], start=1) if "body" in line]
    assert len(own) == 3
    lines[own[1]] = _redact(lines[own[1]])
    report = verify_export(_write(tmp_path / "hidden.jsonl", lines), key.public_multibase)
    assert not report.intact, "one of alice's own reads was redacted and the export still verified"


def test_a_consumers_export_cannot_unredact_into_a_forged_body(
    signed: tuple[AuditLog, KeyPair], tmp_path: Path
) -> None:
    log, key = signed
    lines = _export(log, key, tmp_path / "alice.jsonl", ALICE)
    hidden = next(index for index, line in enumerate(lines[1:], start=1) if line.get("redacted"))
    lines[hidden] = {**lines[hidden], "body": {"kind": "read", "consumer_id": BOB}}
    lines[hidden].pop("redacted")
    assert not verify_export(_write(tmp_path / "forged.jsonl", lines), key.public_multibase).intact


MALFORMED_ENTRY: list[dict[str, Any]] = [
    {"seq": "one"},
    {"seq": [1]},
    {"seq": {"n": 1}},
    {"seq": 2**80},
    {"seq": -1},
    {"signature": "!!not base64!!"},
    {"signature": "é"},
    {"body": {"rows": 2**80}},
    {"body": {"rows": 1e308 * 10}},
    {"body": ["not", "an", "object"]},
    {"prev_hash": None},
]


@pytest.mark.parametrize("change", MALFORMED_ENTRY, ids=lambda change: json.dumps(change)[:40])
def test_a_malformed_entry_is_a_finding_not_a_crash(
    signed: tuple[AuditLog, KeyPair], tmp_path: Path, change: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log, key = signed
    lines = _export(log, key, tmp_path / "all.jsonl")
    lines[2] = {**lines[2], **change}
    path = _write(tmp_path / "edited.jsonl", lines)
    report = verify_export(path, key.public_multibase)
    assert not report.intact
    assert sluis_main(["audit", "verify", str(path), "--key", key.public_multibase]) == 1
    assert "TAMPERED" in capsys.readouterr().out


MALFORMED_HEADER: list[dict[str, Any]] = [
    {"signature": "!!not base64!!"},
    {"signature": "é"},
    {"signature": 7},
    {"head": "seq 5"},
    {"head": {"seq": [5], "entry_hash": {}}},
    {"entries": 2**80},
]


@pytest.mark.parametrize("change", MALFORMED_HEADER, ids=lambda change: json.dumps(change)[:40])
def test_a_malformed_header_is_a_finding_not_a_crash(
    signed: tuple[AuditLog, KeyPair], tmp_path: Path, change: dict[str, Any]
) -> None:
    log, key = signed
    lines = _export(log, key, tmp_path / "all.jsonl")
    lines[0] = {**lines[0], **change}
    path = _write(tmp_path / "edited.jsonl", lines)
    try:
        report = verify_export(path, key.public_multibase)
    except AuditError:
        return  # a named refusal is fine
    assert not report.intact


@pytest.mark.parametrize("text", [
    "[]\n",
    "null\n",
    '{"type": "sluis-audit-export", "version": 1, "publicKeyMultibase": 5}\n',
    '{"type": "sluis-audit-export", "version": 1, "publicKeyMultibase": "z6Mk"}\n',
    '{"type": "sluis-audit-export", "version": 1}\n',
    "\ud800".encode("utf-8", "surrogatepass").decode("latin-1") + "\n",
    "\x00\n",
])
def test_a_file_that_is_no_export_is_refused_by_name(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text(text, encoding="latin-1")
    with pytest.raises(AuditError):
        verify_export(path)
