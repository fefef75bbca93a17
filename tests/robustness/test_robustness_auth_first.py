"""Who is asking is settled before any body is read: an outsider's malformed body earns 401,
never a 400 that describes the body parser. The strict parse still holds for the owner.
"""

from __future__ import annotations

import pytest

from tests.robustness.hostile import http
from tests.robustness.worlds import ConnectorWorld

MALFORMED = {
    "duplicate-key": b'{"id": "a", "id": "b"}',
    "nan": b'{"id": NaN}',
    "lone-surrogate": b'{"id": "\\ud800"}',
    "truncated": b'{"id": ',
    "too-deep": b"[" * 500 + b"]" * 500,
}
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-the-token", "Basic abc"], ids=["none", "wrong", "basic"]
)
def test_an_outsiders_malformed_management_body_is_401(
    connectors: ConnectorWorld, body: bytes, authorization: str | None
) -> None:
    headers = dict(JSON) if authorization is None else {**JSON, "Authorization": authorization}
    for path in ("/management/assets", "/management/no-such-route"):
        reply = http().post(f"{connectors.provider.url}{path}", content=body, headers=headers)
        assert reply.status_code == 401, reply.text
        assert reply.json()["type"] == "unauthorized"


def test_an_outsiders_oversized_management_body_is_401(connectors: ConnectorWorld) -> None:
    url = f"{connectors.provider.url}/management/assets"
    reply = http().post(url, content=b"[" * 2_000_000, headers=JSON)
    assert reply.status_code == 401, reply.text


def test_the_owners_malformed_body_is_still_400_naming_the_field(connectors: ConnectorWorld) -> None:
    headers = {**JSON, "Authorization": f"Bearer {connectors.provider.token}"}
    reply = http().post(f"{connectors.provider.url}/management/assets",
                        content=b'{"id": "a", "id": "b"}', headers=headers)
    assert reply.status_code == 400, reply.text
    problem = reply.json()
    assert problem["type"] == "invalid-json"
    assert problem["errors"][0]["field"] == "id", problem


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer x"}, {"Authorization": "DPoP x"}, {"DPoP": "x"}],
    ids=["none", "bearer", "token-without-proof", "proof-without-token"],
)
def test_a_data_plane_body_without_a_token_and_proof_is_401(
    connectors: ConnectorWorld, body: bytes, headers: dict[str, str]
) -> None:
    for path in ("query", "token/refresh", "obligations/o/fulfil"):
        url = f"{connectors.data_endpoint}/{path}"
        reply = http().post(url, content=body, headers={**JSON, **headers})
        assert reply.status_code == 401, reply.text
        assert reply.headers["www-authenticate"].startswith("DPoP")
