"""The catalogue's system of record: every dataset record, every version of it, and tombstones.

Why Oxigraph: measured on a 100,000-dataset catalogue it loads ~12x faster than rdflib's memory
store, answers sorted SPARQL ~7x faster and needs a third of the memory. It sits behind the small
:class:`RecordStore` protocol so a remote SPARQL 1.1 endpoint can replace it when one machine is
outgrown: everything here is expressed as SPARQL updates and quad look-ups.

Layout (all in one store, so one SPARQL update makes a publish atomic):

* ``urn:sluis:record:{id}`` — one named graph per *current* record: the dataset's subgraph. This
  is what ``/catalogue/sparql`` queries see.
* ``urn:sluis:records`` — one ``dcat:CatalogRecord`` per record (primary topic, version, owner,
  source, modification time, ADMS change type, quality score and band; tombstones stay here).
  The full DQV measurements (~300 statements a record) are kept with the version, not as live
  triples: a million records would otherwise carry 300 million quality statements.
* ``urn:sluis:history`` — one node per version carrying the record exactly as received (its
  N-Triples, with the original datatypes: Oxigraph normalises e.g. ``xsd:nonNegativeInteger`` to
  ``xsd:integer``, so output is served from this text, never re-read from the triples), its
  proofs and its quality assessment.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyoxigraph as ox

from vocab.namespaces import ADMS, DCAT, DCT, FOAF, SLUIS, XSD

_log = logging.getLogger(__name__)

RECORDS_GRAPH = "urn:sluis:records"
HISTORY_GRAPH = "urn:sluis:history"
#: Each source's copy of a dataset, as text (one literal per copy), for the harvest.
SOURCE_COPIES_GRAPH = "urn:sluis:source-copies"
LOCAL_SOURCE = "urn:sluis:source:local"

CHANGE_CREATED = "http://purl.org/adms/changetype/created"
CHANGE_UPDATED = "http://purl.org/adms/changetype/updated"
CHANGE_DELETED = "http://purl.org/adms/changetype/deleted"

_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


class StoreError(Exception):
    """The store could not do what was asked (missing record, stale version, I/O failure)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def record_graph(record_id: str) -> str:
    return f"urn:sluis:record:{record_id}"


def version_node(record_id: str, version: int) -> str:
    return f"urn:sluis:record:{record_id}:version:{version}"


@dataclass(frozen=True)
class RecordVersion:
    """One version of one record, as stored (a tombstone has ``deleted`` and empty content)."""

    record_id: str
    version: int
    dataset: str
    modified: datetime
    deleted: bool
    owner: str
    source: str
    content: str = ""
    """The record's triples in N-Triples, exactly as received (original datatypes)."""
    quality_content: str = ""
    """The DQV measurements of the record in N-Triples."""
    proof: Any = None
    """The Data Integrity proof (or proof set) over the record's signed form."""
    quality: dict[str, Any] = field(default_factory=dict)
    """The quality assessment as JSON (total, maximum, band, dimensions, trust)."""
    prepared: PreparedText | None = field(default=None, compare=False, repr=False)
    """Text of this version's statements made ahead (:func:`prepare_text`), or None."""


@dataclass(frozen=True)
class PreparedText:
    """The parts of a version's statements that do not depend on the store or the version
    number, written where the record was worked (an ingest worker), so the node's one writer
    only joins them: the content as a literal, the content as N-Quads in the record's graph, the
    stored quality as a literal. A store uses them only for a version with the same record,
    content and quality (compared when written), so a version changed after (a quarantine
    noted, the quality of an unsigned record) is written from its own fields."""

    record_id: str
    content: str
    quality: dict[str, Any]
    content_literal: str
    graph_statements: str
    """``content``'s statements as N-Quads in :func:`record_graph` of ``record_id``."""
    quality_literal: str

    def fits(self, record: RecordVersion) -> bool:
        return (
            self.record_id == record.record_id
            and self.content == record.content
            and self.quality == record.quality
        )


def prepare_text(record_id: str, content: str, quality: dict[str, Any]) -> PreparedText | None:
    """:class:`PreparedText` for a version of ``record_id`` with ``content`` and ``quality``; None
    when ``content`` is not one N-Triples statement a line (the store then refuses it itself)."""
    graph = _iri(record_graph(record_id)) + " ."
    quads: list[str] = []
    for line in content.split("\n"):
        statement = line.rstrip()
        if statement:
            if not statement.endswith("."):
                return None
            quads.append(f"{statement[:-1]}{graph}")
    return PreparedText(
        record_id,
        content,
        quality,
        _literal(content),
        "\n".join(quads),
        _literal(json.dumps(quality, sort_keys=True)),
    )


@dataclass(frozen=True)
class VersionInfo:
    version: int
    modified: datetime
    deleted: bool


class RecordStore(Protocol):
    """What the catalogue needs from its system of record; Oxigraph or a SPARQL 1.1 server."""

    def current(self, record_id: str) -> RecordVersion | None: ...

    def version(self, record_id: str, version: int) -> RecordVersion | None: ...

    def versions(self, record_id: str) -> list[VersionInfo]: ...

    def record_for_dataset(self, dataset: str) -> str | None: ...

    def types_of(self, resource: str) -> list[str]: ...

    def write(self, versions: Sequence[RecordVersion], *, bulk: bool = False) -> None: ...

    def revert(self, versions: Sequence[RecordVersion]) -> None: ...

    def pending(self, versions: Sequence[RecordVersion]) -> AbstractContextManager[None]:
        """Note ``versions`` as being written for the block (crash recovery), or nothing."""
        ...

    def query(self, sparql: str) -> Any: ...

    def close(self) -> None: ...


def _literal(text: str) -> str:
    return str(ox.Literal(text))


_XSD_DATETIME = ox.NamedNode(str(XSD.dateTime))
_XSD_INTEGER = str(XSD.integer)
_XSD_BOOLEAN = str(XSD.boolean)


def _timestamp(moment: datetime) -> str:
    return str(ox.Literal(moment.astimezone(UTC).isoformat(), datatype=_XSD_DATETIME))


def _integer(value: int) -> str:
    """Typed literals in full (not the ``1`` shorthand): the statements double as N-Quads."""
    return f'"{int(value)}"^^<{_XSD_INTEGER}>'


def _boolean(value: bool) -> str:
    return f'"{"true" if value else "false"}"^^<{_XSD_BOOLEAN}>'


def _iri(value: str) -> str:
    return str(ox.NamedNode(value))


def source_copy_statement(name: str, content: str) -> str:
    """The one statement holding a source's copy of a dataset (``content``: N-Triples)."""
    return f"{_iri(name)} {_iri(str(SLUIS.content))} {_literal(content)} ."


def source_copy_delete(name: str) -> str:
    """The SPARQL update removing the copy kept under ``name``."""
    return (
        f"DELETE WHERE {{ GRAPH {_iri(SOURCE_COPIES_GRAPH)} "
        f"{{ {_iri(name)} {_iri(str(SLUIS.content))} ?copy }} }}"
    )


# The IRIs every stored version repeats, written once (a bulk batch writes ~20 per record).
_ADMS_STATUS = _iri(str(ADMS.status))
_DCAT_CATALOGRECORD = _iri(str(DCAT.CatalogRecord))
_DCT_ISSUED = _iri(str(DCT.issued))
_DCT_MODIFIED = _iri(str(DCT.modified))
_FOAF_PRIMARYTOPIC = _iri(str(FOAF.primaryTopic))
_SLUIS_CONTENT = _iri(str(SLUIS.content))
_SLUIS_DELETED = _iri(str(SLUIS.deleted))
_SLUIS_OWNER = _iri(str(SLUIS.owner))
_SLUIS_PROOF = _iri(str(SLUIS.proof))
_SLUIS_QUALITY = _iri(str(SLUIS.quality))
_SLUIS_QUALITYBAND = _iri(str(SLUIS.qualityBand))
_SLUIS_QUALITYCONTENT = _iri(str(SLUIS.qualityContent))
_SLUIS_QUALITYSCORE = _iri(str(SLUIS.qualityScore))
_SLUIS_SOURCE = _iri(str(SLUIS.source))
_SLUIS_VERSION = _iri(str(SLUIS.version))
_SLUIS_VERSIONOF = _iri(str(SLUIS.versionOf))
_TYPE = _iri(_RDF_TYPE)


def _version_statements(record: RecordVersion) -> str:
    node = _iri(version_node(record.record_id, record.version))
    prepared = record.prepared if record.prepared is not None and record.prepared.fits(record) else None
    lines = [
        f"{node} {_SLUIS_VERSIONOF} {_iri(record_graph(record.record_id))} .",
        f"{node} {_SLUIS_VERSION} {_integer(record.version)} .",
        f"{node} {_DCT_MODIFIED} {_timestamp(record.modified)} .",
        f"{node} {_SLUIS_DELETED} {_boolean(record.deleted)} .",
        f"{node} {_FOAF_PRIMARYTOPIC} {_iri(record.dataset)} .",
        f"{node} {_SLUIS_OWNER} {_iri(record.owner)} .",
        f"{node} {_SLUIS_SOURCE} {_iri(record.source)} .",
    ]
    if record.content:
        literal = prepared.content_literal if prepared is not None else _literal(record.content)
        lines.append(f"{node} {_SLUIS_CONTENT} {literal} .")
    if record.quality_content:
        lines.append(f"{node} {_SLUIS_QUALITYCONTENT} {_literal(record.quality_content)} .")
    if record.proof is not None:
        lines.append(f"{node} {_SLUIS_PROOF} {_literal(json.dumps(record.proof, sort_keys=True))} .")
    if record.quality:
        literal = (
            prepared.quality_literal
            if prepared is not None
            else _literal(json.dumps(record.quality, sort_keys=True))
        )
        lines.append(f"{node} {_SLUIS_QUALITY} {literal} .")
    return "\n".join(lines)


def _catalog_record_statements(record: RecordVersion, issued: datetime) -> str:
    node = _iri(record_graph(record.record_id))
    change = CHANGE_CREATED if record.version == 1 else CHANGE_UPDATED
    if record.deleted:
        change = CHANGE_DELETED
    summary = record.quality.get("quality", {}) if isinstance(record.quality, dict) else {}
    quality_lines = []
    if isinstance(summary, dict) and isinstance(summary.get("total"), int):
        quality_lines.append(f"{node} {_SLUIS_QUALITYSCORE} {_integer(summary['total'])} .")
    if isinstance(summary, dict) and isinstance(summary.get("band"), str):
        quality_lines.append(f"{node} {_SLUIS_QUALITYBAND} {_literal(summary['band'])} .")
    return "\n".join(
        [
            *quality_lines,
            f"{node} {_TYPE} {_DCAT_CATALOGRECORD} .",
            f"{node} {_FOAF_PRIMARYTOPIC} {_iri(record.dataset)} .",
            f"{node} {_SLUIS_VERSION} {_integer(record.version)} .",
            f"{node} {_DCT_ISSUED} {_timestamp(issued)} .",
            f"{node} {_DCT_MODIFIED} {_timestamp(record.modified)} .",
            f"{node} {_ADMS_STATUS} {_iri(change)} .",
            f"{node} {_SLUIS_OWNER} {_iri(record.owner)} .",
            f"{node} {_SLUIS_SOURCE} {_iri(record.source)} .",
        ]
    )


def _as_datetime(term: Any) -> datetime:
    return datetime.fromisoformat(str(term.value))


class OxigraphStore:
    """The :class:`RecordStore` on an embedded, on-disk Oxigraph store.

    Writes are serialised by a lock and each :meth:`write` is one SPARQL update (one
    transaction): either every version in it lands, with its current graph and catalogue record,
    or none does.
    """

    def __init__(self, path: Path | None) -> None:
        """``path`` None gives an in-memory store (benchmarks of the pure pipeline)."""
        self._path = path
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            self._store = ox.Store(str(path))
        else:
            self._store = ox.Store()
        self._write_lock = threading.Lock()
        self._generation = 0

    @property
    def generation(self) -> int:
        """How many times the store changed since it was opened (snapshots compare it)."""
        return self._generation

    def backup(self, target: Path) -> int:
        """A consistent copy of the store in ``target`` (hard links where possible); its generation.

        Taken under the write lock, so no write is half in it. The copy is what read-only
        processes open (:mod:`catalogue.store.snapshots`): RocksDB does not allow reading files
        another process is writing.
        """
        with self._write_lock:
            self._store.backup(str(target))
            return self._generation

    @property
    def oxigraph(self) -> ox.Store:
        """The underlying store, for read-only SPARQL and maintenance tools."""
        return self._store

    # ---- reads ---------------------------------------------------------------------------
    def _objects(self, subject: str, predicate: str, graph: str) -> list[Any]:
        return [
            quad.object
            for quad in self._store.quads_for_pattern(
                ox.NamedNode(subject), ox.NamedNode(predicate), None, ox.NamedNode(graph)
            )
        ]

    def _one(self, subject: str, predicate: str, graph: str) -> Any:
        found = self._objects(subject, predicate, graph)
        return found[0] if found else None

    def _current_version_number(self, record_id: str) -> int | None:
        term = self._one(record_graph(record_id), str(SLUIS.version), RECORDS_GRAPH)
        return None if term is None else int(term.value)

    def _issued(self, record_id: str) -> datetime | None:
        term = self._one(record_graph(record_id), str(DCT.issued), RECORDS_GRAPH)
        return None if term is None else _as_datetime(term)

    def current(self, record_id: str) -> RecordVersion | None:
        number = self._current_version_number(record_id)
        return None if number is None else self.version(record_id, number)

    def version(self, record_id: str, version: int) -> RecordVersion | None:
        node = version_node(record_id, version)
        values: dict[str, Any] = {}
        for quad in self._store.quads_for_pattern(
            ox.NamedNode(node), None, None, ox.NamedNode(HISTORY_GRAPH)
        ):
            values[quad.predicate.value] = quad.object
        if not values:
            return None

        def text(predicate: str) -> str:
            term = values.get(predicate)
            return "" if term is None else str(term.value)

        proof_text = text(str(SLUIS.proof))
        quality_text = text(str(SLUIS.quality))
        return RecordVersion(
            record_id=record_id,
            version=version,
            dataset=text(str(FOAF.primaryTopic)),
            modified=_as_datetime(values[str(DCT.modified)]),
            deleted=text(str(SLUIS.deleted)) == "true",
            owner=text(str(SLUIS.owner)),
            source=text(str(SLUIS.source)),
            content=text(str(SLUIS.content)),
            quality_content=text(str(SLUIS.qualityContent)),
            proof=json.loads(proof_text) if proof_text else None,
            quality=json.loads(quality_text) if quality_text else {},
        )

    def versions(self, record_id: str) -> list[VersionInfo]:
        found: list[VersionInfo] = []
        for quad in self._store.quads_for_pattern(
            None,
            ox.NamedNode(str(SLUIS.versionOf)),
            ox.NamedNode(record_graph(record_id)),
            ox.NamedNode(HISTORY_GRAPH),
        ):
            if not isinstance(quad.subject, ox.NamedNode):
                continue
            node = quad.subject.value
            number = self._one(node, str(SLUIS.version), HISTORY_GRAPH)
            modified = self._one(node, str(DCT.modified), HISTORY_GRAPH)
            deleted = self._one(node, str(SLUIS.deleted), HISTORY_GRAPH)
            if number is None or modified is None:
                continue
            found.append(
                VersionInfo(
                    int(number.value), _as_datetime(modified), deleted is not None and deleted.value == "true"
                )
            )
        return sorted(found, key=lambda info: info.version)

    def record_for_dataset(self, dataset: str) -> str | None:
        prefix = record_graph("")
        for quad in self._store.quads_for_pattern(
            None, ox.NamedNode(str(FOAF.primaryTopic)), ox.NamedNode(dataset), ox.NamedNode(RECORDS_GRAPH)
        ):
            if isinstance(quad.subject, ox.NamedNode) and quad.subject.value.startswith(prefix):
                return quad.subject.value[len(prefix) :]
        return None

    def types_of(self, resource: str) -> list[str]:
        """The ``rdf:type`` of a resource that is the primary topic of a current record."""
        record_id = self.record_for_dataset(resource)
        if record_id is None:
            return []
        return [
            quad.object.value
            for quad in self._store.quads_for_pattern(
                ox.NamedNode(resource), ox.NamedNode(_RDF_TYPE), None, ox.NamedNode(record_graph(record_id))
            )
            if isinstance(quad.object, ox.NamedNode)
        ]

    def current_triples(self, record_id: str) -> Iterator[ox.Quad]:
        """The live triples of a record's current graph (what SPARQL sees)."""
        return iter(self._store.quads_for_pattern(None, None, None, ox.NamedNode(record_graph(record_id))))

    def count_records(self) -> int:
        return sum(
            1
            for _ in self._store.quads_for_pattern(
                None,
                ox.NamedNode(_RDF_TYPE),
                ox.NamedNode(str(DCAT.CatalogRecord)),
                ox.NamedNode(RECORDS_GRAPH),
            )
        )

    # ---- writes --------------------------------------------------------------------------
    def _update_for(self, records: Sequence[RecordVersion]) -> str:
        operations: list[str] = []
        history: list[str] = []
        catalogue: list[str] = []
        graphs: list[str] = []
        for record in records:
            graph = _iri(record_graph(record.record_id))
            issued = record.modified
            if record.version > 1:  # a first version has nothing to replace
                issued = self._issued(record.record_id) or record.modified
                operations.append(f"DROP SILENT GRAPH {graph}")
                operations.append(f"DELETE WHERE {{ GRAPH <{RECORDS_GRAPH}> {{ {graph} ?p ?o }} }}")
            history.append(_version_statements(record))
            catalogue.append(_catalog_record_statements(record, issued))
            if not record.deleted:
                graphs.append(f"GRAPH {graph} {{\n{record.content}\n}}")
        inserts = "\n".join(
            [
                f"GRAPH <{HISTORY_GRAPH}> {{\n" + "\n".join(history) + "\n}",
                f"GRAPH <{RECORDS_GRAPH}> {{\n" + "\n".join(catalogue) + "\n}",
                *graphs,
            ]
        )
        operations.append(f"INSERT DATA {{\n{inserts}\n}}")
        return " ;\n".join(operations)

    def write(self, versions: Sequence[RecordVersion], *, bulk: bool = False) -> None:
        """Store new versions (each the next number of its record), all or nothing.

        By default the write is one Oxigraph transaction. ``bulk`` (the bulk publish path) sends a
        batch of only *new* records through Oxigraph's bulk loader instead — ~2.5x cheaper, and
        its cost grows far less with the size of the store, because a transaction reads every
        statement's indexes before writing it. The bulk loader is not atomic by itself, so when it
        fails the batch's statements are removed again before the error is raised: the store is
        as it was (each record in the batch is new, so everything named after it is the batch's).
        The process dying during the load leaves part of the batch in the store: the publisher
        notes every write in :meth:`pending` first, and the next start removes what the note
        names unless the index committed it (:mod:`catalogue.reconcile`).
        """
        if not versions:
            return
        if len({record.record_id for record in versions}) != len(versions):
            raise StoreError("duplicate-record", "one write holds at most one version per record")
        with self._write_lock:
            for record in versions:
                current = self._current_version_number(record.record_id)
                expected = 1 if current is None else current + 1
                if record.version != expected:
                    raise StoreError(
                        "stale-version",
                        f"record {record.record_id} is at version {current}; "
                        f"cannot write version {record.version}",
                    )
            new = all(record.version == 1 for record in versions)
            try:
                if new and bulk:
                    self._bulk_load_new(versions)
                elif new:
                    # New records replace nothing: one N-Quads document, loaded in one
                    # transaction (all or nothing, like the update below, and cheaper).
                    self._store.load(self._nquads_for(versions).encode("utf-8"), ox.RdfFormat.N_QUADS)
                else:
                    self._store.update(self._update_for(versions))
            except (OSError, SyntaxError, ValueError) as error:
                raise StoreError("store-write-failed", f"the store refused the write: {error}") from error
            finally:
                self._generation += 1

    def _bulk_load_new(self, versions: Sequence[RecordVersion]) -> None:
        """Bulk-load first versions; on any failure remove what part of them landed, then re-raise."""
        data = self._nquads_for(versions).encode("utf-8")
        try:
            self._store.bulk_load(data, ox.RdfFormat.N_QUADS)
        except BaseException:
            _log.error("bulk load failed; removing the batch", extra={"records": len(versions)})
            self._remove_versions([(record.record_id, record.version) for record in versions])
            raise

    @staticmethod
    def _nquads_for(versions: Sequence[RecordVersion]) -> str:
        """First versions as one N-Quads document: history, catalogue record and current graph.

        Record content is N-Triples, one statement per line (``catalogue.signing.ntriples_lines``),
        so each line becomes a quad by naming its graph; Oxigraph parses the document natively,
        far cheaper than the same data as a SPARQL update. Blank node labels are rdflib's
        generated ones, unique per record, as in the update path.
        """
        lines: list[str] = []
        history, records = f"<{HISTORY_GRAPH}> .", f"<{RECORDS_GRAPH}> ."
        for record in versions:
            lines.extend(f"{line[:-1]}{history}" for line in _version_statements(record).split("\n"))
            lines.extend(
                f"{line[:-1]}{records}"
                for line in _catalog_record_statements(record, record.modified).split("\n")
            )
            if not record.deleted and record.content:
                if record.prepared is not None and record.prepared.fits(record):
                    lines.append(record.prepared.graph_statements)
                    continue
                graph = _iri(record_graph(record.record_id)) + " ."
                for line in record.content.split("\n"):
                    statement = line.rstrip()
                    if statement:
                        if not statement.endswith("."):
                            raise StoreError(
                                "store-write-failed", f"record {record.record_id}: content is not N-Triples"
                            )
                        lines.append(f"{statement[:-1]}{graph}")
        return "\n".join(lines)

    def load_new(self, versions: Sequence[RecordVersion]) -> None:
        """Load first versions of records not yet in the store, fast and *not* atomically.

        For an initial import into an empty or offline node (and the benchmark's filler):
        Oxigraph's bulk loader is ~3x faster than a transaction, but a crash half-way leaves
        part of the batch. Use :meth:`write` wherever all-or-nothing matters.
        """
        for record in versions:
            if record.version != 1 or self._current_version_number(record.record_id) is not None:
                raise StoreError(
                    "not-new", f"record {record.record_id} exists; load_new only adds new records"
                )
        with self._write_lock:
            self._generation += 1
            self._store.bulk_load(self._nquads_for(versions).encode("utf-8"), ox.RdfFormat.N_QUADS)

    def revert(self, versions: Sequence[RecordVersion]) -> None:
        """Undo :meth:`write` of these versions (used when a later step of a publish fails)."""
        self.remove_versions([(record.record_id, record.version) for record in versions])

    def remove_versions(self, versions: Sequence[tuple[str, int]]) -> None:
        """Remove these (record id, version) pairs and every trace of them; the version before
        each, if any, becomes current again. Works on a version only partly written (a bulk load
        cut short), which is what crash recovery needs."""
        with self._write_lock:
            self._generation += 1
            self._remove_versions(versions)

    def _remove_versions(self, versions: Sequence[tuple[str, int]]) -> None:
        """:meth:`remove_versions` without taking the write lock (its caller holds it)."""
        for record_id, number in versions:
            node = _iri(version_node(record_id, number))
            graph = _iri(record_graph(record_id))
            issued = self._issued(record_id)
            operations = [
                f"DELETE WHERE {{ GRAPH <{HISTORY_GRAPH}> {{ {node} ?p ?o }} }}",
                f"DROP SILENT GRAPH {graph}",
                f"DELETE WHERE {{ GRAPH <{RECORDS_GRAPH}> {{ {graph} ?p ?o }} }}",
            ]
            previous = self.version(record_id, number - 1) if number > 1 else None
            if previous is not None:
                restore = [
                    f"GRAPH <{RECORDS_GRAPH}> {{\n"
                    f"{_catalog_record_statements(previous, issued or previous.modified)}\n}}"
                ]
                if not previous.deleted:
                    restore.append(f"GRAPH {graph} {{\n{previous.content}\n}}")
                operations.append("INSERT DATA {\n" + "\n".join(restore) + "\n}")
            self._store.update(" ;\n".join(operations))  # one update: one transaction

    # ---- crash recovery ------------------------------------------------------------------------
    @property
    def journal_path(self) -> Path | None:
        """Where :meth:`pending` notes the versions being written (None for an in-memory store)."""
        return None if self._path is None else self._path.with_name(self._path.name + ".pending.json")

    @contextmanager
    def pending(self, versions: Sequence[RecordVersion]) -> Iterator[None]:
        """Note ``versions`` as being written for the duration of the block.

        The note is written (atomically: a whole file or none) before anything reaches the store
        and removed when the block ends, whether it wrote or failed and reverted. A note found at
        start names versions whose write a crash interrupted (:mod:`catalogue.reconcile`): the
        store may hold all, part (a bulk load) or none of each, and the index may or may not have
        committed them.
        """
        path = self.journal_path
        if path is None:
            yield
            return
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps([[record.record_id, record.version] for record in versions]))
        os.replace(temporary, path)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    def pending_versions(self) -> list[tuple[str, int]]:
        """The versions a crash interrupted the write of (empty when the last run ended cleanly)."""
        path = self.journal_path
        if path is None or not path.exists():
            return []
        try:
            entries = json.loads(path.read_text())
            return [(str(record_id), int(number)) for record_id, number in entries]
        except (OSError, ValueError, TypeError):
            _log.error("unreadable write journal %s; the full comparison with the index decides", path)
            return []

    def clear_pending(self) -> None:
        path = self.journal_path
        if path is not None:
            path.unlink(missing_ok=True)

    def current_versions(self) -> dict[str, int]:
        """Every record's current version number (tombstones included), from the catalogue graph."""
        prefix = record_graph("")
        found: dict[str, int] = {}
        for quad in self._store.quads_for_pattern(
            None, ox.NamedNode(str(SLUIS.version)), None, ox.NamedNode(RECORDS_GRAPH)
        ):
            subject, number = quad.subject, quad.object
            if (
                isinstance(subject, ox.NamedNode)
                and isinstance(number, ox.Literal)
                and subject.value.startswith(prefix)
            ):
                found[subject.value[len(prefix) :]] = int(number.value)
        return found

    def query(self, sparql: str) -> Any:
        """Run a read-only query over the union of all graphs (callers enforce limits)."""
        return self._store.query(sparql, use_default_graph_as_union=True)

    # ---- a harvest source's copy of what it served (text, outside the records' graphs) -------
    def replace_source_copies(self, graphs: Mapping[str, str]) -> None:
        """Keep exactly the given N-Triples under each name ("" drops it), in one update.

        Harvesting keeps each source's version of a dataset beside the record
        (``catalogue.harvest._versions``). The copies are stored as text, one literal per copy,
        as the history keeps versions: were they quads, the public SPARQL endpoint (which reads
        the union of graphs) would count every harvested dataset once per source and describe
        it with statements from versions search does not show, untrusted ones included.
        """
        if not graphs:
            return
        operations = [
            # copies written as named graphs by an earlier release go too
            *(f"DROP SILENT GRAPH {_iri(name)}" for name in graphs),
            *(source_copy_delete(name) for name in graphs),
        ]
        inserts = [source_copy_statement(name, content) for name, content in graphs.items() if content]
        if inserts:
            body = "\n".join(inserts)
            operations.append(f"INSERT DATA {{ GRAPH {_iri(SOURCE_COPIES_GRAPH)} {{\n{body}\n}} }}")
        with self._write_lock:
            try:
                self._store.update(" ;\n".join(operations))
            except (OSError, SyntaxError, ValueError) as error:
                raise StoreError("store-write-failed", f"the store refused the write: {error}") from error
            finally:
                self._generation += 1

    def source_copy(self, name: str) -> list[str]:
        """The N-Triples lines kept under ``name`` by :meth:`replace_source_copies`."""
        for quad in self._store.quads_for_pattern(
            ox.NamedNode(name), ox.NamedNode(str(SLUIS.content)), None, ox.NamedNode(SOURCE_COPIES_GRAPH)
        ):
            if isinstance(quad.object, ox.Literal):
                return [line for line in quad.object.value.split("\n") if line.strip()]
        return [
            f"{quad.subject} {quad.predicate} {quad.object} ."
            for quad in self._store.quads_for_pattern(None, None, None, ox.NamedNode(name))
        ]

    def flush(self) -> None:
        self._store.flush()

    def close(self) -> None:
        """Release the store; Oxigraph closes its files when the object is dropped."""
        self._store.flush()
        del self._store
