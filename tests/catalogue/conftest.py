"""A real catalogue node per test: Oxigraph and SQLite in a temporary folder, served on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalogue.api import CatalogueNode, create_catalogue_app
from catalogue.config import CatalogueConfig
from sluis.servers import free_port, serve_in_thread
from tests.catalogue.catalogue_records import OTHER_PUBLISHER, PUBLISHER


@dataclass
class RunningNode:
    url: str
    data_dir: Path
    node: CatalogueNode
    token: str
    other_token: str
    client: httpx.Client

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def publish(
        self, body: str | bytes, media_type: str = "text/turtle", token: str | None = None
    ) -> httpx.Response:
        return self.client.post(
            "/catalogue/datasets", content=body, headers={"Content-Type": media_type, **self.auth(token)}
        )

    def replace(self, record_id: str, body: str, token: str | None = None) -> httpx.Response:
        return self.client.put(
            f"/catalogue/datasets/{record_id}",
            content=body,
            headers={"Content-Type": "text/turtle", **self.auth(token)},
        )

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a failed request must leave untouched: store quads and index rows."""
        quads = sorted(
            str(quad) for quad in self.node.store.oxigraph.quads_for_pattern(None, None, None, None)
        )
        connection = self.node.index._reader()
        records = connection.execute("SELECT * FROM record ORDER BY id").fetchall()
        facets = connection.execute("SELECT * FROM record_facet ORDER BY value_id, record").fetchall()
        counts = connection.execute("SELECT * FROM facet_value ORDER BY facet, value").fetchall()
        text = connection.execute("SELECT rowid FROM record_text WHERE record_text MATCH 'grid'").fetchall()
        return (tuple(quads), tuple(records), tuple(facets), tuple(counts), tuple(text))


NodeFactory = Callable[..., AbstractContextManager[RunningNode]]


@contextmanager
def running_node(folder: Path, **overrides: Any) -> Iterator[RunningNode]:
    """A node over ``folder`` served on loopback, with config overrides."""
    port = free_port()
    config = CatalogueConfig(public_url=f"http://127.0.0.1:{port}", **overrides)
    app = create_catalogue_app(folder, config)
    node: CatalogueNode = app.state.catalogue
    token = node.tokens.create(PUBLISHER).token
    other = node.tokens.create(OTHER_PUBLISHER).token
    with serve_in_thread(app, port=port) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield RunningNode(url, folder, node, token, other, client)


@pytest.fixture
def start_node(tmp_path: Path) -> NodeFactory:
    """Start a node with config overrides: ``with start_node(sparql_timeout_seconds=0.1) as node``."""

    @contextmanager
    def start(data_dir: Path | None = None, **overrides: Any) -> Iterator[RunningNode]:
        with running_node(data_dir or tmp_path / "node", **overrides) as node:
            yield node

    return start


@pytest.fixture
def catalogue_node(start_node: NodeFactory) -> Iterator[RunningNode]:
    with start_node() as node:
        yield node
