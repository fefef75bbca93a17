"""``kill -9`` of a real node process in the middle of a write, then a restart: store and index
agree, nothing stored is unfindable, and publishing the same records again succeeds.

The kill is aimed: a watcher kills the process the moment the write note
(``store.pending.json``, written before the store write and removed after the index commit)
appears, and the test checks afterwards that the note is still on disk, i.e. that the process
died inside the window where store and index can disagree. Then in-process cases for what a
kill can leave but cannot be aimed at reliably (a store write the index never saw, a fragment
of a bulk load)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from catalogue.api import STORE_DIR, open_node
from catalogue.index import SearchQuery
from catalogue.publish import record_id_for
from catalogue.store import OxigraphStore
from catalogue.tokens import TOKENS_FILE, TokenStore
from sluis.servers import free_port
from tests.catalogue.catalogue_records import PUBLISHER, dataset_iri, dataset_turtle

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0
ATTEMPTS = 8
BULK_RECORDS = 600
INGEST_EDIT_BYTES = 512


def _journal(data: Path) -> Path:
    return data / f"{STORE_DIR}.pending.json"


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}


class Sniper:
    """Kills ``process`` with SIGKILL as soon as ``path`` exists (and ``also()`` holds)."""

    def __init__(
        self, process: subprocess.Popen[bytes], path: Path, also: Callable[[], bool] = lambda: True
    ) -> None:
        self.process = process
        self.path = path
        self.also = also
        self.fired = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while self.process.poll() is None:
            if self.path.exists() and self.also():
                self.process.send_signal(signal.SIGKILL)
                self.fired.set()
                return
            time.sleep(0.0002)

    def join(self) -> None:
        self._thread.join(timeout=30)


def _serve(data: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sluis.cli", "catalogue", "serve", "--data", str(data), "--port", str(port)],
        cwd=REPO_ROOT,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/catalogue/node", timeout=1).status_code == 200:
                return url, process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the catalogue node did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)


def _agree(data: Path) -> tuple[set[str], set[str]]:
    """Open the node (which reconciles) and return (records in the store, records in the index)."""
    node = open_node(data)
    try:
        stored = set(node.store.current_versions())
        _, rows = node.index.changes(modified_since=None, offset=0, limit=100_000)
        indexed = {row.record_id for row in rows}
        assert stored == indexed, (stored ^ indexed, "store and index disagree after the restart")
        return stored, indexed
    finally:
        node.close()


@pytest.fixture
def token_for(tmp_path: Path) -> Iterator[str]:
    tokens = TokenStore(tmp_path / "node" / TOKENS_FILE)
    try:
        yield tokens.create(PUBLISHER).token
    finally:
        tokens.close()


def test_kill_during_http_publishing_then_republishing_succeeds(tmp_path: Path, token_for: str) -> None:
    data = tmp_path / "node"
    headers = {"Content-Type": "text/turtle", "Authorization": f"Bearer {token_for}"}
    published: list[str] = []
    interrupted: str | None = None
    for attempt in range(ATTEMPTS):
        url, process = _serve(data)
        for n in range(3):  # confirmed before the watcher starts
            slug = f"confirmed-{attempt}-{n}"
            # The first publish after a start waits for the shapes to compile: seconds on a busy machine.
            reply = httpx.post(
                f"{url}/catalogue/datasets", content=dataset_turtle(slug), headers=headers, timeout=120
            )
            assert reply.status_code == 201, reply.text
            published.append(slug)
        sniper = Sniper(process, _journal(data))
        try:
            for n in range(50):
                slug = f"http-{attempt}-{n}"
                try:
                    reply = httpx.post(
                        f"{url}/catalogue/datasets", content=dataset_turtle(slug), headers=headers, timeout=30
                    )
                except httpx.HTTPError:
                    interrupted = slug
                    break
                assert reply.status_code == 201, reply.text
                published.append(slug)
        finally:
            sniper.join()
            _stop(process)
        if sniper.fired.is_set() and _journal(data).exists():
            break  # died inside the write window: what this test is about
        interrupted = None
    assert interrupted is not None, "no kill landed between the store write and the index commit"

    stored, _ = _agree(data)
    assert not _journal(data).exists()
    assert record_id_for(dataset_iri(interrupted)) not in stored, "an unconfirmed publish was kept"
    assert {record_id_for(dataset_iri(slug)) for slug in published} <= stored, "a confirmed record was lost"
    url, process = _serve(data)
    try:
        again = httpx.post(
            f"{url}/catalogue/datasets", content=dataset_turtle(interrupted), headers=headers, timeout=120
        )
        assert again.status_code == 201, again.text
        search = httpx.get(f"{url}/catalogue/search", params={"page_size": 1}, timeout=120).json()
        assert search["total"] == len(stored) + 1
        for slug in published[:3]:  # confirmed records survived, and are not published twice
            replay = httpx.post(
                f"{url}/catalogue/datasets", content=dataset_turtle(slug), headers=headers, timeout=120
            )
            assert replay.status_code == 409, replay.text
    finally:
        _stop(process)


def _write_records(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"bulk-{n:04d}.ttl"
        path.write_text(dataset_turtle(f"bulk-{n}", title=f"Bulk record {n}"))
        paths.append(path)
    return paths


def _bulk_publish(data: Path, files: list[Path]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sluis.cli", "catalogue", "publish", "--data", str(data), *map(str, files)],
        cwd=REPO_ROOT,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_during_bulk_publishing_then_rerunning_the_same_publish_repairs_it(tmp_path: Path) -> None:
    data = tmp_path / "node"
    files = _write_records(tmp_path / "records", BULK_RECORDS)
    process = _bulk_publish(data, files)
    manifest_at_note: list[int] = []

    def batch_reached_the_store() -> bool:
        """The bulk loader has ingested its table files: RocksDB's manifest records them all in
        one edit of a kilobyte or more (smaller edits before it are bookkeeping)."""
        size = sum(path.stat().st_size for path in (data / STORE_DIR).glob("MANIFEST-*"))
        if not manifest_at_note:
            manifest_at_note.append(size)
        return size > manifest_at_note[0] + INGEST_EDIT_BYTES

    sniper = Sniper(process, _journal(data), batch_reached_the_store)
    process.wait(timeout=600)
    sniper.join()
    assert sniper.fired.is_set(), "the publish finished before any batch was written"
    assert _journal(data).exists(), "the kill landed outside the batch write"

    raw = OxigraphStore(data / STORE_DIR)  # the store as the kill left it, not yet reconciled
    try:
        written = sum(1 for _ in raw.oxigraph.quads_for_pattern(None, None, None, None))
    finally:
        raw.close()
    assert written > 0, "the kill landed before the batch reached the store"
    stored, _ = _agree(data)
    assert not stored, "the interrupted first batch left records behind"
    rerun = _bulk_publish(data, files)
    assert rerun.wait(timeout=600) == 0
    stored, _ = _agree(data)
    assert len(stored) == BULK_RECORDS
    node = open_node(data)
    try:
        assert node.index.search(SearchQuery("Bulk record")).total == BULK_RECORDS
    finally:
        node.close()


def test_a_store_write_the_index_never_committed_is_undone_at_start(tmp_path: Path) -> None:
    """What a kill between the two leaves, without the note (an older node, a lost note)."""
    data = tmp_path / "node"
    node = open_node(data)
    try:
        kept = node.publisher.publish(dataset_turtle("kept").encode(), "text/turtle", owner=None)
        graph = node.publisher.parse(dataset_turtle("lost").encode(), "text/turtle")
        prepared = node.publisher.prepare(graph, owner=None)
        node.store.write([prepared.version])  # stored, never indexed
        revised = node.publisher.parse(dataset_turtle("kept", title="Revised").encode(), "text/turtle")
        update = node.publisher.prepare(revised, owner=None, record_id=kept.record_id)
        node.store.write([update.version])  # version 2 stored, index still at version 1
    finally:
        node.close()
    stored, _ = _agree(data)
    assert stored == {kept.record_id}
    node = open_node(data)
    try:
        current = node.store.current(kept.record_id)
        assert current is not None
        assert current.version == 1
        assert "Revised" not in current.content
        again = node.publisher.publish(dataset_turtle("lost").encode(), "text/turtle", owner=None)
        assert again.created
    finally:
        node.close()


def test_a_fragment_of_a_bulk_load_named_by_the_note_is_removed_at_start(tmp_path: Path) -> None:
    data = tmp_path / "node"
    node = open_node(data)
    try:
        graph = node.publisher.parse(dataset_turtle("fragment").encode(), "text/turtle")
        prepared = node.publisher.prepare(graph, owner=None)
        with node.store.pending([prepared.version]):
            lines = node.store._nquads_for([prepared.version]).split("\n")
            # half the statements, as a bulk load cut short would leave them
            half = "\n".join(lines[: len(lines) // 2]).encode()
            node.store.oxigraph.bulk_load(half, ox.RdfFormat.N_QUADS)
            os.replace(_journal(data), tmp_path / "kept-note")  # the crash: the note stays
        os.replace(tmp_path / "kept-note", _journal(data))
    finally:
        node.close()
    node = open_node(data)
    try:
        names = (prepared.record_id, str(prepared.dataset))
        left = [
            quad
            for quad in node.store.oxigraph.quads_for_pattern(None, None, None, None)
            if any(name in str(quad) for name in names)
        ]
        assert left == []
        assert not _journal(data).exists()
    finally:
        node.close()
