"""Attacks around the reads: resetting counts, growing the audit log, steering the provider's
requests, half-sent results and inputs built to crash the server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from connector.dataplane import make_proof
from connector.identity import KeyPair, did_web_for, issue_token
from connector.jobs import JobError
from sluis.servers import free_port, serve_in_thread

from .conftest import DataSpace, research_permission

COUNT_TWO = {"leftOperand": "count", "operator": "lteq", "rightOperand": 2}
PER_AGREEMENT = {"leftOperand": "sluis:readScope", "operator": "eq", "rightOperand": "agreement"}


def test_negotiating_the_same_offer_again_does_not_reset_the_read_count(space: DataSpace) -> None:
    first = space.reader(space.transfer(space.agreement(research_permission(COUNT_TWO))))
    second = space.reader(space.transfer(space.agreement(research_permission(COUNT_TWO))))
    first.query("SELECT count(*) AS n FROM data")
    second.query("SELECT count(*) AS n FROM data")
    for reader in (first, second):
        with pytest.raises(JobError) as spent:
            reader.query("SELECT count(*) AS n FROM data")
        assert spent.value.status == 403
        assert spent.value.code in ("read_limit", "policy_denied")  # the count constraint fails
    # another consumer's count is its own
    bob = space.reader(space.transfer(space.agreement(research_permission(COUNT_TWO), "bob"), "bob"), "bob")
    assert bob.query("SELECT count(*) AS n FROM data").num_rows == 1


def test_a_limit_scoped_to_the_agreement_counts_per_agreement(space: DataSpace) -> None:
    readers = [space.reader(space.transfer(space.agreement(research_permission(COUNT_TWO, PER_AGREEMENT))))
               for _ in range(2)]
    for reader in readers:
        for _ in range(2):
            reader.query("SELECT count(*) AS n FROM data")
    with pytest.raises(JobError) as spent:
        readers[0].query("SELECT count(*) AS n FROM data")
    assert spent.value.code in ("read_limit", "policy_denied")


def _audit_length(space: DataSpace) -> int:
    return sum(1 for _ in space.plane.audit.entries())


def test_unauthenticated_requests_never_reach_the_signed_audit_log(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission()))
    address = space.plane.issue_access(transfer)
    before = _audit_length(space)
    url = address.endpoint + "/query"
    attempts: list[dict[str, str]] = [
        {},
        {"Authorization": "DPoP attacker-chosen-text"},
        {"Authorization": f"DPoP {address.token}"},  # no proof of possession
        {"Authorization": f"DPoP {address.token}", "DPoP": make_proof(KeyPair.generate(), "POST", url,
                                                                      address.token)},
    ]
    for headers in attempts:
        response = httpx.post(url, json={"sql": "SELECT 1"}, headers=headers)
        assert response.status_code == 401
    assert _audit_length(space) == before
    assert space.plane.unauthenticated_denials == len(attempts)
    # an authenticated denial is audited
    key = space.consumers["alice"].key
    signed = {"Authorization": f"DPoP {address.token}", "DPoP": make_proof(key, "POST", url, address.token)}
    assert httpx.post(url, json={"sql": "COPY data TO 'x'"}, headers=signed).status_code == 403
    assert _audit_length(space) == before + 1


@pytest.fixture
def listener() -> Iterator[list[str]]:
    """An HTTP server that records every request it gets (a DID host the attacker chose)."""
    seen: list[str] = []
    lock = threading.Lock()
    app = FastAPI()

    @app.get("/{path:path}")
    def anything(path: str, request: Request) -> dict[str, Any]:
        with lock:
            seen.append(str(request.url))
        return {}

    port = free_port()
    with serve_in_thread(app, port=port):
        seen.append(f"port:{port}")
        yield seen


def test_identity_tokens_of_others_are_refused_without_resolving_their_did(
    space: DataSpace, listener: list[str],
) -> None:
    port = int(listener.pop(0).split(":")[1])
    mallory = did_web_for("127.0.0.1", port, ["mallory"])
    transfer = space.transfer(space.agreement(research_permission()))
    address = space.plane.issue_access(transfer)
    url = address.endpoint + "/query"
    key = space.consumers["alice"].key
    identity = issue_token(KeyPair.generate(), mallory, space.base_url + "/data")
    headers = {"Authorization": f"DPoP {address.token}", "DPoP": make_proof(key, "POST", url, address.token),
               "Sluis-Identity": identity}
    response = httpx.post(url, json={"sql": "SELECT 1 AS x"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_holder"
    assert listener == []
    # with no valid access token, the identity token is never looked at either
    headers = {"Authorization": "DPoP nonsense", "Sluis-Identity": identity}
    assert httpx.post(url, json={"sql": "SELECT 1 AS x"}, headers=headers).status_code == 401
    assert listener == []


@pytest.mark.parametrize(("accept", "sql"), [
    ("text/csv", "SELECT [age, age] AS pair FROM data"),
    ("text/csv", "SELECT INTERVAL 3 DAY AS i FROM data"),
    ("application/vnd.apache.parquet", "SELECT INTERVAL 3 DAY AS i FROM data"),
])
def test_unsupported_output_types_are_refused_before_any_byte_and_uncounted(
    space: DataSpace, accept: str, sql: str,
) -> None:
    transfer = space.transfer(space.agreement(research_permission(COUNT_TWO)))
    address = space.plane.issue_access(transfer)
    url = address.endpoint + "/query"
    key = space.consumers["alice"].key
    for _ in range(3):
        headers = {"Authorization": f"DPoP {address.token}", "Accept": accept,
                   "DPoP": make_proof(key, "POST", url, address.token)}
        response = httpx.post(url, json={"sql": sql}, headers=headers)
        assert response.status_code == 406, response.text
        assert response.json()["code"] == "not_acceptable"
    headers = {"Authorization": f"DPoP {address.token}", "DPoP": make_proof(key, "POST", url, address.token)}
    response = httpx.post(url, json={"sql": sql}, headers=headers)  # Arrow carries every type
    assert response.status_code == 200
    assert response.headers["Sluis-Read-Number"] == "1"


@pytest.mark.parametrize("depth", [50, 300, 1_000, 5_000])
def test_deeply_nested_expressions_are_a_4xx(space: DataSpace, depth: int) -> None:
    transfer = space.transfer(space.agreement(research_permission()))
    address = space.plane.issue_access(transfer)
    url = address.endpoint + "/query"
    key = space.consumers["alice"].key
    for sql in ("SELECT " + "(" * depth + "1" + ")" * depth + " AS x FROM data",
                "SELECT " + " + ".join(["age"] * depth) + " AS x FROM data",
                "SELECT " + "-" * depth + "age AS x FROM data",
                "SELECT " + "abs(" * depth + "age" + ")" * depth + " AS x FROM data"):
        headers = {"Authorization": f"DPoP {address.token}",
                   "DPoP": make_proof(key, "POST", url, address.token)}
        response = httpx.post(url, json={"sql": sql}, headers=headers)
        assert response.status_code in (200, 400, 403, 413), (depth, sql[:40], response.status_code)
        assert response.headers["content-type"] in ("application/problem+json",
                                                    "application/vnd.apache.arrow.stream")
