"""A real did:web host on loopback for the identity tests, and participants published on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response

from connector.identity import KeyPair, TrustedAuthority, did_document, did_web_for, issue_credential
from sluis.servers import free_port, serve_in_thread

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class DidHost:
    """One web server hosting many did:web documents under paths (did:web:127.0.0.1%3Ap:name)."""

    port: int
    served: dict[str, Any] = field(default_factory=dict)

    def did(self, name: str) -> str:
        return did_web_for("127.0.0.1", self.port, [name])

    def publish(self, name: str, key: KeyPair) -> str:
        did = self.did(name)
        self.served[f"{name}/did.json"] = did_document(did, key)
        return did

    def serve_raw(self, name: str, body: Any) -> str:
        self.served[f"{name}/did.json"] = body
        return self.did(name)


def _app(host: DidHost) -> FastAPI:
    app = FastAPI()

    @app.get("/{path:path}")
    def document(path: str) -> Response:
        body = host.served.get(path)
        if body is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        if isinstance(body, bytes):
            return Response(body, media_type="application/json")
        if isinstance(body, tuple) and body[0] == "redirect":
            return RedirectResponse(body[1])
        return JSONResponse(body)

    return app


@pytest.fixture(scope="session")
def did_host() -> Iterator[DidHost]:
    port = free_port()
    host = DidHost(port)
    with serve_in_thread(_app(host), port=port):
        yield host


@dataclass(frozen=True)
class Party:
    did: str
    key: KeyPair


@pytest.fixture(scope="session")
def authority(did_host: DidHost) -> Party:
    key = KeyPair.generate()
    return Party(did_host.publish("authority", key), key)


@pytest.fixture(scope="session")
def trusted(authority: Party) -> TrustedAuthority:
    return TrustedAuthority(authority.did, authority.key.public_multibase)


@pytest.fixture(scope="session")
def provider(did_host: DidHost) -> Party:
    key = KeyPair.generate()
    return Party(did_host.publish("provider", key), key)


@pytest.fixture(scope="session")
def consumer(did_host: DidHost) -> Party:
    key = KeyPair.generate()
    return Party(did_host.publish("consumer", key), key)


def membership_for(authority: Party, subject: str, now: datetime = NOW) -> dict[str, Any]:
    return issue_credential(
        authority.key,
        authority.did,
        subject,
        "MembershipCredential",
        {"memberOf": "Sluis Health Data Space"},
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=365),
    )


def permit_for(authority: Party, subject: str, now: datetime = NOW) -> dict[str, Any]:
    return issue_credential(
        authority.key,
        authority.did,
        subject,
        "EHDSDataPermit",
        {
            "permitId": "NL-HDAB-2026-0042",
            "purposes": ["https://w3id.org/sluis/purpose/scientific-research"],
            "datasets": ["urn:uuid:7f4c1c1e-0001-4000-8000-000000000001"],
            "healthDataAccessBody": "did:web:hdab.example.nl",
        },
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=90),
    )
