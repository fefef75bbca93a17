"""A DSP peer that speaks only plain DSP 2025-1: its own did:web, key and membership credential,
messages written like the official examples, and an endpoint that records what it is sent.

It is not a Sluis connector: it never signs agreements, never sends Sluis members, and answers
every callback with a plain acknowledgement. Tests drive it message by message, so each step
of a negotiation or transfer can be taken (or withheld) exactly when the test wants.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from connector.dsp_client import DspClient, DspResponse
from connector.identity import KeyPair, did_document, did_web_for, dsp_service, issue_credential
from sluis.servers import free_port, serve_in_thread
from tests.connector.dsp_world import Authority, Party, wait_until

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"


def pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass
class PlainPeer:
    did: str
    port: int
    key: KeyPair
    client: DspClient
    examples: Path
    credentials: list[dict[str, Any]]
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: the pid this peer answers an initial contract request with (when it is the provider)
    provider_pid: str = field(default_factory=lambda: pid())
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dsp(self) -> str:
        return f"http://127.0.0.1:{self.port}/dsp"

    def post(self, provider: Party, path: str, body: dict[str, Any]) -> DspResponse:
        return self.client.post(f"{provider.dsp}{path}", provider.did, body)

    def get(self, provider: Party, path: str) -> DspResponse:
        return self.client.get(f"{provider.dsp}{path}", provider.did)

    def wait_for(self, suffix: str, count: int = 1) -> list[dict[str, Any]]:
        """Every message received on a path ending in ``suffix``, once there are ``count``."""

        def found() -> list[dict[str, Any]] | None:
            with self.lock:
                bodies = [body for path, body in self.received if path.endswith(suffix)]
            return bodies if len(bodies) >= count else None

        return list(wait_until(found, f"{count} message(s) on {suffix} at the plain peer"))

    # -- plain DSP messages, written from the official examples ---------------------------

    def example(self, name: str, **members: Any) -> dict[str, Any]:
        """The official example ``name`` (e.g. ``negotiation/contract-request-message_initial``)
        with its ids, offer and addresses replaced by ``members`` (``None`` removes a member)."""
        body = dict(json.loads((self.examples / f"{name}.json").read_text(encoding="utf-8")))
        for key, value in members.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        if "callbackAddress" in body:
            body["callbackAddress"] = self.dsp
        return body

    def contract_request(self, consumer_pid: str, offer: dict[str, Any], dataset_id: str) -> dict[str, Any]:
        return self.example(
            "negotiation/contract-request-message_initial",
            consumerPid=consumer_pid,
            offer={**offer, "target": dataset_id},
        )

    def event(self, provider_pid: str, consumer_pid: str, event_type: str) -> dict[str, Any]:
        return self.example(
            "negotiation/contract-negotiation-event-message",
            providerPid=provider_pid,
            consumerPid=consumer_pid,
            eventType=event_type,
        )

    def verification(self, provider_pid: str, consumer_pid: str) -> dict[str, Any]:
        return self.example(
            "negotiation/contract-agreement-verification-message",
            providerPid=provider_pid,
            consumerPid=consumer_pid,
        )

    def transfer_request(self, consumer_pid: str, agreement_id: str) -> dict[str, Any]:
        return self.example(
            "transfer/transfer-request-message",
            consumerPid=consumer_pid,
            agreementId=agreement_id,
            format="HttpData-PULL",
            dataAddress=None,  # pull: the provider gives the address
        )

    def transfer_message(self, kind: str, provider_pid: str, consumer_pid: str) -> dict[str, Any]:
        """``kind``: start, suspension, completion or termination (from ``transfer-<kind>-message``)."""
        return self.example(
            f"transfer/transfer-{kind}-message",
            providerPid=provider_pid,
            consumerPid=consumer_pid,
            dataAddress=None,
        )


def _peer_app(peer_box: dict[str, PlainPeer], document: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/did.json")
    def did_json() -> JSONResponse:
        return JSONResponse(document, media_type="application/did+json")

    @app.post("/dsp/{path:path}")
    async def receive(path: str, request: Request) -> Response:
        body = json.loads(await request.body())
        peer = peer_box["peer"]
        with peer.lock:
            peer.received.append((path, body))
        if path == "negotiations/request":  # an initial request: we are the provider
            answer = {
                "@context": [DSP_CONTEXT],
                "@type": "ContractNegotiation",
                "providerPid": peer.provider_pid,
                "consumerPid": body.get("consumerPid"),
                "state": "REQUESTED",
            }
            return JSONResponse(answer, status_code=201)
        if path == "negotiations/offers":  # a provider-initiated offer: we become the consumer
            answer = {
                "@context": [DSP_CONTEXT],
                "@type": "ContractNegotiation",
                "providerPid": body.get("providerPid"),
                "consumerPid": pid(),
                "state": "OFFERED",
            }
            return JSONResponse(answer, status_code=201)
        return Response(status_code=200)

    return app


@contextmanager
def plain_peer(root: Path, authority: Authority, examples: Path, name: str = "plain") -> Iterator[PlainPeer]:
    """A plain DSP peer on its own loopback port, with a membership credential of ``authority``."""
    port = free_port()
    did = did_web_for("127.0.0.1", port)
    key = KeyPair.generate()
    now = datetime.now(UTC)
    credential = issue_credential(
        authority.key,
        authority.did,
        did,
        "MembershipCredential",
        {"memberOf": "sluis-test-space"},
        now - timedelta(minutes=5),
        now + timedelta(days=1),
    )
    (root / f"{name}-credential.json").write_text(json.dumps(credential))
    box: dict[str, PlainPeer] = {}
    document = did_document(did, key, [dsp_service(did, f"http://127.0.0.1:{port}/dsp")])
    peer = PlainPeer(did, port, key, DspClient(did, key, [credential]), examples, [credential])
    box["peer"] = peer
    with serve_in_thread(_peer_app(box, document), port=port):
        try:
            yield peer
        finally:
            peer.client.close()
