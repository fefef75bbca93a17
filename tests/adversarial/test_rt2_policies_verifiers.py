"""The offline verifiers a compliance officer runs: ``sluis agreement verify`` and ``sluis audit verify``.

A file that names one key twice in an object is read differently by different JSON readers
(first or last value wins), so it could verify with one set of terms and be shown by another
tool with the other: it must be reported, never accepted. A number too long to convert, or
nesting too deep, is a named error, not a traceback.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from connector.audit import AuditError, AuditLog, export_log, verify_export
from connector.database import Database
from connector.identity import KeyPair, verify_agreement
from sluis.cli import main
from tests.identity.test_agreements import signed_bundle

SIGNER = "did:web:provider.example#key-1"


def _bundle_text_with_a_second_value(bundle: dict[str, Any]) -> str:
    """The signed bundle, with an earlier ``permission`` key widening the terms: a reader that
    keeps the first value sees no constraint; one that keeps the last sees the signed terms."""
    text = json.dumps(bundle)
    return text.replace('"permission": [', '"permission": [{"action": "use"}], "permission": [', 1)


def test_agreement_verify_reports_a_repeated_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = signed_bundle()
    assert verify_agreement(copy.deepcopy(bundle)).valid
    path = tmp_path / "bundle.json"
    path.write_text(_bundle_text_with_a_second_value(bundle), encoding="utf-8")
    assert main(["agreement", "verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert "permission" in err
    assert "twice" in err


@pytest.mark.parametrize(
    "text", ['{"type": 1' + "0" * 5000 + "}", "[" * 100_000 + "]" * 100_000], ids=["long-int", "deep"]
)
def test_agreement_verify_names_unreadable_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(text, encoding="utf-8")
    assert main(["agreement", "verify", str(path)]) == 2
    assert "not JSON" in capsys.readouterr().err


@pytest.fixture
def export(tmp_path: Path) -> tuple[list[str], KeyPair]:
    key = KeyPair.generate()
    log = AuditLog(Database(f"sqlite:///{tmp_path / 'audit.db'}"), key, SIGNER)
    for number in range(1, 5):
        log.append({"kind": "read", "decision": "permit", "consumer_id": "did:web:a.example", "rows": number})
    path = tmp_path / "export.jsonl"
    with path.open("w", encoding="utf-8") as out:
        export_log(log, out, key, key.public_multibase, SIGNER)
    return path.read_text(encoding="utf-8").splitlines(), key


def _edited(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "edited.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("where", ["first", "last"])
def test_audit_verify_reports_an_entry_with_two_bodies(
    export: tuple[list[str], KeyPair], tmp_path: Path, where: str
) -> None:
    lines, key = export
    forged = '"body": {"kind": "read", "decision": "deny"}'
    entry = lines[2]
    lines[2] = "{" + forged + ", " + entry[1:] if where == "first" else entry[:-1] + ", " + forged + "}"
    with pytest.raises(AuditError) as caught:
        verify_export(_edited(tmp_path, lines), key.public_multibase)
    assert "twice" in str(caught.value)


def test_audit_verify_reports_a_number_too_long_to_read(
    export: tuple[list[str], KeyPair], tmp_path: Path
) -> None:
    lines, key = export
    lines[2] = lines[2][:-1] + ', "x": 1' + "0" * 5000 + "}"
    with pytest.raises(AuditError) as caught:
        verify_export(_edited(tmp_path, lines), key.public_multibase)
    assert "line 3" in str(caught.value)


@pytest.mark.parametrize(
    "edit",
    [
        lambda lines: lines[:-1],  # truncated at the tail
        lambda lines: [*lines[:3], lines[2], *lines[3:]],  # an entry duplicated
        lambda lines: [lines[0], lines[2], lines[1], *lines[3:]],  # reordered
    ],
    ids=["truncated", "duplicated", "reordered"],
)
def test_audit_verify_reports_a_cut_or_shuffled_chain(
    export: tuple[list[str], KeyPair], tmp_path: Path, edit: Any
) -> None:
    lines, key = export
    assert verify_export(_edited(tmp_path, lines), key.public_multibase).intact
    assert not verify_export(_edited(tmp_path, edit(lines)), key.public_multibase).intact
