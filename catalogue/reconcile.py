"""Store and index made to agree at every start, whatever a crash (``kill -9``) left behind.

A publish writes the store, then commits the index (:meth:`CataloguePublisher._commit`); the
versions being written are noted first (:meth:`OxigraphStore.pending`) and the note removed after
the index commit. A crash between the two leaves records the store holds and search never finds,
or, in the bulk path, a batch half bulk-loaded. Two passes repair it:

1. **The note** (precise, and the only way to find fragments of a cut-short bulk load): each
   version it names that the index did not commit is removed from the store, with every trace
   of it; the version before it, if any, is current again.
2. **A full comparison** of each record's version in the store and in the index (the safety net
   for anything the note cannot name): a record the store holds at a version the index never
   committed is rolled back to the index's version; an index row ahead of the store (the store
   lost a write the index kept) is rebuilt from the store, or dropped if the store has no such
   record.

Why undo rather than finish: the client of an interrupted publish never got its 201, so the
publish did not happen; undoing it makes the retry succeed as a first publish (never a 409 for a
record nobody can find). The comparison reads one quad pattern and one index column: a few
seconds at a million records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rdflib import URIRef

from catalogue.index import SearchIndex, flatten_record
from catalogue.publish import record_graph_of, timestamp
from catalogue.store import OxigraphStore

_log = logging.getLogger(__name__)

# Index rows are read in pages of this many (a million-record index stays a bounded read).
_PAGE = 50_000


@dataclass
class Reconciliation:
    """What a start repaired (all empty after a clean shutdown)."""

    interrupted: list[tuple[str, int]] = field(default_factory=list)
    """Versions named by the write note that the index had not committed: removed."""
    rolled_back: list[tuple[str, int]] = field(default_factory=list)
    """Store versions ahead of the index, found by the comparison: removed."""
    reindexed: list[str] = field(default_factory=list)
    dropped_from_index: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.interrupted or self.rolled_back or self.reindexed or self.dropped_from_index)


def _index_versions(index: SearchIndex) -> dict[str, int]:
    found: dict[str, int] = {}
    offset = 0
    while True:
        _, rows = index.changes(modified_since=None, offset=offset, limit=_PAGE)
        found.update((row.record_id, row.version) for row in rows)
        if len(rows) < _PAGE:
            return found
        offset += _PAGE


def reconcile(store: OxigraphStore, index: SearchIndex) -> Reconciliation:
    """Repair what an interrupted write left; see the module's docstring.

    For the embedded pair only, where the node's process is the one writer: with a shared store
    and index, a version ahead of the index may be another replica's write in progress (the
    SPARQL endpoint store journals its batches and recovers its dead writers itself).
    """
    outcome = Reconciliation()
    indexed = _index_versions(index)
    for record_id, version in store.pending_versions():
        if indexed.get(record_id, 0) >= version:
            continue  # the index committed it: the write completed before the crash
        store.remove_versions([(record_id, version)])
        outcome.interrupted.append((record_id, version))
    store.clear_pending()

    stored = store.current_versions()
    for record_id, version in sorted(stored.items()):
        committed = indexed.get(record_id, 0)
        while version > committed:
            store.remove_versions([(record_id, version)])
            outcome.rolled_back.append((record_id, version))
            version -= 1
    stored = store.current_versions()
    stale = sorted(record_id for record_id, version in indexed.items() if stored.get(record_id) != version)
    if stale:
        with index.transaction() as transaction:
            for record_id in stale:
                current = store.current(record_id)
                if current is None:
                    transaction.remove(record_id)
                    outcome.dropped_from_index.append(record_id)
                elif current.deleted:
                    transaction.tombstone(
                        record_id, record_modified=timestamp(current.modified), version=current.version
                    )
                    outcome.reindexed.append(record_id)
                else:
                    quality = current.quality.get("quality") if isinstance(current.quality, dict) else None
                    transaction.upsert(
                        flatten_record(
                            record_graph_of(current, with_quality=False),
                            URIRef(current.dataset),
                            record_id=record_id,
                            record_modified=timestamp(current.modified),
                            version=current.version,
                            quality=quality if isinstance(quality, dict) else None,
                        )
                    )
                    outcome.reindexed.append(record_id)
    if outcome.changed:
        _log.warning(
            "store and index reconciled after an interrupted write",
            extra={
                "interrupted": len(outcome.interrupted),
                "rolled_back": len(outcome.rolled_back),
                "reindexed": len(outcome.reindexed),
                "dropped_from_index": len(outcome.dropped_from_index),
            },
        )
    return outcome
