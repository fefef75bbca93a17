"""did:web identifiers and resolution over a real HTTP server on loopback."""

from __future__ import annotations

import pytest

from connector.identity import (
    DidResolver,
    IdentityError,
    KeyPair,
    did_document,
    did_to_url,
    did_web_for,
    dsp_service,
    public_key_to_multibase,
)
from sluis.servers import free_port
from tests.identity.conftest import DidHost


@pytest.mark.parametrize(
    ("did", "url"),
    [
        ("did:web:example.org", "https://example.org/.well-known/did.json"),
        ("did:web:example.org:users:alice", "https://example.org/users/alice/did.json"),
        ("did:web:example.org%3A8443", "https://example.org:8443/.well-known/did.json"),
        ("did:web:127.0.0.1%3A9191", "http://127.0.0.1:9191/.well-known/did.json"),
        ("did:web:localhost%3A9191:p:alice", "http://localhost:9191/p/alice/did.json"),
        ("did:web:%5B%3A%3A1%5D%3A9191", "http://[::1]:9191/.well-known/did.json"),
        ("did:web:127.0.0.2%3A9191", "https://127.0.0.2:9191/.well-known/did.json"),
    ],
)
def test_did_web_maps_to_https_except_on_loopback(did: str, url: str) -> None:
    assert did_to_url(did) == url


def test_loopback_http_can_be_switched_off() -> None:
    assert did_to_url("did:web:127.0.0.1%3A9191", allow_http_loopback=False).startswith("https://")


def test_did_web_for_percent_encodes_the_port_and_round_trips() -> None:
    assert did_web_for("127.0.0.1", 9191) == "did:web:127.0.0.1%3A9191"
    assert did_web_for("connector.example.eu", None) == "did:web:connector.example.eu"
    assert did_web_for("::1", 9191) == "did:web:%5B%3A%3A1%5D%3A9191"
    assert did_to_url(did_web_for("::1", 9191)) == "http://[::1]:9191/.well-known/did.json"


@pytest.mark.parametrize(
    ("did", "code"),
    [
        ("did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "unsupported_did_method"),
        ("did:web:", "bad_did"),
        ("did:web:exa mple.org", "bad_did"),
        ("did:web:example.org/path", "bad_did"),
        ("did:web:example.org%3A99999", "bad_did"),
        ("did:web:example.org%2Fevil", "bad_did"),
        ("did:web:" + "a" * 600, "bad_did"),
    ],
)
def test_malformed_or_foreign_dids_are_refused(did: str, code: str) -> None:
    with pytest.raises(IdentityError) as caught:
        did_to_url(did)
    assert caught.value.code == code


def test_did_document_lists_one_multikey_for_authentication_and_assertion() -> None:
    key = KeyPair.generate()
    did = "did:web:127.0.0.1%3A9191"
    document = did_document(did, key, [dsp_service(did, "http://127.0.0.1:9191/dsp")])
    assert document["id"] == did
    assert document["@context"][0] == "https://www.w3.org/ns/did/v1"
    (method,) = document["verificationMethod"]
    assert method == {
        "id": f"{did}#key-1",
        "type": "Multikey",
        "controller": did,
        "publicKeyMultibase": key.public_multibase,
    }
    assert document["authentication"] == [f"{did}#key-1"]
    assert document["assertionMethod"] == [f"{did}#key-1"]
    assert document["service"][0]["serviceEndpoint"] == "http://127.0.0.1:9191/dsp"
    assert "service" not in did_document(did, key)


def test_a_published_key_is_resolved_over_http(did_host: DidHost) -> None:
    key = KeyPair.generate()
    did = did_host.publish("resolve-me", key)
    with DidResolver() as resolver:
        document = resolver.resolve(did)
        assert document["id"] == did
        found = resolver.public_key(f"{did}#key-1", "authentication")
    assert public_key_to_multibase(found) == key.public_multibase


def test_resolved_documents_are_cached_until_forgotten(did_host: DidHost) -> None:
    first, second = KeyPair.generate(), KeyPair.generate()
    did = did_host.publish("rotating", first)
    with DidResolver(cache_ttl_seconds=3600) as resolver:
        resolver.resolve(did)
        did_host.publish("rotating", second)
        cached = resolver.public_key(f"{did}#key-1")
        assert public_key_to_multibase(cached) == first.public_multibase
        resolver.forget(did)
        fresh = resolver.public_key(f"{did}#key-1")
        assert public_key_to_multibase(fresh) == second.public_multibase
    with DidResolver(cache_ttl_seconds=0) as uncached:
        assert uncached.resolve(did)["verificationMethod"][0]["publicKeyMultibase"] == second.public_multibase


def test_a_document_for_another_did_is_refused(did_host: DidHost) -> None:
    impostor = did_document("did:web:127.0.0.1%3A1", KeyPair.generate())
    did = did_host.serve_raw("impostor", impostor)
    with DidResolver() as resolver, pytest.raises(IdentityError) as caught:
        resolver.resolve(did)
    assert caught.value.code == "did_mismatch"


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("huge", b'{"id": "' + b"x" * (70 * 1024) + b'"}', "did_document_too_large"),
        ("not-json", b"<html>hello</html>", "bad_did_document"),
        ("array", b"[1, 2, 3]", "bad_did_document"),
    ],
)
def test_hostile_or_broken_documents_are_refused(
    did_host: DidHost, name: str, body: bytes, code: str
) -> None:
    did = did_host.serve_raw(name, body)
    with DidResolver() as resolver, pytest.raises(IdentityError) as caught:
        resolver.resolve(did)
    assert caught.value.code == code


def test_redirects_are_not_followed(did_host: DidHost) -> None:
    did = did_host.serve_raw("moved", ("redirect", f"http://127.0.0.1:{did_host.port}/provider/did.json"))
    with DidResolver() as resolver, pytest.raises(IdentityError) as caught:
        resolver.resolve(did)
    assert caught.value.code == "did_not_found"
    assert "307" in caught.value.message


def test_unknown_and_unreachable_dids_fail_clearly(did_host: DidHost) -> None:
    with DidResolver(timeout_seconds=2) as resolver:
        with pytest.raises(IdentityError) as missing:
            resolver.resolve(did_host.did("nobody"))
        assert missing.value.code == "did_not_found"
        with pytest.raises(IdentityError) as unreachable:
            resolver.resolve(did_web_for("127.0.0.1", free_port()))
        assert unreachable.value.code == "did_unreachable"


def test_keys_are_only_used_for_the_relationship_the_document_grants(did_host: DidHost) -> None:
    key = KeyPair.generate()
    did = did_host.did("login-only")
    document = did_document(did, key)
    document["assertionMethod"] = []
    did_host.serve_raw("login-only", document)
    with DidResolver() as resolver:
        resolver.public_key(f"{did}#key-1", "authentication")
        with pytest.raises(IdentityError) as caught:
            resolver.public_key(f"{did}#key-1", "assertionMethod")
        assert caught.value.code == "key_not_authorized"
        with pytest.raises(IdentityError) as unknown:
            resolver.public_key(f"{did}#key-2")
        assert unknown.value.code == "unknown_key"


def test_a_closed_data_space_only_contacts_pinned_hosts(did_host: DidHost) -> None:
    did = did_host.publish("pinned", KeyPair.generate())
    with DidResolver(allowed_hosts=[f"127.0.0.1:{did_host.port}"]) as pinned:
        assert pinned.resolve(did)["id"] == did
    with (
        DidResolver(allowed_hosts=["connector.example.eu"]) as closed,
        pytest.raises(IdentityError) as caught,
    ):
        closed.resolve(did)
    assert caught.value.code == "did_host_not_allowed"
