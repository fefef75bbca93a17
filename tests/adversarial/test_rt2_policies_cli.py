"""``sluis policy lint | explain`` given hostile files: a named reason and exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sluis.cli import main

ALICE = "did:web:alice.example"
DATASET = "urn:dataset:cohort"
OFFER = {
    "@id": "urn:policy:cli",
    "@type": "Offer",
    "permission": [
        {
            "action": "use",
            "constraint": [{"leftOperand": "payAmount", "operator": "lteq", "rightOperand": 10}],
        }
    ],
}


def _write(folder: Path, name: str, content: Any) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


_HEAD = f'{{"assignee": "{ALICE}", "action": "use", "target": "{DATASET}", "context": {{"payAmount": '
_LONG = "1" + "0" * 5000
_DEEP = "[" * 100_000 + "1" + "]" * 100_000


@pytest.mark.parametrize(
    ("request_text", "world_text"),
    [
        # An integer literal longer than Python converts (a ValueError, not a JSONDecodeError).
        (_HEAD + _LONG + "}}", None),
        (None, '{"now": "2025-01-01T00:00:00Z", "counts": {"x": ' + _LONG + "}}"),
        # Nesting deeper than the JSON reader recurses.
        (_HEAD + _DEEP + "}}", None),
    ],
    ids=["long-int-request", "long-int-world", "deep-request"],
)
def test_unreadable_request_or_world_exits_2_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], request_text: str | None, world_text: str | None
) -> None:
    policy = _write(tmp_path, "offer.json", OFFER)
    plain = {"assignee": ALICE, "action": "use", "target": DATASET, "context": {"payAmount": 1}}
    request = _write(tmp_path, "request.json", request_text or plain)
    argv = ["policy", "explain", "--policy", str(policy), "--request", str(request)]
    if world_text is not None:
        argv += ["--world", str(_write(tmp_path, "world.json", world_text))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "request" in err or "world" in err


def test_explain_says_why_an_unsupported_unit_denies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    offer = json.loads(json.dumps(OFFER))
    offer["permission"][0]["constraint"][0]["unit"] = "http://dbpedia.org/resource/Euro"
    policy = _write(tmp_path, "offer.json", offer)
    request = _write(
        tmp_path,
        "request.json",
        {"assignee": ALICE, "action": "use", "target": DATASET, "context": {"payAmount": 1}},
    )
    assert main(["policy", "explain", "--policy", str(policy), "--request", str(request)]) == 0
    out = capsys.readouterr().out
    assert "Euro" in out
    assert "unit" in out
    assert main(["policy", "lint", str(policy)]) == 1
    assert "unsupported-unit" in capsys.readouterr().out


def test_lint_names_a_misspelt_prohibition_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = _write(tmp_path, "offer.json", {**OFFER, "prohibitions": [{"action": "use"}]})
    assert main(["policy", "lint", str(policy)]) != 0
    out = capsys.readouterr().out
    assert "unknown-property" in out
    assert "prohibitions" in out
