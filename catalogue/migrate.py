"""Move a catalogue between deployments: embedded (Oxigraph + SQLite) <-> shared (SPARQL + PostgreSQL).

Why copy versions, not triples: the store's layout is the same everywhere, but each backend keeps
it its own way (Virtuoso renames blank nodes, Oxigraph normalises datatypes). Every version of
every record, tombstones included, is read through :class:`catalogue.store.RecordStore` and written
through it in order, so the target holds the same history, proofs and quality; the search index is
then rebuilt from the current versions with the same flattening as a publish.

Resumable and idempotent: a record's versions already in the target are skipped, so a migration
stopped half-way (or run twice) ends with the same target. A target record that holds *more*
versions than the source, or another dataset, is a conflict: reported, never overwritten.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from rdflib import Graph, URIRef

from catalogue.index import IndexRow, flatten_record
from catalogue.publish import timestamp
from catalogue.search_backend import IndexWriter, SearchBackend
from catalogue.store import RECORDS_GRAPH, RecordStore, RecordVersion, record_graph
from catalogue.store.remote import SparqlEndpointStore

_log = logging.getLogger(__name__)

# Versions written per store request and rows per index transaction.
DEFAULT_BATCH = 200
_CATALOG_RECORD = "http://www.w3.org/ns/dcat#CatalogRecord"


@dataclass
class MigrationReport:
    records: int = 0
    versions_copied: int = 0
    versions_present: int = 0
    indexed: int = 0
    conflicts: list[str] = field(default_factory=list)


def record_ids(store: RecordStore) -> Iterator[str]:
    """Every record id in a store, tombstones included."""
    if isinstance(store, SparqlEndpointStore):
        yield from store.record_ids()
        return
    prefix = record_graph("")
    results = store.query(
        f"SELECT ?r WHERE {{ GRAPH <{RECORDS_GRAPH}> {{ ?r a <{_CATALOG_RECORD}> }} }}"
    )
    for solution in results:
        name = str(solution["r"].value)
        if name.startswith(prefix):
            yield name[len(prefix) :]


def index_row_write(
    index_writer: IndexWriter, version: RecordVersion, last_content: RecordVersion | None
) -> None:
    """Index one current version inside an index transaction.

    A tombstone is indexed as a publish then a retraction leave it: the row of the last version
    with content, marked deleted (listed for harvesters, never found by search).
    """
    modified = timestamp(version.modified)
    described = version if not version.deleted else last_content
    if described is None or not described.content:
        row = IndexRow(
            record_id=version.record_id, dataset=version.dataset, kind="dataset", title="",
            description="", keywords=(), publisher=None, publisher_name=None, modified=modified,
            record_modified=modified, version=version.version, deleted=True,
        )
        index_writer.upsert(row)
        return
    graph = Graph(bind_namespaces="none")
    graph.parse(data=described.content, format="nt")
    summary = described.quality.get("quality") if isinstance(described.quality, dict) else None
    row = flatten_record(
        graph,
        URIRef(described.dataset),
        record_id=version.record_id,
        record_modified=modified,
        version=version.version,
        quality=summary if isinstance(summary, dict) else None,
    )
    if version.deleted:
        row = replace(row, deleted=True)
    index_writer.upsert(row)


def _all_versions(store: RecordStore, record_ids_: Sequence[str]) -> dict[str, list[RecordVersion]]:
    """Every version of each record: one query on a SPARQL server, local look-ups otherwise."""
    if isinstance(store, SparqlEndpointStore):
        return store.all_versions(record_ids_)
    found: dict[str, list[RecordVersion]] = {}
    for record_id in record_ids_:
        versions = [store.version(record_id, info.version) for info in store.versions(record_id)]
        found[record_id] = [version for version in versions if version is not None]
    return found


def migrate(
    source: RecordStore,
    target: RecordStore,
    target_index: SearchBackend,
    *,
    batch: int = DEFAULT_BATCH,
    on_record: Callable[[], None] | None = None,
) -> MigrationReport:
    """Copy every record's versions from ``source`` to ``target`` and index the current ones."""
    report = MigrationReport()
    pending: list[str] = []
    for record_id in record_ids(source):
        pending.append(record_id)
        if len(pending) >= batch:
            _copy(source, target, target_index, pending, report)
            pending = []
        if on_record is not None:
            on_record()
    if pending:
        _copy(source, target, target_index, pending, report)
    return report


def _copy(
    source: RecordStore,
    target: RecordStore,
    target_index: SearchBackend,
    record_ids_: Sequence[str],
    report: MigrationReport,
) -> None:
    missing: dict[str, list[RecordVersion]] = {}
    current: list[tuple[RecordVersion, RecordVersion | None]] = []
    sources = _all_versions(source, record_ids_)
    targets = _all_versions(target, record_ids_)
    for record_id in record_ids_:
        report.records += 1
        copies = sources.get(record_id, [])
        there = targets.get(record_id, [])
        present = {version.version for version in there}
        if present - {version.version for version in copies}:
            report.conflicts.append(f"{record_id}: the target holds versions the source does not")
            continue
        if there and copies and there[0].dataset != copies[0].dataset:
            report.conflicts.append(f"{record_id}: the target holds another dataset under this id")
            continue
        report.versions_present += len(present)
        missing[record_id] = [version for version in copies if version.version not in present]
        if copies:
            with_content = [version for version in copies if not version.deleted]
            current.append((copies[-1], with_content[-1] if with_content else None))
    # Version k of every record goes in one write, after version k-1 (each write is all or nothing).
    rounds = max((len(versions) for versions in missing.values()), default=0)
    for position in range(rounds):
        step = [versions[position] for versions in missing.values() if len(versions) > position]
        target.write(step, bulk=True)
        report.versions_copied += len(step)
    with target_index.transaction() as writer:
        for version, last_content in current:
            index_row_write(writer, version, last_content)
            report.indexed += 1
    _log.info("migrated a batch", extra={"records": len(record_ids_)})
