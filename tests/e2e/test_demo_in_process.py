"""``sluis demo`` end to end, in this process: every step runs and every expectation holds.

The demo checks itself (exit 1 when an expected denial is not denied); this test also reads the
evidence it leaves behind, independently of the demo's own checks.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from connector.audit import verify_export
from connector.config import load_config
from connector.identity import verify_agreement
from sluis import demo
from sluis.cli import main


def test_demo_walks_a_newcomer_through_the_whole_data_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "space"

    code = main(["demo", "--dir", str(folder), "--once"])

    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    headings = re.findall(r"^(\d)\. ", out, flags=re.MULTILINE)
    assert headings == ["1", "2", "3", "4", "5", "6", "7"]
    assert "[FAILED]" not in out
    assert re.search(r"All \d+ checks held", out)
    assert "rejected: HTTP 422" in out
    assert "contract negotiation FINALIZED over DSP 2025-1" in out
    assert "HTTP 403 [policy_denied]" in out  # the forbidden column, with the policy's explanation
    assert "household_id" in out
    assert "HTTP 403 [table_function]" in out  # read_parquet around the view

    bundle = json.loads((folder / "agreement-bundle.json").read_text())
    assert verify_agreement(bundle).valid

    provider_key = load_config(folder / "provider" / "connector.toml").load_key().public_multibase
    export = verify_export(folder / "audit-export.jsonl", provider_key)
    assert export.report.intact
    assert export.report.checked >= 7  # 3 reads + at least 4 denials, each one entry
    tampered = verify_export(folder / "audit-export-tampered.jsonl", provider_key)
    assert not tampered.report.intact

    lineage = json.loads((folder / "lineage.jsonld").read_text())
    reads = [node for node in lineage["@graph"] if "checksum" in node]
    assert len(reads) == 3
    assert all(len(node["checksum"]["checksumValue"]) == 64 for node in reads)
    assert not any("household_id" in str(node.get("query", "")) for node in reads)


def test_demo_refuses_a_folder_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "something.txt").write_text("keep me")

    code = main(["demo", "--dir", str(tmp_path), "--once"])

    assert code == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "something.txt").read_text() == "keep me"


def test_demo_fails_when_a_read_it_expects_denied_is_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider who forgets the column constraint: the demo must notice and exit 1."""
    forgetful = demo.contract_policy()
    rules = forgetful["permission"][0]
    rules["constraint"] = [c for c in rules["constraint"] if c["leftOperand"] != "sluis:columns"]
    monkeypatch.setattr(demo, "contract_policy", lambda: forgetful)
    out = io.StringIO()

    code = demo.run_demo(tmp_path / "space", keep=True, out=out)

    text = out.getvalue()
    assert code == 1
    assert "[FAILED] denied: the read was allowed" in text
    assert "[FAILED] every row, but the view has no household_id column" in text
    assert "the demo stopped" not in text  # every later step still ran and held
    assert "FAILED: 2 of" in text
