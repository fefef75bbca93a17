"""Store and index stay consistent: a publish that fails at any write step leaves both as they were."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from catalogue.api import CatalogueNode, open_node
from catalogue.index import IndexTransaction, SearchIndex, SearchQuery
from catalogue.publish import PublishError
from catalogue.store import OxigraphStore, RecordVersion, StoreError
from tests.catalogue.catalogue_records import dataset_turtle


class StoreThatFailsOnWrite(OxigraphStore):
    """A real store whose disk 'fills up' on the next write."""

    fail = False

    def write(self, versions: Sequence[RecordVersion]) -> None:
        if self.fail:
            raise StoreError("store-write-failed", "no space left on device")
        super().write(versions)


class IndexThatFailsOnCommit(SearchIndex):
    """A real index whose commit fails after the store accepted the write."""

    fail = False

    @contextmanager
    def transaction(self) -> Iterator[IndexTransaction]:
        with super().transaction() as transaction:
            yield transaction
            if self.fail:
                raise OSError("disk I/O error at commit")


def _state(node: CatalogueNode) -> tuple[Any, ...]:
    """Store quads (blank node labels aside: a reverted graph is restored isomorphic) and index rows."""
    quads = sorted(
        re.sub(r"_:[0-9A-Za-z]+", "_:b", str(quad))
        for quad in node.store.oxigraph.quads_for_pattern(None, None, None, None)
    )
    rows = (
        node.index._reader().execute("SELECT id, version, title, deleted FROM record ORDER BY id").fetchall()
    )
    facets = (
        node.index._reader()
        .execute("SELECT facet, value, count FROM facet_value ORDER BY facet, value")
        .fetchall()
    )
    return tuple(quads), tuple(rows), tuple(facets)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[CatalogueNode]:
    opened = open_node(tmp_path / "node")
    opened.store.close()
    opened.index.close()
    store = StoreThatFailsOnWrite(tmp_path / "node" / "store")
    index = IndexThatFailsOnCommit(tmp_path / "node" / "index.sqlite")
    opened.store = store
    opened.index = index
    opened.publisher.store = store
    opened.publisher.index = index
    yield opened
    opened.close()


def _publish(node: CatalogueNode, slug: str, title: str, record_id: str | None = None) -> str:
    outcome = node.publisher.publish(
        dataset_turtle(slug, title=title).encode(), "text/turtle", owner=None, record_id=record_id
    )
    return outcome.record_id


def test_store_failure_leaves_index_unchanged(node: CatalogueNode) -> None:
    record_id = _publish(node, "grid-load", "Grid load")
    before = _state(node)
    assert isinstance(node.store, StoreThatFailsOnWrite)
    node.store.fail = True
    with pytest.raises(StoreError):
        _publish(node, "grid-load", "Grid load revised", record_id)
    with pytest.raises(StoreError):
        _publish(node, "other", "Another set")
    assert _state(node) == before


def test_index_commit_failure_reverts_the_store_write(node: CatalogueNode) -> None:
    record_id = _publish(node, "grid-load", "Grid load")
    before = _state(node)
    assert isinstance(node.index, IndexThatFailsOnCommit)
    node.index.fail = True
    with pytest.raises(OSError, match="disk I/O"):
        _publish(node, "grid-load", "Grid load revised", record_id)
    with pytest.raises(OSError, match="disk I/O"):
        _publish(node, "other", "Another set")
    with pytest.raises(OSError, match="disk I/O"):
        node.publisher.retract(record_id, owner=None)
    assert _state(node) == before
    node.index.fail = False
    assert node.store.current(record_id) is not None
    assert [info.version for info in node.store.versions(record_id)] == [1]
    revised = _publish(node, "grid-load", "Grid load revised", record_id)
    assert revised == record_id
    assert node.index.search(SearchQuery("revised")).total == 1


def test_store_refuses_a_version_that_skips_or_repeats(node: CatalogueNode) -> None:
    record_id = _publish(node, "grid-load", "Grid load")
    current = node.store.current(record_id)
    assert current is not None
    with pytest.raises(StoreError, match="version"):
        node.store.write([current])


def test_bulk_publish_keeps_good_records_and_reports_bad_ones(node: CatalogueNode) -> None:
    from catalogue.publish import BulkItem

    items = [BulkItem(f"set-{n}", dataset_turtle(f"set-{n}").encode(), "text/turtle") for n in range(5)]
    items.insert(2, BulkItem("dup", dataset_turtle("set-1").encode(), "text/turtle"))
    items.append(BulkItem("garbled", b"<a> <b>", "text/turtle"))
    results = node.publisher.publish_many(items, owner=None, batch_size=3)
    errors = {result.name: result.error for result in results if result.error is not None}
    assert set(errors) == {"dup", "garbled"}
    assert all(isinstance(error, PublishError) for error in errors.values())
    assert node.index.count() == 5
    assert node.store.count_records() == 5


def test_initial_import_loader_adds_only_new_records(node: CatalogueNode) -> None:
    record_id = _publish(node, "grid-load", "Grid load")
    existing = node.store.current(record_id)
    assert existing is not None
    imported = RecordVersion(
        "imported1",
        1,
        "https://data.example.eu/dataset/imported",
        existing.modified,
        False,
        existing.owner,
        existing.source,
        content=existing.content.replace("grid-load", "imported"),
    )
    node.store.load_new([imported])
    loaded = node.store.current("imported1")
    assert loaded is not None
    assert loaded.content == imported.content
    assert [info.version for info in node.store.versions("imported1")] == [1]
    assert node.store.record_for_dataset("https://data.example.eu/dataset/imported") == "imported1"
    with pytest.raises(StoreError, match="exists"):
        node.store.load_new([existing])
