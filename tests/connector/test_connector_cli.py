"""``sluis connector assets|policies|offers|negotiations|agreements|transfers``: an operator runs a
whole exchange between two real connectors without writing a line of JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sluis.cli import main
from tests.connector.dsp_world import (
    RESEARCH,
    Authority,
    make_party,
    members_only,
    research_offer,
    running,
    wait_for_state,
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_an_operator_offers_negotiates_and_transfers_from_the_command_line(
    tmp_path: Path,
    authority: Authority,
    storage_urls: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    (provider.root / "data" / "cohort.csv").write_text("age,region\n34,NL-NH\n51,NL-UT\n")
    (tmp_path / "access.json").write_text(json.dumps(members_only()))
    (tmp_path / "contract.json").write_text(json.dumps(research_offer()))
    p = ("--config", str(provider.config_path))
    c = ("--config", str(consumer.config_path))
    with running(provider), running(consumer):
        _run(
            capsys,
            "connector",
            "assets",
            "add",
            "urn:sluis:dataset:cohort",
            "--title",
            "Cohort",
            "--kind",
            "csv",
            "--path",
            "cohort.csv",
            *p,
        )
        for name in ("access", "contract"):
            _run(capsys, "connector", "policies", "add", name, "--file", str(tmp_path / f"{name}.json"), *p)
        _run(
            capsys,
            "connector",
            "offers",
            "add",
            "cd-1",
            "--access",
            "access",
            "--contract",
            "contract",
            "--asset",
            "urn:sluis:dataset:cohort",
            *p,
        )
        listed = _run(capsys, "connector", "assets", "list", *p)
        assert "urn:sluis:dataset:cohort" in listed
        assert "Cohort" in listed

        started = json.loads(
            _run(
                capsys,
                "connector",
                "negotiations",
                "start",
                "--provider",
                provider.dsp,
                "--provider-id",
                provider.did,
                "--dataset",
                "urn:sluis:dataset:cohort",
                "--purpose",
                RESEARCH,
                *c,
            )
        )
        done = wait_for_state(consumer, "negotiations", started["id"], "FINALIZED", "TERMINATED")
        assert done["state"] == "FINALIZED", done
        table = _run(capsys, "connector", "negotiations", "list", "--state", "finalized", *c)
        assert started["id"] in table
        agreements = json.loads(_run(capsys, "connector", "agreements", "list", "--json", *c))
        assert [a["id"] for a in agreements] == [done["agreement_id"]]

        transfer = json.loads(
            _run(
                capsys,
                "connector",
                "transfers",
                "start",
                "--agreement",
                done["agreement_id"],
                "--provider",
                provider.dsp,
                "--format",
                "push",
                "--job-id",
                "job-cli",
                "--purpose",
                RESEARCH,
                *c,
            )
        )
        finished = wait_for_state(consumer, "transfers", transfer["id"], "COMPLETED", "TERMINATED")
        assert finished["state"] == "COMPLETED", finished
        shown = _run(capsys, "connector", "transfers", "list", "--state", "completed", *c)
        assert transfer["id"] in shown
        assert "HttpData-PUSH" in shown

        ended = json.loads(
            _run(
                capsys,
                "connector",
                "agreements",
                "terminate",
                done["agreement_id"],
                "--reason",
                "study over",
                *p,
            )
        )
        assert ended["terminated"] is True
        # a refusal is printed with its reason, exit code 2
        capsys.readouterr()
        assert (
            main(
                [
                    "connector",
                    "transfers",
                    "start",
                    "--agreement",
                    done["agreement_id"],
                    "--provider",
                    provider.dsp,
                    *c,
                ]
            )
            == 2
        )
        assert "terminated" in capsys.readouterr().err
