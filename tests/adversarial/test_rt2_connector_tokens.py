"""Participants sign tokens whose claims hold text no database can store.

A DSP token's ``jti`` and a DPoP proof's ``jti`` are remembered (the replay guards) in the
connector's database. JSON lets a string hold a lone UTF-16 surrogate (``\\ud800``), which no
encoder accepts, or U+0000, which PostgreSQL refuses: a token carrying one must be refused as a
malformed token (401), never reach the database and answer 500. Signed by the sender's real
key, so only the claim's content is wrong.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from connector.dataplane.tokens import token_hash
from connector.identity import KeyPair
from tests.robustness.worlds import ConnectorWorld
from vocab import dsp

ODD_IDS = ["\ud800", "a\udfffb", "\u0000", "x\u0000y"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode("ascii"))  # \\uXXXX escapes


def _jws(key: KeyPair, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    return f"{signing_input}.{_b64(key.sign(signing_input.encode('ascii')))}"


def _payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


@pytest.mark.parametrize("jti", ODD_IDS, ids=ascii)
def test_a_dsp_token_with_an_unstorable_jti_is_refused(world: ConnectorWorld, jti: str) -> None:
    genuine = world.dsp_token()
    token = _jws(world.consumer_key, _header(genuine), {**_payload(genuine), "jti": jti})
    reply = httpx.post(f"{world.provider.dsp}/catalog/request", json=dsp.catalog_request_message(),
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert reply.status_code in (400, 401), (reply.status_code, reply.text[:300])
    # and the consumer's next genuine request is still served
    again = httpx.post(f"{world.provider.dsp}/catalog/request", json=dsp.catalog_request_message(),
                       headers=world.dsp_auth(), timeout=60)
    assert again.status_code == 200, again.text[:300]


@pytest.mark.parametrize("jti", ODD_IDS, ids=ascii)
def test_a_dpop_proof_with_an_unstorable_jti_is_refused(world: ConnectorWorld, jti: str) -> None:
    url = world.data_endpoint
    token = world.data_token
    genuine = world.data_auth("GET", url)["DPoP"]
    proof = _jws(world.consumer_key, _header(genuine), {**_payload(genuine), "jti": jti,
                                                         "ath": token_hash(token)})
    reply = httpx.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": proof}, timeout=60)
    assert reply.status_code == 401, (reply.status_code, reply.text[:300])
    ok = httpx.get(url, headers=world.data_auth("GET", url), timeout=60)
    assert ok.status_code == 200, ok.text[:300]


ODD_SEGMENTS = ["%ED%A0%80", "%FF%FE", "a%00b", "%C0%80", "%F4%90%80%80"]


@pytest.mark.parametrize("segment", ODD_SEGMENTS)
def test_path_segments_no_database_can_hold_are_a_4xx_everywhere(world: ConnectorWorld, segment: str) -> None:
    provider = world.provider.url
    operator = {"Authorization": f"Bearer {world.provider.token}"}
    attempts = [
        ("GET", f"{provider}/dsp/transfers/{segment}", world.dsp_auth()),
        ("GET", f"{provider}/dsp/negotiations/{segment}", world.dsp_auth()),
        ("POST", f"{provider}/dsp/transfers/{segment}/completion", world.dsp_auth()),
        ("GET", f"{provider}/dsp/catalog/datasets/{segment}", world.dsp_auth()),
        ("GET", f"{provider}/data/{segment}", {}),
        ("PUT", f"{world.consumer.url}/push/{segment}", {"Authorization": "Bearer x"}),
        ("GET", f"{provider}/management/transfers/{segment}", operator),
        ("GET", f"{provider}/management/agreements/{segment}", operator),
        ("GET", f"{provider}/management/assets/{segment}", operator),
        ("GET", f"{world.consumer.url}/management/received/{segment}",
         {"Authorization": f"Bearer {world.consumer.token}"}),
    ]
    for method, url, headers in attempts:
        body = dsp.transfer_completion_message("x", "y") if method == "POST" else None
        reply = httpx.request(method, url, headers=headers, json=body, timeout=60)
        assert 400 <= reply.status_code < 500, (method, url, reply.status_code, reply.text[:300])


@pytest.mark.parametrize("depth", [200, 900])
def test_a_signed_token_carrying_a_deeply_nested_credential_is_refused(
    world: ConnectorWorld, depth: int
) -> None:
    genuine = world.dsp_token()
    claims = _payload(genuine)
    credential = json.loads(json.dumps(world.consumer_credentials[0]))
    nested: Any = "x"
    for _ in range(depth):
        nested = {"a": nested}
    credential["credentialSubject"] = {**credential["credentialSubject"], "deep": nested}
    claims["vp"]["verifiableCredential"] = [credential]
    token = _jws(world.consumer_key, _header(genuine), claims)
    reply = httpx.post(f"{world.provider.dsp}/catalog/request", json=dsp.catalog_request_message(),
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert reply.status_code in (400, 401, 431), (reply.status_code, reply.text[:300])
