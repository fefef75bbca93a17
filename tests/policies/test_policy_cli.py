"""``sluis policy evaluate | explain | lint`` as scripts use them: files in, report out, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policies import templates, to_dsp_json
from sluis.cli import main
from tests.policies.policy_builders import ALICE, DATASET, PURPOSE

REPO = Path(__file__).resolve().parents[2]


def _write(folder: Path, name: str, content: Any) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    offer = templates.combine(
        "urn:offer:cli", templates.research_only("urn:a"), templates.max_reads("urn:b", 2)
    )
    return {
        "policy": _write(tmp_path, "offer.json", to_dsp_json(offer)),
        "request": _write(
            tmp_path,
            "request.json",
            {
                "assignee": ALICE,
                "action": "read",
                "target": DATASET,
                "context": {"purpose": PURPOSE + "ai-training"},
            },
        ),
        "good_request": _write(
            tmp_path,
            "good.json",
            {
                "assignee": ALICE,
                "action": "read",
                "target": DATASET,
                "context": {"purpose": PURPOSE + "scientific-research"},
            },
        ),
        "world": _write(tmp_path, "world.json", {"now": "2025-06-01T00:00:00Z", "counts": {DATASET: 1}}),
        "tmp": tmp_path,
    }


def test_evaluate_prints_the_json_report_and_exits_zero_on_deny(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "policy",
            "evaluate",
            "--policy",
            str(files["policy"]),
            "--request",
            str(files["request"]),
            "--world",
            str(files["world"]),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["decision"] == "deny"
    assert report["rules"][0]["rule"] == "urn:offer:cli/permission/0"
    assert report["rules"][0]["active"] is False


def test_evaluate_permits_and_prints_turtle(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "policy",
            "evaluate",
            "--policy",
            str(files["policy"]),
            "--request",
            str(files["good_request"]),
            "--world",
            str(files["world"]),
            "--format",
            "turtle",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "report:PolicyReport" in out
    assert '"permit"' in out


def test_evaluate_accepts_an_odrl_request_in_turtle(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    request = _write(
        files["tmp"],
        "request.ttl",
        f"""
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
<urn:request:1> a odrl:Request ;
  odrl:permission [ odrl:assignee <{ALICE}> ; odrl:action odrl:read ; odrl:target <{DATASET}> ;
    odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ;
                      odrl:rightOperand <{PURPOSE}scientific-research> ] ] .
""",
    )
    assert (
        main(
            [
                "policy",
                "evaluate",
                "--policy",
                str(files["policy"]),
                "--request",
                str(request),
                "--world",
                str(files["world"]),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["decision"] == "permit"


def test_explain_prints_sentences(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["policy", "explain", "--policy", str(files["policy"]), "--request", str(files["request"])]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("Decision: DENY.")
    assert "purpose isA" in out


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("policy", '{"@type": "Offer", "permission": [{"action": "use"}]}', "missing-uid"),
        ("policy", "{not json", "malformed JSON"),
        ("request", '{"assignee": "a", "action": 3, "target": "t"}', "'action'"),
        ("world", '{"now": "yesterday"}', "xsd:dateTime"),
        ("world", '{"duties": {"urn:d": "maybe"}}', "fulfilled"),
        ("world", '{"clock": 1}', "unknown keys"),
    ],
)
def test_invalid_input_exits_two_with_the_reason_on_stderr(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    paths = {key: files[key] for key in ("policy", "request", "world")}
    paths[name] = _write(files["tmp"], f"bad-{name}.json", content)
    code = main(
        [
            "policy",
            "evaluate",
            "--policy",
            str(paths["policy"]),
            "--request",
            str(paths["request"]),
            "--world",
            str(paths["world"]),
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err


def test_missing_file_exits_two(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "lint", str(files["tmp"] / "absent.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_lint_exits_zero_when_clean_and_one_with_findings(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "lint", str(files["policy"])]) == 0
    bad = _write(
        files["tmp"],
        "bad.json",
        {
            "@id": "urn:p",
            "@type": "Set",
            "permission": [
                {
                    "action": "use",
                    "constraint": [{"leftOperand": "partner", "operator": "eq", "rightOperand": "x"}],
                }
            ],
        },
    )
    capsys.readouterr()
    assert main(["policy", "lint", str(bad), "--format", "json"]) == 1
    codes = {f["code"] for f in json.loads(capsys.readouterr().out)}
    assert {"unknown-left-operand", "dsp-set-not-offer"} <= codes


def test_installed_sluis_command_runs_as_a_subprocess(files: dict[str, Path]) -> None:
    executable = Path(sys.executable).parent / "sluis"
    if not executable.exists():
        executable = REPO / ".venv" / "bin" / "sluis"
    result = subprocess.run(
        [
            str(executable),
            "policy",
            "evaluate",
            "--policy",
            str(files["policy"]),
            "--request",
            str(files["good_request"]),
            "--world",
            str(files["world"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decision"] == "permit"
    bad = subprocess.run(
        [str(executable), "policy", "lint", str(files["request"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode in (1, 2)
