"""An interrupted harvest resumes where it stopped: the pages it stored are not fetched again,
nothing is lost, and nothing is deleted by the incomplete run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogue.api import open_node
from catalogue.harvest import Federation, NodeSettings, Run, RunState, Source
from catalogue.seed import seed_files
from tests.federation.conftest import Process, catalogue_process, free_port, sluis


@pytest.fixture(scope="module")
def node_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("resume")
    port = free_port()
    seeds = sorted(path for path in seed_files() if path.name.startswith("destatis-"))
    published = sluis("catalogue", "publish", *map(str, seeds), "--data", str(root / "b"))
    assert published.returncode == 0, published.stderr
    server: Process = catalogue_process("b", root / "b", port, root)
    try:
        server.wait_ready()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_an_interrupted_harvest_resumes_at_its_cursor(node_b: str, tmp_path: Path) -> None:
    source = Source("b", f"{node_b}/catalogue/catalog?page_size=1", "dcat")
    settings = NodeSettings(public_url="http://127.0.0.1:9", sources=(source,))
    node = open_node(tmp_path / "a")
    stop = threading.Event()

    def stop_after_two_pages(run: Run) -> None:
        if run.counts.get("pages", 0) == 2:
            stop.set()

    first = Federation(node.publisher, tmp_path / "a", settings)
    try:
        interrupted = first.harvester.harvest("b", progress=stop_after_two_pages, stop=stop)
        assert interrupted.state is RunState.INTERRUPTED
        assert interrupted.counts["stored"] == 2
        assert node.index.count() == 2
    finally:
        first.close()

    # A new process (a new Federation on the same folder) picks the run up at its cursor.
    second = Federation(node.publisher, tmp_path / "a", settings)
    try:
        resumed = second.harvest("b")
        assert resumed.id == interrupted.id
        assert resumed.state is RunState.DONE
        assert resumed.counts["pages"] == 4  # the two stored pages were not fetched again
        assert resumed.counts["stored"] == 4
        assert node.index.count() == 4
        assert second.status("b")["counts"]["records"] == 4  # type: ignore[index]
    finally:
        second.close()
        node.close()
