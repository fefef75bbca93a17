"""A hostile DSP peer (its own did:web, its DID document naming its own DSP endpoint) answers our
connector's requests with what a parser chokes on.

Whatever a peer answers - JSON nested a hundred thousand levels deep, a body that is not JSON,
a JSON value that is not an object - our side reports the peer's failure (a 4xx or 502 problem
naming it), never a 500, and keeps serving.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from connector.identity import KeyPair, did_document, did_web_for, dsp_service
from sluis.servers import free_port, serve_in_thread
from tests.robustness.worlds import ConnectorWorld

DEEP = "[" * 200_000 + "]" * 200_000
ANSWERS = {
    "deep": DEEP,
    "deep-object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "not-json": "<html>hello</html>",
    "array": "[1, 2, 3]",
    "huge-number": "{\"n\": " + "9" * 100_000 + "}",
    "bad-utf8": b"{\"a\": \"\xff\xfe\"}",
}


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[str, str, dict[str, str | bytes]]]:
    port = free_port()
    did = did_web_for("127.0.0.1", port)
    dsp = f"http://127.0.0.1:{port}/dsp"
    document = did_document(did, KeyPair.generate(), [dsp_service(did, dsp)])
    answer: dict[str, str | bytes] = {"body": "{}"}
    app = FastAPI()

    @app.get("/.well-known/did.json")
    def did_json() -> JSONResponse:
        return JSONResponse(document, media_type="application/did+json")

    @app.api_route("/dsp/{path:path}", methods=["GET", "POST"])
    async def anything(path: str, request: Request) -> Response:
        return Response(answer["body"], status_code=200, media_type="application/json")

    with serve_in_thread(app, port=port):
        yield did, dsp, answer


@pytest.mark.parametrize("kind", sorted(ANSWERS))
def test_a_peers_answer_no_parser_can_read_is_the_peers_failure(
    world: ConnectorWorld, hostile: tuple[str, str, dict[str, str | bytes]], kind: str
) -> None:
    did, dsp, answer = hostile
    answer["body"] = ANSWERS[kind]
    api = world.clients["consumer"]
    for path, body in (
        ("/catalog/request", {"counterparty_address": dsp, "counterparty_id": did}),
        ("/catalog/dataset", {"counterparty_address": dsp, "counterparty_id": did, "dataset_id": "x"}),
    ):
        reply = api.post(path, json=body)
        assert reply.status_code < 500 or reply.status_code == 502, (path, reply.status_code,
                                                                     reply.text[:300])
    assert api.get("/negotiations").status_code == 200


def _segment(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _deep_token(depth: int) -> str:
    header = _segment(json.dumps({"alg": "EdDSA"}))
    return header + "." + _segment("[" * depth + "]" * depth) + "." + "A" * 86


@pytest.mark.parametrize("depth", [2_000, 20_000])
def test_an_unauthenticated_token_nested_deep_is_a_401(world: ConnectorWorld, depth: int) -> None:
    token = _deep_token(depth)
    for method, url, scheme in (
        ("POST", f"{world.provider.dsp}/catalog/request", "Bearer"),
        ("GET", world.data_endpoint, "DPoP"),
    ):
        reply = httpx.request(method, url, headers={"Authorization": f"{scheme} {token}"},
                              json={} if method == "POST" else None, timeout=60)
        assert reply.status_code in (400, 401, 413, 431), (url, reply.status_code, reply.text[:300])
