"""A running connector facing the requests that would make it contact places a stranger chose.

The attacker holds a real membership credential of the data space (so authentication is not
what stops it) and publishes its own DID document. A socket that accepts connections and never
answers plays the slow DID host; a counting listener plays the internal service the attacker
wants reached. The connector resolves DIDs with a long timeout here, so "does not stall" is
shown by what answers while the slow host still holds its connections, not by a clock.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from connector.app import create_app
from connector.config import ConnectorConfig, load_config
from connector.identity import (
    DidResolver,
    KeyPair,
    did_document,
    did_web_for,
    dsp_service,
    issue_credential,
    issue_token,
    utc_now,
)
from sluis.commands.authority import load_authority
from sluis.servers import free_port, serve_in_thread
from tests.robustness.worlds import run_cli, wait_until
from vocab import dsp

# Long enough that no hung fetch ends by itself during a test: only the test releases them.
PATIENT_RESOLVER_SECONDS = 300.0
HOSTILE_REQUESTS = 12
OFFER = {"@id": "urn:sluis:offer:any", "@type": "Offer", "permission": [{"action": "use"}], "target": "x"}


class SlowHost:
    """Accepts TCP connections and never answers, until ``release``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.accepted = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.held.append(conn)

    def release(self) -> None:
        """Close every held connection (the waiting clients see the peer hang up)."""
        with self._lock:
            held, self.held = self.held, []
        for conn in held:
            conn.close()

    def open_connections(self) -> int:
        with self._lock:
            return len(self.held)

    def close(self) -> None:
        self.release()
        self.sock.close()


@dataclass
class DidHost:
    """Serves DID documents the attacker wrote, for DIDs on its own host and port."""

    port: int
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def did(self, name: str) -> str:
        return did_web_for("127.0.0.1", self.port, [name])

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/{path:path}")
        async def document(path: str) -> JSONResponse:
            found = self.documents.get(path)
            return JSONResponse(found or {}, status_code=200 if found else 404)

        return app


@dataclass
class Perimeter:
    provider: ConnectorConfig
    url: str
    authority_dir: Path
    did_host: DidHost

    def member(
        self, name: str, services: list[dict[str, str]] | None = None
    ) -> tuple[str, KeyPair, dict[str, Any]]:
        """A member of the data space with a DID document of its own making."""
        key = KeyPair.generate()
        did = self.did_host.did(name)
        self.did_host.documents[f"{name}/did.json"] = did_document(did, key, services or [])
        authority = load_authority(self.authority_dir)
        now = utc_now()
        credential = issue_credential(
            authority.key, authority.did, did, "MembershipCredential", {},
            now - timedelta(minutes=1), now + timedelta(hours=1),
        )  # fmt: skip
        return did, key, credential

    def post(self, path: str, body: Any, token: str) -> httpx.Response:
        with httpx.Client(timeout=PATIENT_RESOLVER_SECONDS * 2) as client:
            return client.post(
                f"{self.url}/dsp{path}", json=body, headers={"Authorization": f"Bearer {token}"}
            )


@pytest.fixture(scope="module")
def perimeter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Perimeter]:
    root = tmp_path_factory.mktemp("perimeter")
    authority_dir = root / "authority"
    run_cli("authority", "init", "--id", did_web_for("127.0.0.1", free_port()), "--dir", str(authority_dir))
    port = free_port()
    run_cli(
        "participant", "init", "--id", did_web_for("127.0.0.1", port), "--dir", str(root / "provider"),
        "--authority-dir", str(authority_dir),
    )  # fmt: skip
    config = load_config(root / "provider" / "connector.toml")
    did_host = DidHost(free_port())
    with ExitStack() as stack:
        resolver = stack.enter_context(
            DidResolver(
                allowed_hosts=config.security.did_hosts,
                address_policy=config.security.address_policy(),
                timeout_seconds=PATIENT_RESOLVER_SECONDS,
                remember_failures_after_seconds=0,  # the hung fetches end when the test says
            )
        )
        stack.enter_context(serve_in_thread(did_host.app(), port=did_host.port))
        url = stack.enter_context(serve_in_thread(create_app(config, resolver=resolver), port=port))
        yield Perimeter(config, url, authority_dir, did_host)


@contextmanager
def counting_listener(host: str = "127.0.0.1") -> Iterator[SlowHost]:
    listener = SlowHost(host)
    try:
        yield listener
    finally:
        listener.close()


def _reason(response: httpx.Response) -> str:
    body = response.json()
    assert body.get("@type") in {"CatalogError", "ContractNegotiationError"}, body
    return " ".join(body.get("reason", []))


def test_the_development_config_is_explicit() -> None:
    # the loopback allowance the suite relies on is a visible setting, off unless written
    assert ConnectorConfig.__dataclass_fields__["security"].default.allow_loopback is False  # type: ignore[attr-defined]


def test_a_callback_listed_only_in_the_peers_own_did_document_is_never_contacted(
    perimeter: Perimeter,
) -> None:
    with counting_listener() as internal:
        target = f"http://127.0.0.1:{internal.port}/dsp"
        did, key, credential = perimeter.member(
            "ssrf", [dsp_service(perimeter.did_host.did("ssrf"), target)]
        )
        token = issue_token(key, did, perimeter.provider.participant_id, [credential])
        message = dsp.contract_request_message(
            "urn:uuid:perimeter-ssrf", OFFER,
            callback_address=target,
        )  # fmt: skip
        response = perimeter.post("/negotiations/request", message, token)
        assert response.status_code == 400, response.text
        assert "callbackAddress" in _reason(response)
        assert internal.accepted == 0, "the connector contacted an address the peer published itself"


def test_a_did_host_off_the_trust_list_is_never_contacted(perimeter: Perimeter) -> None:
    with counting_listener("127.0.0.2") as internal:
        stranger = did_web_for("127.0.0.2", internal.port)
        token = issue_token(KeyPair.generate(), stranger, perimeter.provider.participant_id)
        response = perimeter.post("/catalog/request", dsp.catalog_request_message(), token)
        assert response.status_code == 401, response.text
        assert "trust list" in _reason(response)
        assert internal.accepted == 0


def test_a_did_host_that_never_answers_does_not_stall_the_connector(perimeter: Perimeter) -> None:
    member_did, member_key, membership = perimeter.member("patient")
    first = perimeter.post(
        "/catalog/request",
        dsp.catalog_request_message(),
        issue_token(member_key, member_did, perimeter.provider.participant_id, [membership]),
    )
    assert first.status_code == 200, first.text  # the member's document is now cached

    with counting_listener() as slow, ThreadPoolExecutor(HOSTILE_REQUESTS) as pool:
        strangers = [did_web_for("127.0.0.1", slow.port, [f"u{i}"]) for i in range(HOSTILE_REQUESTS)]
        futures = {
            did: pool.submit(
                perimeter.post,
                "/catalog/request",
                dsp.catalog_request_message(),
                issue_token(KeyPair.generate(), did, perimeter.provider.participant_id),
            )
            for did in strangers
        }
        wait_until(lambda: sum(f.done() for f in futures.values()) >= HOSTILE_REQUESTS - 2, "refusals")
        busy = [f.result() for f in futures.values() if f.done()]
        assert all(r.status_code == 401 and "did_resolver_busy" in _reason(r) for r in busy)
        hung = [did for did, f in futures.items() if not f.done()]
        assert slow.open_connections() == len(hung) == 2  # at most two fetches per host

        with httpx.Client(timeout=60) as client:
            version = client.get(f"{perimeter.url}/.well-known/dspace-version")
        assert version.status_code == 200
        assert version.json()["protocolVersions"]
        served = perimeter.post(
            "/catalog/request",
            dsp.catalog_request_message(),
            issue_token(member_key, member_did, perimeter.provider.participant_id, [membership]),
        )
        assert served.status_code == 200, served.text
        assert slow.open_connections() == 2, "the slow host was released before the others answered"

        slow.release()
        for did in hung:
            failed = futures[did].result()
            assert failed.status_code == 401
            assert "did_unreachable" in _reason(failed)
        accepted = slow.accepted
        for did in hung:  # a failure is remembered: the host is not asked again at once
            again = perimeter.post(
                "/catalog/request",
                dsp.catalog_request_message(),
                issue_token(KeyPair.generate(), did, perimeter.provider.participant_id),
            )
            assert again.status_code == 401
            assert "remembered" in _reason(again)
        assert slow.accepted == accepted


def test_a_trusted_did_host_resolving_to_an_internal_address_is_not_fetched() -> None:
    from connector.addresses import AddressPolicy
    from connector.identity import IdentityError

    policy = AddressPolicy(resolver=lambda _host, _port: ["10.0.0.7"])
    resolver = DidResolver(allowed_hosts=["members.example.eu"], address_policy=policy)
    with resolver, pytest.raises(IdentityError) as refused:
        resolver.resolve("did:web:members.example.eu")
    assert refused.value.code == "did_host_refused"
    assert "10.0.0.7" in refused.value.message


def test_the_membership_claim_for_endpoints_is_part_of_our_context() -> None:
    context = json.loads((Path(__file__).resolve().parents[2] / "vocab/contexts/sluis.jsonld").read_text())
    assert context["@context"]["dspEndpoints"]["@id"] == "sluis:dspEndpoints"


def test_the_outbox_client_checks_the_address_it_actually_connected_to() -> None:
    # The callback host passed the check when the peer named it; by the time the outbox sends,
    # the name may resolve to an internal address (DNS rebinding). Here "localhost" plays that
    # name: the client resolves it itself and must refuse the loopback peer it reaches.
    from connector.addresses import AddressPolicy
    from connector.dsp_client import DspClient, DspClientError

    received: list[str] = []
    app = FastAPI()

    @app.post("/dsp/negotiations/{pid}/events")
    async def events(pid: str) -> JSONResponse:
        received.append(pid)
        return JSONResponse({}, status_code=200)

    port = free_port()
    key = KeyPair.generate()
    did = did_web_for("127.0.0.1", free_port())
    url = f"http://localhost:{port}/dsp/negotiations/p1/events"
    with serve_in_thread(app, port=port):
        strict = DspClient(did, key, address_policy=AddressPolicy())
        with pytest.raises(DspClientError, match="loopback"):
            strict.post(url, did, {"@type": "ContractNegotiationEventMessage"})
        strict.close()
        assert received == []
        development = DspClient(did, key, address_policy=AddressPolicy(allow_loopback=True))
        assert development.post(url, did, {"@type": "ContractNegotiationEventMessage"}).status == 200
        development.close()
        assert received == ["p1"]


def test_a_quick_failure_is_not_remembered_so_a_restarting_peer_is_not_locked_out() -> None:
    asked: list[str] = []
    app = FastAPI()

    @app.get("/{path:path}")
    async def missing(path: str) -> JSONResponse:
        asked.append(path)
        return JSONResponse({}, status_code=404)

    from connector.identity import IdentityError

    port = free_port()
    did = did_web_for("127.0.0.1", port)
    with serve_in_thread(app, port=port), DidResolver(allowed_hosts=["127.0.0.1"]) as resolver:
        for _ in range(2):
            with pytest.raises(IdentityError, match="404"):
                resolver.resolve(did)
    assert len(asked) == 2
