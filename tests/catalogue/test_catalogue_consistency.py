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
from catalogue.pipeline import Document, DocumentResult, IngestMode, IngestPipeline
from catalogue.publish import IngestStatus, PublishError, RecordResult
from catalogue.store import OxigraphStore, RecordVersion, StoreError
from tests.catalogue.catalogue_records import dataset_turtle


class StoreThatFailsOnWrite(OxigraphStore):
    """A real store whose disk 'fills up' on the next write."""

    fail = False

    def write(self, versions: Sequence[RecordVersion], *, bulk: bool = False) -> None:
        if self.fail:
            raise StoreError("store-write-failed", "no space left on device")
        super().write(versions, bulk=bulk)


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


def _documents(count: int) -> list[Document]:
    return [Document(f"set-{n}", dataset_turtle(f"set-{n}").encode(), "text/turtle") for n in range(count)]


def _bulk(
    node: CatalogueNode, documents: list[Document], batch: int = 10, **options: Any
) -> list[RecordResult]:
    """Bulk publishing (``sluis catalogue publish --data``): strict, batches of ``batch`` documents."""
    pipeline = IngestPipeline(node.publisher, batch_documents=batch)
    try:
        done = pipeline.ingest(documents, mode=IngestMode.STRICT, **options)
    finally:
        pipeline.close()
    return [
        *(RecordResult(IngestStatus.REJECTED, None, error=d.error, name=d.name) for d in done if d.error),
        *(record for document in done for record in document.records),
    ]


def test_bulk_publish_keeps_good_records_and_reports_bad_ones(node: CatalogueNode) -> None:
    items = _documents(5)
    items.insert(2, Document("dup", dataset_turtle("set-1").encode(), "text/turtle"))
    items.append(Document("garbled", b"<a> <b>", "text/turtle"))
    results = _bulk(node, items, batch=3)
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


def test_bulk_batch_whose_store_write_fails_leaves_store_and_index_as_after_the_previous_batch(
    node: CatalogueNode,
) -> None:
    after_first: list[tuple[Any, ...]] = []

    def fail_after_first_batch(result: DocumentResult) -> None:
        assert isinstance(node.store, StoreThatFailsOnWrite)
        if result.name == "set-2":  # the last of the first batch
            after_first.append(_state(node))
            node.store.fail = True

    with pytest.raises(StoreError):
        _bulk(node, _documents(6), batch=3, on_document=fail_after_first_batch)
    assert after_first
    assert _state(node) == after_first[0]
    assert node.index.count() == 3
    assert node.store.count_records() == 3


def test_bulk_batch_whose_index_commit_fails_leaves_no_trace_in_the_store(node: CatalogueNode) -> None:
    _publish(node, "grid-load", "Grid load")
    before = _state(node)
    assert isinstance(node.index, IndexThatFailsOnCommit)
    node.index.fail = True
    with pytest.raises(OSError, match="disk I/O"):
        _bulk(node, _documents(4))
    assert _state(node) == before


def test_descriptions_over_several_lines_are_stored_read_back_and_verified(node: CatalogueNode) -> None:
    from rdflib import Literal, URIRef

    from catalogue.publish import record_graph_of
    from catalogue.signing import verify_record
    from vocab.namespaces import DCT

    description = 'First line.\nSecond line with a "quote" and a back\\slash.\r\nThird.'
    escaped = description.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    single = node.publisher.publish(
        dataset_turtle("single", description=escaped).encode(), "text/turtle", owner=None
    )
    bulk = _bulk(
        node, [Document("bulk", dataset_turtle("bulk", description=escaped).encode(), "text/turtle")]
    )
    assert bulk[0].record_id is not None, bulk[0].error
    for record_id, slug in ((single.record_id, "single"), (bulk[0].record_id, "bulk")):
        stored = node.store.current(record_id)
        assert stored is not None
        graph = record_graph_of(stored, with_quality=False)
        dataset = URIRef(f"https://data.example.eu/dataset/{slug}")
        assert (dataset, DCT.description, Literal(description, lang="en")) in graph
        assert verify_record(graph, str(dataset), stored.proof, node.publisher._key_for)
        live = {
            quad.object.value
            for quad in node.store.current_triples(record_id)
            if quad.predicate.value == str(DCT.description)
        }
        assert live == {description}


class _LoaderThatDiesHalfWay:
    """Oxigraph's store whose bulk loader writes half of what it is given, then fails."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def bulk_load(self, data: bytes, format: Any) -> None:
        lines = data.split(b"\n")
        self._store.bulk_load(b"\n".join(lines[: len(lines) // 2]), format)
        raise OSError("disk full during bulk load")


def test_bulk_loader_failing_half_way_leaves_the_store_and_index_as_they_were(node: CatalogueNode) -> None:
    _publish(node, "grid-load", "Grid load")
    before = _state(node)
    assert isinstance(node.store, OxigraphStore)
    real = node.store._store
    node.store._store = _LoaderThatDiesHalfWay(real)  # type: ignore[assignment]
    items = _documents(4)
    with pytest.raises(StoreError, match="disk full"):
        _bulk(node, items)
    node.store._store = real
    assert _state(node) == before
    results = _bulk(node, items)
    assert all(result.error is None for result in results)
    assert node.index.count() == 5
