"""Remembered token verification never outlives the token: expiry, tampering and revocation
are decided at every read, whatever was verified before."""

from __future__ import annotations

from datetime import timedelta

import httpx

from connector.dataplane import make_proof
from connector.dataplane.tokens import CLOCK_SKEW_SECONDS

from .conftest import DataSpace, research_permission

NO_SSN = {"leftOperand": "sluis:columns", "operator": "isNoneOf", "rightOperand": ["ssn"]}


def _count(space: DataSpace, endpoint: str, token: str) -> httpx.Response:
    url = endpoint + "/query"
    proof = make_proof(space.consumers["alice"].key, "POST", url, token)
    return httpx.post(url, json={"sql": "SELECT count(*) AS n FROM data"},
                      headers={"Authorization": f"DPoP {token}", "DPoP": proof}, timeout=60)


def test_a_remembered_token_expires_on_time(space: DataSpace) -> None:
    address = space.plane.issue_access(space.transfer(space.agreement(research_permission(NO_SSN))))
    assert _count(space, address.endpoint, address.token).status_code == 200
    assert len(space.plane.verified_tokens) == 1
    later = address.expires_at + timedelta(seconds=CLOCK_SKEW_SECONDS + 1)
    space.plane.clock = lambda: later
    expired = _count(space, address.endpoint, address.token)
    assert expired.status_code == 401
    assert expired.json()["code"] == "token_expired"


def test_a_changed_token_is_verified_afresh_and_refused(space: DataSpace) -> None:
    address = space.plane.issue_access(space.transfer(space.agreement(research_permission(NO_SSN))))
    assert _count(space, address.endpoint, address.token).status_code == 200
    head, payload, signature = address.token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    refused = _count(space, address.endpoint, forged)
    assert refused.status_code == 401
    assert refused.json()["code"] == "bad_token"


def test_a_remembered_token_of_a_revoked_transfer_is_refused(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(NO_SSN)))
    address = space.plane.issue_access(transfer)
    assert _count(space, address.endpoint, address.token).status_code == 200
    space.plane.revoke(transfer.id)
    revoked = _count(space, address.endpoint, address.token)
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "token_inactive"
