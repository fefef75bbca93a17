"""A hostile publisher pairs a real provider's DID with its own host, and collects our tokens.

A DSP token is bound to its audience DID only. A catalogue record (anyone may publish one) names
a dataset's DSP endpoint and its provider; if our connector sent a token for the real provider
to the endpoint the record names, the record's author could replay it to that provider as us,
with our credentials, within its lifetime. Every conversation we start - catalog and dataset
requests, negotiations, transfers, the request-access page - must refuse an address the named
participant does not serve, before anything is sent to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from sluis.servers import free_port, serve_in_thread
from tests.robustness.worlds import ConnectorWorld

RESEARCH = "https://w3id.org/sluis/purpose/scientific-research"


@pytest.fixture
def collector(world: ConnectorWorld) -> Iterator[tuple[str, list[str]]]:
    """The publisher's host: it claims to serve the real provider and records every
    Authorization header it is sent."""
    seen: list[str] = []
    app = FastAPI()

    @app.get("/.well-known/dspace-version")
    def version() -> dict[str, Any]:
        service = {"version": "2025-1", "path": "/dsp", "binding": "HTTPS", "serviceId": world.provider.did}
        return {"protocolVersions": [service]}

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def anything(path: str, request: Request) -> dict[str, Any]:
        seen.append(request.headers.get("authorization", ""))
        return {}

    port = free_port()
    with serve_in_thread(app, port=port):
        yield f"http://127.0.0.1:{port}/dsp", seen


def test_no_conversation_sends_a_providers_token_to_another_host(
    world: ConnectorWorld, collector: tuple[str, list[str]]
) -> None:
    address, seen = collector
    provider = world.provider.did
    api = world.clients["consumer"]
    attempts = {
        "/catalog/request": {"counterparty_address": address, "counterparty_id": provider},
        "/catalog/dataset": {"counterparty_address": address, "counterparty_id": provider, "dataset_id": "x"},
        "/negotiations": {
            "counterparty_address": address, "counterparty_id": provider, "dataset_id": "x",
            "offer": {"@id": "urn:x", "permission": [{"action": "use"}]}, "purpose": RESEARCH,
        },
        "/transfers": {
            "agreement_id": world.agreement_id, "counterparty_address": address, "format": "HttpData-PULL",
        },
    }
    for path, body in attempts.items():
        response = api.post(path, json=body)
        assert response.status_code == 400, (path, response.status_code, response.text)
        assert "counterparty_address" in response.text, (path, response.text)
    page = httpx.get(
        f"{world.consumer.url}/pages/request",
        params={"dataset": "x", "dsp": address, "provider": provider},
        headers={"Authorization": f"Bearer {world.consumer.token}", "Accept": "text/html"},
        timeout=30,
    )
    assert page.status_code < 500, page.text
    assert "is not" in page.text, page.text[-2000:]
    assert world.provider.did in page.text, page.text[-2000:]
    tokens = [header for header in seen if header]
    assert tokens == [], f"the publisher's host received {len(tokens)} token(s)"


def test_the_providers_own_endpoint_is_still_used(world: ConnectorWorld) -> None:
    response = world.clients["consumer"].post(
        "/catalog/request",
        json={"counterparty_address": world.provider.dsp, "counterparty_id": world.provider.did},
    )
    assert response.status_code == 200, response.text
