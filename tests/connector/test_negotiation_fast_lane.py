"""The DSP fast lane (``connector.dsp_http.fast_lane``) answers exactly as the framework's routes.

Two connectors from one configuration, one with the fast paths (the lane takes DSP ``POST``s
before the router) and one without (every request through the router), get the same hostile and
malformed requests; status, content type, body and ``Allow`` must be the same, and the request
metrics must name the same route templates. A request the lane takes reaches the DSP endpoint
with every middleware outside it still applied (NUL in the path, unknown suffixes, trailing
slashes, encoded slashes and methods it does not take fall through to the router).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector.app import create_app
from connector.config import TuningConfig, load_config
from sluis.servers import serve_in_thread
from tests.connector.dsp_world import make_authority, make_party

JSON = {"Content-Type": "application/json"}
MESSAGE = (
    b'{"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], '
    b'"@type": "ContractNegotiationEventMessage", "providerPid": "p", "consumerPid": "c", '
    b'"eventType": "ACCEPTED"}'
)
#: method, path (raw, as sent), headers, body
REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("POST", "/dsp/negotiations/request", JSON, MESSAGE),
    ("POST", "/dsp/negotiations/request", {**JSON, "Authorization": "Bearer not.a.token"}, MESSAGE),
    ("POST", "/dsp/negotiations/offers", {"Authorization": "Bearer x"}, b"{"),
    ("POST", "/dsp/negotiations/urn:uuid:1/events", {**JSON, "Authorization": "Bearer a.b.c"}, MESSAGE),
    ("POST", "/dsp/negotiations/urn:uuid:1/agreement/verification", {"Content-Type": "text/plain"}, b"x"),
    ("POST", "/dsp/negotiations/urn:uuid:1/agreement", JSON, b" " * (300 * 1024)),
    ("POST", "/dsp/negotiations/x/termination", {"Authorization": "Bearer x"}, b"{}"),
    ("POST", "/dsp/negotiations/x/unknown", JSON, MESSAGE),
    ("POST", "/dsp/negotiations/x/events/", JSON, MESSAGE),
    ("POST", "/dsp/negotiations//events", JSON, MESSAGE),
    ("POST", "/dsp/negotiations/a%2Fb/events", JSON, MESSAGE),
    ("POST", "/dsp/negotiations/a%00b/events", JSON, MESSAGE),
    ("POST", "/dsp/negotiations/request/events", JSON, MESSAGE),
    ("POST", "/dsp/negotiations/x", JSON, MESSAGE),
    ("POST", "/dsp/catalog/request", {"Authorization": "Bearer x"}, b"[]"),
    ("POST", "/dsp/catalog/request/", JSON, b"{}"),
    ("POST", "/dsp/transfers/request", JSON, b"{}"),
    ("POST", "/dsp/transfers/t-1/start", {**JSON, "Authorization": "Basic abc"}, b"{}"),
    ("POST", "/dsp/transfers/t-1/completion/extra", JSON, b"{}"),
    ("PUT", "/dsp/negotiations/x/events", JSON, MESSAGE),
    ("GET", "/dsp/negotiations/x/events", {}, b""),
    ("GET", "/dsp/negotiations/x", {}, b""),
    ("POST", "/dsp", JSON, b"{}"),
    ("POST", "/dsp/", JSON, b"{}"),
]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root: Path = tmp_path_factory.mktemp("fast-lane")
    authority = make_authority()
    with_lane = make_party(root, "lane", authority, f"sqlite:///{root / 'lane.db'}")
    without = make_party(root, "router", authority, f"sqlite:///{root / 'router.db'}")
    apps = []
    for party, fast in ((with_lane, True), (without, False)):
        config = dataclasses.replace(load_config(party.config_path), tuning=TuningConfig(fast_paths=fast))
        apps.append((create_app(config), party.port))
    with serve_in_thread(apps[0][0], port=apps[0][1]) as lane, serve_in_thread(
        apps[1][0], port=apps[1][1]
    ) as router:
        yield lane, router


def _answer(base: str, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[object, ...]:
    with httpx.Client(timeout=30) as client:
        request = client.build_request(method, base + path, headers=headers, content=body)
        request.url = httpx.URL(base + path)  # keep the path exactly as written (%2F, %00, //)
        response = client.send(request)
    text = response.text
    return response.status_code, response.headers.get("content-type"), response.headers.get("allow"), text


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"), REQUESTS, ids=[f"{m} {p}" for m, p, _h, _b in REQUESTS]
)
def test_the_lane_answers_as_the_router(
    both: tuple[str, str], method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    lane, router = both
    answered = _answer(lane, method, path, headers, body)
    assert answered == _answer(router, method, path, headers, body)
    assert answered[0] < 500  # bad input is never a server error


def _dsp_series(base: str) -> set[str]:
    text = httpx.get(base + "/metrics", timeout=30).text
    return set(re.findall(r'sluis_http_requests_total\{[^}]*route="(/dsp[^"]*)"[^}]*\}', text))


def test_metrics_name_the_same_route_templates(both: tuple[str, str]) -> None:
    lane, router = both
    for base in both:
        for method, path, headers, body in REQUESTS[:5]:
            _answer(base, method, path, headers, body)
    series = _dsp_series(lane)
    assert "/dsp/negotiations/{pid}/events" in series
    assert "/dsp/negotiations/request" in series
    assert series == _dsp_series(router)
