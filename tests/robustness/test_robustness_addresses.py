"""The address policy and the callback binding, attacked with the forms an SSRF attempt takes.

These are the pure checks (a stand-in DNS table instead of the network); the tests beside them
(``test_robustness_perimeter.py``) send the same attacks to a running connector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from connector.addresses import AddressPolicy, AddressRefused, parse_networks
from connector.callbacks import CallbackPolicy
from connector.identity import VerifiedClaims

PUBLIC = "93.184.216.34"
DNS: dict[str, list[str]] = {
    "peer.example.eu": [PUBLIC],
    "callbacks.example.eu": [PUBLIC],
    "internal.example.eu": ["10.1.2.3"],
    "metadata.example.eu": ["169.254.169.254"],
    "rebind.example.eu": [PUBLIC, "127.0.0.1"],
    "v6loop.example.eu": ["::1"],
    "mapped.example.eu": ["::ffff:10.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
}


def lookup(host: str, _port: int) -> Sequence[str]:
    if host not in DNS:
        raise OSError(f"unknown host {host}")
    return DNS[host]


STRICT = AddressPolicy(resolver=lookup)
DEVELOPMENT = AddressPolicy(allow_loopback=True, resolver=lookup)

REFUSED = [
    "http://127.0.0.1:9/dsp",
    "http://localhost:9/dsp",
    "http://[::1]/dsp",
    "http://[::ffff:127.0.0.1]/dsp",
    "http://[::ffff:7f00:1]/dsp",
    "http://[64:ff9b::7f00:1]/dsp",
    "http://[2002:7f00:1::]/dsp",
    "http://2130706433/dsp",
    "http://0177.0.0.1/dsp",
    "http://0x7f.0.0.1/dsp",
    "http://0x7f000001/dsp",
    "http://127.1/dsp",
    "http://10.0.0.5/dsp",
    "http://172.16.0.1/dsp",
    "http://192.168.1.1/dsp",
    "http://100.64.0.1/dsp",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/dsp",
    "http://[fe80::1%25eth0]/dsp",
    "http://[fc00::1]/dsp",
    "http://224.0.0.1/dsp",
    "http://[ff02::1]/dsp",
    "http://0.0.0.0/dsp",
    "http://[::]/dsp",
    "http://192.0.2.1/dsp",
    "http://internal.example.eu/dsp",
    "http://metadata.example.eu/dsp",
    "http://rebind.example.eu/dsp",
    "http://v6loop.example.eu/dsp",
    "http://mapped.example.eu/dsp",
    "http://unknown.example.eu/dsp",
    "https://user:secret@peer.example.eu/dsp",
    "https://peer.example.eu@127.0.0.1/dsp",
    "https://peer.example.eu/dsp?next=http://127.0.0.1/",
    "https://peer.example.eu/dsp?",
    "https://peer.example.eu/dsp#fragment",
    "ftp://peer.example.eu/dsp",
    "file:///etc/passwd",
    "gopher://peer.example.eu:70/_",
    "https://peer.example.eu /dsp",
    "https://peer.example.eu\\@127.0.0.1/dsp",
    "https://peer.example.eu/d\u00e9p",
    "https://xn--.example.eu/dsp",
    "https:///dsp",
    "https://peer.example.eu:99999/dsp",
    "//peer.example.eu/dsp",
    "",
]


@pytest.mark.parametrize("url", REFUSED)
def test_addresses_a_peer_could_aim_us_at_are_refused_by_default(url: str) -> None:
    with pytest.raises(AddressRefused) as refused:
        STRICT.check_url(url, what="callbackAddress")
    assert str(refused.value).startswith("callbackAddress")


@pytest.mark.parametrize(
    "url",
    ["https://peer.example.eu/dsp", "http://peer.example.eu:8080/dsp", f"https://{PUBLIC}/dsp"],
)
def test_public_addresses_pass(url: str) -> None:
    destination = STRICT.check_url(url)
    assert destination.addresses == (PUBLIC,)


def test_loopback_needs_the_development_setting_and_nothing_else_follows_from_it() -> None:
    assert DEVELOPMENT.check_url("http://127.0.0.1:9/dsp").addresses == ("127.0.0.1",)
    assert DEVELOPMENT.check_url("http://localhost:9/dsp").port == 9
    assert DEVELOPMENT.check_url("http://[::1]:9/dsp").host == "::1"
    for still_refused in ("http://10.0.0.5/dsp", "http://169.254.169.254/", "http://2130706433/"):
        with pytest.raises(AddressRefused):
            DEVELOPMENT.check_url(still_refused)


def test_an_operator_allowed_private_network_opens_only_that_network() -> None:
    policy = AddressPolicy(allowed_networks=parse_networks(["10.1.0.0/16"]), resolver=lookup)
    assert policy.check_url("http://internal.example.eu/dsp").addresses == ("10.1.2.3",)
    for outside in ("http://10.2.0.1/dsp", "http://127.0.0.1/dsp", "http://metadata.example.eu/"):
        with pytest.raises(AddressRefused):
            policy.check_url(outside)
    with pytest.raises(ValueError, match="CIDR"):
        parse_networks(["10.1.2.3/8"])


def test_a_connected_peer_address_is_checked_with_the_same_rules() -> None:
    # what a client calls on the socket it actually connected (DNS rebinding)
    assert STRICT.ip_refusal(PUBLIC) is None
    assert "loopback" in (STRICT.ip_refusal("127.0.0.1") or "")
    assert "embeds 127.0.0.1" in (STRICT.ip_refusal("::ffff:127.0.0.1") or "")


# ---- callbacks: bound by the authority or the operator, never by the peer's own document ----

PEER = "did:web:peer.example.eu"


def membership(subject: str, **claims: Any) -> dict[str, Any]:
    """A credential as ``verify_token`` hands it on (already verified against the authority)."""
    return {
        "type": ["VerifiableCredential", "MembershipCredential"],
        "issuer": "did:web:authority.example.eu",
        "credentialSubject": {"id": subject, **claims},
    }


def claims(*credentials: dict[str, Any], participant: str = PEER) -> VerifiedClaims:
    types = frozenset(t for c in credentials for t in c["type"] if t != "VerifiableCredential")
    return VerifiedClaims(participant, tuple(credentials), types)


def test_a_member_may_be_called_back_on_its_did_web_host_only() -> None:
    policy = CallbackPolicy(STRICT)
    member = claims(membership(PEER))
    assert policy.refusal("https://peer.example.eu/dsp", member) is None
    assert policy.refusal("https://peer.example.eu/other/dsp", member) is None
    for elsewhere in (
        "https://callbacks.example.eu/dsp",  # public, but not bound to this peer
        "http://peer.example.eu/dsp",  # another origin: the scheme differs
        "https://peer.example.eu:8443/dsp",  # another origin: the port differs
        "https://peer.example.eu.callbacks.example.eu/dsp",
    ):
        assert policy.refusal(elsewhere, member) is not None, elsewhere


def test_without_a_membership_credential_nothing_is_bound() -> None:
    policy = CallbackPolicy(STRICT)
    refusal = policy.refusal("https://peer.example.eu/dsp", claims())
    assert refusal is not None
    assert "MembershipCredential" in refusal


def test_endpoints_the_authority_listed_are_bound_segment_wise() -> None:
    policy = CallbackPolicy(STRICT)
    member = claims(membership(PEER, dspEndpoints=["https://callbacks.example.eu/peer/dsp"]))
    assert policy.refusal("https://callbacks.example.eu/peer/dsp", member) is None
    assert policy.refusal("https://callbacks.example.eu/peer/dsp/negotiations/1", member) is None
    assert policy.refusal("https://callbacks.example.eu/peer/dspx", member) is not None
    assert policy.refusal("https://callbacks.example.eu/other/dsp", member) is not None


def test_a_bound_host_resolving_to_an_internal_address_is_still_refused() -> None:
    policy = CallbackPolicy(STRICT)
    member = claims(membership(PEER, dspEndpoints=["http://internal.example.eu/dsp"]))
    refusal = policy.refusal("http://internal.example.eu/dsp", member)
    assert refusal is not None
    assert "10.1.2.3" in refusal


def test_operator_pins_match_origin_and_path_not_string_prefix() -> None:
    policy = CallbackPolicy.of(STRICT, ["https://callbacks.example.eu/dsp"])
    nobody = claims()
    assert policy.refusal("https://callbacks.example.eu/dsp", nobody) is None
    assert policy.refusal("https://callbacks.example.eu/dsp/transfers/9", nobody) is None
    for outside in (
        "https://callbacks.example.eu.evil.example/dsp",
        "https://callbacks.example.eu/dspx",
        "https://callbacks.example.eu:444/dsp",
        "https://callbacks.example.eu/dsp?x=1",
    ):
        assert policy.refusal(outside, nobody) is not None, outside


def test_a_service_in_the_peers_own_did_document_binds_nothing() -> None:
    # The peer's DID document may list any service it likes; the policy never asks for it, so
    # there is no resolver to give. A membership binds the did:web origin only.
    policy = CallbackPolicy(DEVELOPMENT)
    member = claims(
        membership("did:web:127.0.0.1%3A7001"), participant="did:web:127.0.0.1%3A7001"
    )
    assert policy.refusal("http://127.0.0.1:7001/dsp", member) is None
    assert policy.refusal("http://127.0.0.1:5432/dsp", member) is not None
