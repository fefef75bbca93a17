"""The connector's published OpenAPI document says what the server really does: schemathesis runs
against a real connector (DSP, management API with its token, data plane) from the document it
publishes, and finds no status, media type, body or ``Allow`` the document does not describe."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.catalogue.test_catalogue_openapi import run_schemathesis
from tests.robustness.worlds import lone_connector


def test_schemathesis_finds_nothing_the_connector_document_does_not_describe(tmp_path: Path) -> None:
    with lone_connector(tmp_path / "world") as party:
        document = httpx.get(f"{party.url}/openapi.json", timeout=30).json()
        request = document["paths"]["/dsp/negotiations/request"]["post"]
        assert request["requestBody"]["content"]["application/json"]["schema"]["properties"]["@type"] == {
            "type": "string",
            "const": "ContractRequestMessage",
        }
        assert "code" in request["responses"]["409"]["content"]["application/json"]["schema"]["properties"]
        run = run_schemathesis(
            f"{party.url}/openapi.json", tmp_path, f"Authorization: Bearer {party.config.management.token}"
        )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
