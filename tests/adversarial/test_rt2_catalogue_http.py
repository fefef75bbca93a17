"""The catalogue node as an HTTP server, checked against what HTTP promises its clients.

* A 405 names, in ``Allow``, the methods the path does serve. The federation and page routes
  come from routers added with ``include_router``, which the ``Allow`` computation did not see:
  their 405s said ``Allow:`` (nothing), telling a client no method at all would do.
* Every path served by GET answers HEAD like GET without a body (RFC 9110 requires HEAD of a
  general-purpose server); the API answered 405 to a HEAD of a record, the catalogue or search
  (the shared HTTP layer answers HEAD now; kept here as the catalogue's check).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.catalogue.catalogue_records import dataset_turtle
from tests.catalogue.conftest import RunningNode, running_node


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("rt2-http")) as running:
        published = running.publish(dataset_turtle("grid-load"))
        assert published.status_code == 201, published.text
        yield running


def _allowed(node: RunningNode, method: str, path: str) -> set[str]:
    reply = node.client.request(method, path)
    assert reply.status_code == 405, (method, path, reply.status_code)
    assert reply.headers["content-type"].startswith("application/problem+json")
    return {part.strip() for part in reply.headers["allow"].split(",") if part.strip()}


@pytest.mark.parametrize(
    ("path", "served"),
    [
        ("/catalogue/sources", {"GET", "POST"}),
        ("/catalogue/sources/some-source", {"GET"}),
        ("/catalogue/sources/some-source/harvest", {"POST"}),
        ("/.well-known/did.json", {"GET"}),
        ("/pages/catalogue/publish", {"GET", "POST"}),
        ("/catalogue/datasets", {"POST"}),
        ("/catalogue/sparql", {"GET", "POST"}),
    ],
)
def test_a_405_names_the_methods_the_path_serves(node: RunningNode, path: str, served: set[str]) -> None:
    expected = served | {"HEAD"} if "GET" in served else served  # HEAD is answered wherever GET is
    assert _allowed(node, "PATCH", path) == expected


def _record_path(node: RunningNode) -> str:
    hits = node.client.get("/catalogue/search", params={"q": "grid"}).json()["hits"]
    return f"/catalogue/datasets/{hits[0]['id']}"


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("record", "text/turtle"),
        ("record", "application/ld+json"),
        ("/catalogue/catalog", "application/n-triples"),
        ("/catalogue/search?q=grid", "application/json"),
        ("/catalogue/node", "application/json"),
        ("/catalogue/sparql?query=ASK%20%7B%20%3Fs%20%3Fp%20%3Fo%20%7D", "application/json"),
        ("/.well-known/did.json", "application/json"),
        ("/health/live", "application/json"),
        ("/catalogue/datasets/no-such-record", "text/turtle"),
    ],
)
def test_head_is_answered_like_get_without_a_body(node: RunningNode, path: str, accept: str) -> None:
    url = _record_path(node) if path == "record" else path
    got = node.client.get(url, headers={"Accept": accept})
    head = node.client.head(url, headers={"Accept": accept})
    assert head.status_code == got.status_code, (url, head.status_code, got.status_code)
    assert head.headers.get("content-type") == got.headers.get("content-type")
    assert head.headers.get("etag") == got.headers.get("etag")
    assert head.content == b""
