"""The catalogue's published OpenAPI document says what the server really does: schemathesis runs
against a real node from the document it publishes (every status, media type, body and header
must match it; a 405 must carry the right ``Allow``), and the document names what routes read
by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.catalogue.catalogue_records import dataset_turtle
from tests.catalogue.conftest import RunningNode

# Examples per operation and phase: enough for boundary values, small enough for ~a minute.
EXAMPLES = 25
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "unsupported_method",
        "allow_header_conformance",
    ]
)


def run_schemathesis(document_url: str, workdir: Path, *headers: str) -> subprocess.CompletedProcess[str]:
    """``st run`` on a published document (its cache goes to ``workdir``); shared with the
    connector's test."""
    arguments = [sys.executable, "-m", "schemathesis.cli", "run", document_url]
    for header in headers:
        arguments += ["-H", header]
    arguments += ["-c", CHECKS, "-n", str(EXAMPLES), "--seed", "20261206", "--no-color", "-w", "1"]
    return subprocess.run(arguments, capture_output=True, text=True, timeout=900, cwd=workdir, check=False)


def test_schemathesis_finds_nothing_the_published_document_does_not_describe(
    catalogue_node: RunningNode, tmp_path: Path
) -> None:
    assert catalogue_node.publish(dataset_turtle("grid-load")).status_code == 201
    run = run_schemathesis(
        f"{catalogue_node.url}/openapi.json", tmp_path, f"Authorization: Bearer {catalogue_node.token}"
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


def test_the_document_names_bodies_parameters_and_problems_routes_handle_by_hand(
    catalogue_node: RunningNode,
) -> None:
    document = catalogue_node.client.get("/openapi.json").json()
    paths = document["paths"]
    publish = paths["/catalogue/datasets"]["post"]
    assert set(publish["requestBody"]["content"]) == {
        "text/turtle",
        "application/ld+json",
        "application/rdf+xml",
        "application/n-triples",
    }
    assert {"201", "400", "401", "403", "409", "413", "415", "422"} <= set(publish["responses"])
    assert "application/problem+json" in publish["responses"]["422"]["content"]
    search = {parameter["name"] for parameter in paths["/catalogue/search"]["get"]["parameters"]}
    assert {"q", "theme", "publisher", "format", "license", "quality_band"} <= search
    sparql = paths["/catalogue/sparql"]
    assert [parameter["name"] for parameter in sparql["get"]["parameters"]] == ["query"]
    assert {"application/sparql-query", "application/x-www-form-urlencoded"} <= set(
        sparql["post"]["requestBody"]["content"]
    )
    assert {"400", "403", "413", "422", "429"} <= set(sparql["get"]["responses"])
    for item in paths.values():
        for operation in item.values():
            assert "HTTPValidationError" not in str(operation), "a 422 the server never sends"


def test_a_405_names_every_method_of_the_path(catalogue_node: RunningNode) -> None:
    reply = httpx.patch(f"{catalogue_node.url}/catalogue/datasets/some-record")
    assert reply.status_code == 405
    assert reply.headers["allow"] == "DELETE, GET, HEAD, PUT"
    assert reply.headers["content-type"].startswith("application/problem+json")
    reply = httpx.delete(f"{catalogue_node.url}/catalogue/search")
    assert reply.headers["allow"] == "GET, HEAD"
