"""DNS rebinding against the consumer's pages: the contract page asks the provider's data plane
for its audit export at the address the provider named. The address is checked against the
address policy; the request must then go to the very address that was checked, not to a second
resolution of the name (which a provider controlling its DNS answers with an internal address).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from connector.addresses import AddressPolicy
from connector.identity import IdentityError, KeyPair
from connector.pages.consumer_reads import reads_from_provider
from connector.pages.request_access import AccessError, discover_provider
from connector.store import AgreementRecord, ProcessRecord, Store
from sluis.servers import free_port, serve_in_thread

#: A name no real resolver answers: only the policy's resolver below knows it.
NAME = "provider.rebind.invalid"


class Rebinding:
    """A provider's DNS: the first answer is the loopback data plane (allowed in this test),
    every later one an internal address the policy refuses."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return ["127.0.0.1"] if self.asked == 1 else ["10.1.2.3"]


class OneAgreement:
    """The two store look-ups the page makes, for one agreement and one transfer."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def get_agreement(self, agreement_id: str) -> AgreementRecord:
        return AgreementRecord(agreement_id, "n1", "did:web:provider.example", "did:web:me", "a1", {})

    def processes_for_agreement(self, agreement_id: str) -> list[ProcessRecord]:
        address = {"endpoint": self.endpoint, "token": "t" * 20}
        return [ProcessRecord("p1", "transfer", "consumer", "STARTED", 1, "did:web:provider.example",
                              "http://x", agreement_id=agreement_id, details={"data_address": address})]


class NoKeys:
    def public_key(self, verification_method: str, relationship: str | None = None) -> Ed25519PublicKey:
        raise IdentityError("did_not_found", "no key in this test")


@pytest.fixture
def data_plane() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    app = FastAPI()

    @app.get("/data/audit")
    def audit(request: Request) -> PlainTextResponse:
        seen.append({"host": request.headers.get("host"), "url": str(request.url)})
        return PlainTextResponse("")

    port = free_port()
    with serve_in_thread(app, port=port):
        yield port, seen


def test_the_audit_request_goes_to_the_checked_address_not_a_second_resolution(
    data_plane: tuple[int, list[dict[str, Any]]],
) -> None:
    port, seen = data_plane
    dns = Rebinding()
    policy = AddressPolicy(allow_loopback=True, resolver=dns)
    store = cast(Store, OneAgreement(f"http://{NAME}:{port}/data"))
    result = reads_from_provider("agr-1", store, KeyPair.generate(), policy, NoKeys())
    # the data plane at the checked address was reached, under the name the provider gave
    # (the system resolver does not know the name: an unpinned request never arrives)
    assert seen == [{"host": f"{NAME}:{port}", "url": f"http://{NAME}:{port}/data/audit"}], result
    assert dns.asked == 1
    assert "key could not be resolved" in result.note


def test_a_name_that_resolves_to_a_refused_address_is_not_contacted(
    data_plane: tuple[int, list[dict[str, Any]]],
) -> None:
    port, seen = data_plane
    dns = Rebinding()
    dns.asked = 1  # the next answer is the internal address
    policy = AddressPolicy(allow_loopback=True, resolver=dns)
    store = cast(Store, OneAgreement(f"http://{NAME}:{port}/data"))
    result = reads_from_provider("agr-1", store, KeyPair.generate(), policy, NoKeys())
    assert seen == []
    assert result.permitted is None
    assert "10.1.2.3" in result.note


def test_provider_discovery_goes_to_the_checked_address() -> None:
    seen: list[str | None] = []
    app = FastAPI()

    @app.get("/.well-known/dspace-version")
    def version(request: Request) -> dict[str, Any]:
        seen.append(request.headers.get("host"))
        return {}

    port = free_port()
    dns = Rebinding()
    with serve_in_thread(app, port=port), pytest.raises(AccessError) as refused:
        discover_provider(f"http://{NAME}:{port}/dsp", AddressPolicy(allow_loopback=True, resolver=dns))
    assert seen == [f"{NAME}:{port}"]
    assert dns.asked == 1
    assert "does not say which participant" in refused.value.reason
