"""Addresses a peer names (callbacks, push destinations, data addresses, did:web hosts) in every
spelling that reaches the connector's own network: the address policy of a production
connector (no loopback) refuses each, whatever the host name resolves to or however the number
is written. Resolution is the test's own resolver, so names can point anywhere without DNS.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from connector.addresses import AddressPolicy, AddressRefused
from connector.control.push import DestinationRefused, destination_of

NAMES = {
    "loopback.example": ["127.0.0.1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "mixed.example": ["93.184.216.34", "10.0.0.7"],
    "metadata.example": ["169.254.169.254"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],
    "public.example": ["93.184.216.34"],
}


def _resolve(host: str, port: int) -> Sequence[str]:
    if host not in NAMES:
        raise OSError(f"{host} does not resolve")
    return NAMES[host]


POLICY = AddressPolicy(allow_loopback=False, resolver=_resolve)

INSIDE = [
    "http://127.0.0.1/dsp", "http://127.1/dsp", "http://0x7f000001/dsp", "http://2130706433/dsp",
    "http://017700000001/dsp", "http://0177.0.0.1/dsp", "http://0/dsp", "http://0.0.0.0/dsp",
    "http://[::1]/dsp", "http://[::]/dsp", "http://[::ffff:127.0.0.1]/dsp", "http://[::ffff:7f00:1]/dsp",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/dsp", "http://[::127.0.0.1]/dsp", "http://[fe80::1%25eth0]/dsp",
    "http://[64:ff9b::7f00:1]/dsp", "http://[2002:7f00:1::]/dsp", "http://[fc00::1]/dsp",
    "http://169.254.169.254/latest", "http://[::ffff:a9fe:a9fe]/latest", "http://100.64.0.1/dsp",
    "http://192.168.1.1/dsp", "http://172.16.0.1/dsp", "http://10.0.0.1/dsp", "http://224.0.0.1/dsp",
    "http://loopback.example/dsp", "http://mapped.example/dsp", "http://mixed.example/dsp",
    "http://metadata.example/dsp", "http://nat64.example/dsp", "http://LOOPBACK.EXAMPLE/dsp",
    "http://localhost/dsp", "http://localhost./dsp", "http://loopback.example./dsp",
    "http://public.example@127.0.0.1/dsp", "http://user:pw@public.example/dsp",
    "http://public.example:80@10.0.0.1/dsp", "http://%31%32%37.0.0.1/dsp", "http://127\u30020\u30020\u30021/dsp",
    "http://\u2460\u2461\u2466.0.0.1/dsp", "http://public.example/dsp?next=http://10.0.0.1/",
    "http://public.example/dsp#frag", "http://public.example\t/dsp", "http://public.example\\@10.0.0.1/dsp",
    "http:///10.0.0.1/dsp", "http:10.0.0.1/dsp", "gopher://public.example/", "file:///etc/passwd",
    "ftp://public.example/", "http://public.example:99999/dsp",
    "http://" + "a" * 3000 + ".example/dsp", "//public.example/dsp", "",
]


@pytest.mark.parametrize("url", INSIDE, ids=lambda url: ascii(url)[:60])
def test_an_address_inside_the_network_is_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(AddressRefused):
        POLICY.check_url(url, what="callbackAddress")
    with pytest.raises(DestinationRefused):
        destination_of({"@type": "DataAddress", "endpoint": url, "endpointProperties": []}, POLICY)


def test_a_public_address_is_taken() -> None:
    assert POLICY.check_url("https://public.example/dsp").addresses == ("93.184.216.34",)
