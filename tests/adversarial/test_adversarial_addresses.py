"""Addresses a peer chose: IPv6 spellings of internal hosts that ``ipaddress`` calls global, and
did:web identifiers whose document URL leaves the path the trust list was written for.

Python's tables mark ``::7f00:1`` (IPv4-compatible ``::127.0.0.1``), ``4000::1`` and the
IPv4-translated and local-use NAT64 forms as global, so an address policy built on ``is_global``
alone let them through for callbacks, push destinations, DID hosts, data addresses and harvest
sources. A translator, a tunnel or a route of the provider's network may deliver them to the
IPv4 host they carry.
"""

from __future__ import annotations

import pytest

from connector.addresses import AddressPolicy
from connector.identity import IdentityError
from connector.identity.did import did_to_url

PRODUCTION = AddressPolicy()

REFUSED = [
    "::127.0.0.1",  # IPv4-compatible (::/96, deprecated)
    "::10.0.0.1",
    "::169.254.169.254",
    "::ffff:0:127.0.0.1",  # IPv4-translated (SIIT, ::ffff:0:0:0/96)
    "::ffff:0:10.0.0.1",
    "64:ff9b:1::127.0.0.1",  # local-use NAT64 prefix (RFC 8215)
    "64:ff9b:1::a9fe:a9fe",
    "64:ff9b::10.0.0.1",  # well-known NAT64 prefix, internal target
    "fec0::1",  # site-local (deprecated, still routed on some networks)
    "4000::1",  # reserved
    "5f00::1",
    "3fff::1",  # documentation (RFC 9637)
    "::2",
]
ALLOWED = ["2a00:1450:4001:82b::200e", "64:ff9b::8.8.8.8", "64:ff9b:1::8.8.8.8", "::ffff:8.8.8.8", "8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_hosts_in_ipv6_spellings_are_refused(address: str) -> None:
    assert PRODUCTION.ip_refusal(address) is not None, address
    assert PRODUCTION.url_refusal(f"http://[{address}]:8080/dsp") is not None, address


@pytest.mark.parametrize("address", ALLOWED)
def test_public_hosts_stay_reachable_also_through_nat64(address: str) -> None:
    assert PRODUCTION.ip_refusal(address) is None, PRODUCTION.ip_refusal(address)


@pytest.mark.parametrize(
    "did",
    [
        "did:web:authority.example:participants:..:..:uploads:evil",
        "did:web:authority.example:participants:%2E%2E:evil",
        "did:web:authority.example:.:evil",
    ],
)
def test_dot_segments_cannot_move_a_did_document_elsewhere_on_a_trusted_host(did: str) -> None:
    """Trust lists name hosts: a DID whose document URL a server normalises to another path of
    that host would let a participant claim any file it can place there as its DID document."""
    with pytest.raises(IdentityError) as refused:
        did_to_url(did)
    assert refused.value.code == "bad_did"
