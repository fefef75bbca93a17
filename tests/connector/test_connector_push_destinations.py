"""A push destination goes through the connector's address policy before anything is stored:
with loopback and private ranges not allowed (production), an internal destination is refused
naming ``dataAddress.endpoint``, however it is spelt."""

from __future__ import annotations

import pytest

from connector.addresses import AddressPolicy
from connector.control.push import DestinationRefused, destination_of
from vocab import dsp

INTERNAL = [
    "http://127.0.0.2:9/bucket",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.5/x",
    "http://[::ffff:127.0.0.2]/x",
    "http://2130706434/x",  # 127.0.0.2 as one number
    "http://bucket.example.eu/x",  # resolves to the metadata service
]


def _production() -> AddressPolicy:
    return AddressPolicy(resolver=lambda _host, _port: ["169.254.169.254"])


@pytest.mark.parametrize("endpoint", INTERNAL)
def test_an_internal_push_destination_is_refused(endpoint: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        destination_of(dsp.data_address(endpoint, {}), _production())
    assert "dataAddress.endpoint" in str(refused.value)


def test_a_public_push_destination_is_taken() -> None:
    # the control case: the same check takes a destination with a public address
    policy = AddressPolicy(resolver=lambda _host, _port: ["93.184.216.34"])
    taken = destination_of(dsp.data_address("https://bucket.example.eu/x", {}), policy)
    assert taken.endpoint == "https://bucket.example.eu/x"
