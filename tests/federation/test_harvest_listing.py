"""A source larger than one run's caps is listed completely over several runs (each carries the
last one's listing on from its cursor) and swept only then; every fetch, the first and each page
after it, passes the node's address policy."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from catalogue.api import open_node
from catalogue.harvest import Federation, HarvestLimits, NodeSettings, RunState, Source
from tests.federation.conftest import free_port

PAGES = 3
PER_PAGE = 2


class PagedSource:
    """A Hydra-paged catalogue of ``PAGES`` pages whose datasets the test can drop."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dropped: set[str] = set()
        self.requests: list[str] = []
        app = Starlette(routes=[Route("/catalog", self.page)])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/catalog"

    def datasets(self) -> list[str]:
        every = [f"https://data.example.org/dataset/{n}" for n in range(PAGES * PER_PAGE)]
        return [dataset for dataset in every if dataset not in self.dropped]

    async def page(self, request: Request) -> Response:
        number = int(request.query_params.get("page", "1"))
        self.requests.append(str(request.url))
        # Tombstone-free offset paging would shift later datasets into pages already read; this
        # source keeps a dropped dataset's slot empty, as a change-ordered feed does.
        slots = [f"https://data.example.org/dataset/{n}" for n in range(PAGES * PER_PAGE)]
        lines = [
            "@prefix dcat: <http://www.w3.org/ns/dcat#> .",
            "@prefix dct: <http://purl.org/dc/terms/> .",
            "@prefix hydra: <http://www.w3.org/ns/hydra/core#> .",
        ]
        if number < PAGES:
            lines.append(f"<{self.url}?page={number}> hydra:next <{self.url}?page={number + 1}> .")
        for dataset in slots[(number - 1) * PER_PAGE : number * PER_PAGE]:
            if dataset not in self.dropped:
                lines.append(f'<{dataset}> a dcat:Dataset ; dct:title "Dataset {dataset[-1]}"@en .')
        body = "\n".join(lines)
        tag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"ETag": tag})
        return Response(body, media_type="text/turtle", headers={"ETag": tag})

    def __enter__(self) -> PagedSource:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def paged() -> Iterator[PagedSource]:
    with PagedSource() as source:
        yield source


def test_a_source_larger_than_the_page_cap_is_listed_over_runs_and_then_swept(
    paged: PagedSource, tmp_path: Path
) -> None:
    source = Source("paged", paged.url, "dcat")
    settings = NodeSettings(
        public_url="http://127.0.0.1:9", sources=(source,), limits=HarvestLimits(max_pages=2)
    )
    node = open_node(tmp_path / "a")
    federation = Federation(node.publisher, tmp_path / "a", settings)
    try:
        first = federation.harvest("paged")
        assert first.state is RunState.CAPPED
        assert first.counts["pages"] == 2
        second = federation.harvest("paged")
        assert second.continues == first.id
        assert second.state is RunState.DONE
        assert second.counts["pages"] == 1
        assert node.index.count() == PAGES * PER_PAGE

        paged.dropped.add("https://data.example.org/dataset/1")
        third = federation.harvest("paged")
        assert third.state is RunState.CAPPED
        assert third.counts.get("deleted", 0) == 0  # a partial listing never deletes
        fourth = federation.harvest("paged")
        assert fourth.continues == third.id
        assert fourth.state is RunState.DONE
        assert fourth.counts["deleted"] == 1  # swept once the listing, across runs, was complete
        assert node.index.count() == PAGES * PER_PAGE - 1
        assert federation.status("paged")["counts"]["records"] == PAGES * PER_PAGE - 1  # type: ignore[index]
    finally:
        federation.close()
        node.close()


def test_a_node_off_loopback_refuses_a_loopback_source_before_any_request(
    paged: PagedSource, tmp_path: Path
) -> None:
    source = Source("paged", paged.url, "dcat")
    settings = NodeSettings(public_url="https://catalogue.example.eu", sources=(source,))
    node = open_node(tmp_path / "a")
    federation = Federation(node.publisher, tmp_path / "a", settings)
    try:
        run = federation.harvest("paged")
    finally:
        federation.close()
        node.close()
    assert run.state is RunState.FAILED
    assert run.error is not None
    assert "loopback" in run.error
    assert "allow_loopback" in run.error
    assert paged.requests == []  # refused on the connected address: nothing was sent


def test_each_page_is_asked_for_conditionally_and_a_304_stands_for_what_it_listed(
    paged: PagedSource, tmp_path: Path
) -> None:
    source = Source("paged", paged.url, "dcat")
    settings = NodeSettings(public_url="http://127.0.0.1:9", sources=(source,))
    node = open_node(tmp_path / "a")
    federation = Federation(node.publisher, tmp_path / "a", settings)
    try:
        assert federation.harvest("paged").counts["stored"] == PAGES * PER_PAGE
        again = federation.harvest("paged")
        assert again.state is RunState.UNCHANGED
        assert again.counts.get("pages", 0) == 0
        assert again.counts["not_modified"] == PAGES

        paged.dropped.add("https://data.example.org/dataset/3")  # on page 2
        changed = federation.harvest("paged")
        assert changed.state is RunState.DONE
        assert changed.counts["pages"] == 1
        assert changed.counts["not_modified"] == PAGES - 1
        assert changed.counts["deleted"] == 1  # the 304 pages' datasets count as listed
        assert node.index.count() == PAGES * PER_PAGE - 1
    finally:
        federation.close()
        node.close()


def test_a_listing_that_never_ends_starts_again_after_the_listing_cap(
    paged: PagedSource, tmp_path: Path
) -> None:
    source = Source("paged", paged.url, "dcat")
    limits = HarvestLimits(max_pages=1, max_listing_pages=2)
    settings = NodeSettings(public_url="http://127.0.0.1:9", sources=(source,), limits=limits)
    node = open_node(tmp_path / "a")
    federation = Federation(node.publisher, tmp_path / "a", settings)
    try:
        runs = [federation.harvest("paged") for _ in range(4)]
    finally:
        federation.close()
        node.close()
    assert [run.state for run in runs] == [RunState.CAPPED] * 4
    assert [run.continues for run in runs] == [None, runs[0].id, None, runs[2].id]
    assert "listing cap reached" in (runs[1].error or "")
    assert "page cap reached" in (runs[2].error or "")
