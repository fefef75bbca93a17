"""Duties of an agreement (notify on use, delete within 30 days) are tracked and shown to both sides."""

from __future__ import annotations

import httpx
import pytest

from connector.dataplane import make_proof

from .conftest import DataSpace, research_permission

DELETE_IN_30_DAYS = {
    "action": "delete",
    "constraint": [{"leftOperand": "elapsedTime", "operator": "lteq",
                    "rightOperand": {"@value": "P30D", "@type": "xsd:duration"}}],
}


def _signed(space: DataSpace, method: str, url: str, token: str) -> dict[str, str]:
    key = space.consumers["alice"].key
    return {"Authorization": f"DPoP {token}", "DPoP": make_proof(key, method, url, token)}


def test_obligations_are_tracked_and_shown_to_consumer_and_provider(space: DataSpace) -> None:
    permission = {**research_permission(), "duty": [{"action": "inform"}]}
    agreement_id = space.agreement(permission, obligation=[DELETE_IN_30_DAYS])
    reader = space.reader(space.transfer(agreement_id))
    reader.read()
    reader.query("SELECT count(*) FROM data")

    mine = {item["action"]: item for item in reader.obligations()}
    assert set(mine) == {"inform", "delete"}
    assert mine["inform"]["status"] == "recorded"
    assert mine["inform"]["uses"] == 2
    assert mine["delete"]["status"] == "pending"
    assert mine["delete"]["due_at"] is not None

    listing = f"{space.base_url}/data/obligations"
    assert httpx.get(listing).status_code == 401
    provider_view = httpx.get(listing, params={"agreement_id": agreement_id},
                              headers={"Authorization": f"Bearer {space.management_token}"})
    assert provider_view.status_code == 200
    assert {item["action"] for item in provider_view.json()["obligations"]} == {"inform", "delete"}

    url = f"{reader.address.endpoint}/obligations/{mine['delete']['id']}/fulfil"
    token = reader.address.token
    done = httpx.post(url, json={"evidence": "deleted from the training cluster"},
                      headers=_signed(space, "POST", url, token))
    assert done.status_code == 200, done.text
    again = httpx.post(url, json={"evidence": "again"}, headers=_signed(space, "POST", url, token))
    assert again.status_code == 404
    missing = httpx.post(url, json={}, headers=_signed(space, "POST", url, token))
    assert missing.status_code == 400
    assert {item["action"]: item["status"] for item in reader.obligations()}["delete"] == "fulfilled"


def test_consumer_fetches_its_own_redacted_audit_export(space: DataSpace) -> None:
    reader = space.reader(space.transfer(space.agreement(research_permission())))
    reader.read()
    url = f"{reader.address.endpoint}/audit"
    response = httpx.get(url, headers=_signed(space, "GET", url, reader.address.token))
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert '"scope": "consumer"' in lines[0]
    assert any('"kind": "read"' in line for line in lines[1:])


@pytest.mark.parametrize("accept", ["application/json", "image/png"])
def test_unsupported_media_type_is_406(space: DataSpace, accept: str) -> None:
    reader = space.reader(space.transfer(space.agreement(research_permission())))
    url = reader.address.endpoint
    response = httpx.get(url, headers={**_signed(space, "GET", url, reader.address.token), "Accept": accept})
    assert response.status_code == 406
    assert response.headers["content-type"].startswith("application/problem+json")


def test_bad_query_bodies_are_clear_4xx(space: DataSpace) -> None:
    reader = space.reader(space.transfer(space.agreement(research_permission())))
    url = reader.address.endpoint + "/query"
    token = reader.address.token
    for body, status in ((b"not json", 400), (b'{"sql": ""}', 400), (b"[1]", 400),
                         (b'{"sql": "SELECT (1"}', 400), (b'{"sql": "SELECT nosuch FROM data"}', 400),
                         (b'{"sql": "' + b"x" * 70_000 + b'"}', 413)):
        response = httpx.post(url, content=body, headers=_signed(space, "POST", url, token))
        assert response.status_code == status, (body[:40], response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
