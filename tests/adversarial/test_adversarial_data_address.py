"""A hostile provider aims the consumer's job at the consumer's own network.

The provider chooses the ``DataAddress`` of a pull transfer: the endpoint and refresh endpoint
the consumer's job then calls, from inside the consumer's compute environment, with a token and
proofs of the consumer's key. Unchecked, that is a request to an address a peer chose (SSRF):
the consumer connector must refuse such an address like any callback, and the job must not let a
refresh answer move it to another host.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from connector.jobs.data import Address, TransferReader
from connector.jobs.errors import JobError
from sluis.servers import free_port, serve_in_thread
from tests.robustness.worlds import ConnectorWorld, wait_until
from vocab import dsp

INSIDE = [
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.1/data/t",
    "http://[::ffff:10.0.0.1]/data/t",
    "http://2130706433/data/t",
    "http://0.0.0.0:1/data/t",
    "file:///etc/passwd",
]


def _address(endpoint: str, refresh: str) -> dict[str, Any]:
    expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat(timespec="seconds")
    properties = {"authorization": "x", "authType": "DPoP", "expiresAt": expires, "refreshEndpoint": refresh}
    return {
        "@type": "DataAddress",
        "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
        "endpoint": endpoint,
        "endpointProperties": [
            {"@type": "EndpointProperty", "name": name, "value": value} for name, value in properties.items()
        ],
    }


def _consumer_transfer(world: ConnectorWorld) -> dict[str, Any]:
    found = world.clients["consumer"].get(f"/transfers/{world.consumer_transfer_id}")
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


def test_a_start_message_naming_an_internal_data_address_is_refused(world: ConnectorWorld) -> None:
    suspended = world.clients["consumer"].post(f"/transfers/{world.consumer_transfer_id}/suspend")
    assert suspended.status_code < 300, suspended.text
    wait_until(lambda: _consumer_transfer(world)["state"] == "SUSPENDED", "the consumer's suspension")
    kept = _consumer_transfer(world).get("data_address")
    assert isinstance(kept, dict), "the consumer keeps the address the provider sent at the start"
    good = world.data_endpoint
    pairs = [(bad, good + "/token/refresh") for bad in INSIDE] + [(good, bad) for bad in INSIDE]
    for endpoint, refresh in pairs:
        message = dsp.transfer_start_message(
            world.provider_transfer_id, world.consumer_transfer_id, _address(endpoint, refresh)
        )
        response = httpx.post(
            f"{world.consumer.dsp}/transfers/{world.consumer_transfer_id}/start",
            json=message,
            headers=world.dsp_auth("consumer"),
            timeout=30,
        )
        assert response.status_code == 400, (endpoint, refresh, response.text)
        assert response.json()["@type"] == "TransferError", response.text
        stored = _consumer_transfer(world)
        assert stored["state"] == "SUSPENDED", (endpoint, refresh, stored)
        assert stored.get("data_address") == kept, (endpoint, refresh)


@pytest.fixture
def moving_provider() -> Iterator[str]:
    """A data plane whose refresh answer sends the job to another host."""
    app = FastAPI()

    @app.post("/data/t/token/refresh")
    def refresh() -> dict[str, Any]:
        return _address("http://10.0.0.1/data/t", "http://10.0.0.1/data/t/token/refresh")

    port = free_port()
    with serve_in_thread(app, port=port):
        yield f"http://127.0.0.1:{port}/data/t"


def test_a_refresh_cannot_move_the_job_to_another_host(world: ConnectorWorld, moving_provider: str) -> None:
    address = Address(moving_provider, "token", datetime.now(UTC), moving_provider + "/token/refresh")
    reader = TransferReader(address, world.consumer_key, "t")
    try:
        with pytest.raises(JobError) as refused:
            reader.refresh()
    finally:
        reader.close()
    assert refused.value.code == "bad_data_address"
    assert reader.address.endpoint == moving_provider
