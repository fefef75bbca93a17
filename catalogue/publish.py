"""The publish pipeline: one record in, validated, scored, signed, stored and indexed — or nothing.

Steps, each a plain function or an injected callable so harvesting (which brings records from
other nodes, each source's copy kept apart) reuses the same path:

1. size-limited parse (:func:`vocab.rdfio.parse_rdf`);
2. :func:`extract_record`: exactly one dataset, dataset series or data service, with the part of
   the document it reaches (distributions, publisher, contact point, periods…);
3. authorisation: the token's publisher must be the record's ``dct:publisher`` (and own the
   record when it already exists);
4. the publisher's own proof, if any, is verified and kept;
5. SHACL validation (profiles chosen by the record) — violations stop here;
6. quality assessment (MQA dimensions + trust indicators);
7. the node's signature;
8. store (one transaction) and index (one transaction, committed only after the store accepted the
   write; if the commit fails the store write is reverted).

Nothing is written before step 8, so every rejection leaves store and index as they were.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from rdflib import BNode, Graph, URIRef
from rdflib.term import Node

from catalogue._turtle import parse_turtle_fast
from catalogue.index import IndexRow, flatten_record
from catalogue.normalise import Repair, normalise, repairs_graph, term_text
from catalogue.quality import assess, minimum_elements
from catalogue.refusal import PublishError as PublishError  # re-exported: callers import it from here
from catalogue.search_backend import SearchBackend
from catalogue.signing import (
    KeyLookup,
    RecordSigner,
    canonical_statements,
    ntriples_lines,
    take_publisher_proofs,
    verify_publisher_statements,
)
from catalogue.store import LOCAL_SOURCE, PreparedText, RecordStore, RecordVersion
from catalogue.validation import explain, validate_records
from connector.identity import ProofError
from vocab.errors import DocumentTooLargeError, RdfSyntaxError, StatementRefusedError, VocabError
from vocab.namespaces import DCAT, DCT, RDF
from vocab.rdfio import DEFAULT_MAX_DOCUMENT_BYTES, N_TRIPLES, TURTLE, normalize_media_type, parse_rdf
from vocab.shacl import ValidationReport, ValidationResult, profile_of_shape

_log = logging.getLogger(__name__)

RECORD_TYPES: tuple[URIRef, ...] = (DCAT.Dataset, DCAT.DatasetSeries)
SERVICE_TYPE = DCAT.DataService
# Resources that are records (or catalogues) of their own: extraction stops at them.
_BOUNDARY_TYPES = frozenset({DCAT.Dataset, DCAT.DatasetSeries, DCAT.Catalog, DCAT.CatalogRecord})
# Links to other records whose target's type the shapes check (sh:class): the target is described
# in its own record, so validation sees that record's current description from the store (as
# context: results about it are dropped, and it is never stored with this one).
_LINKS_TO_RECORDS = (DCAT.inSeries, DCAT.accessService, DCAT.servesDataset, DCAT.prev, DCAT.first, DCAT.last)
# One record with its distributions is tens to a few thousand statements; a huge one is a dump.
# The document it comes in is held to the same count while it is parsed (vocab.rdfio).
MAX_RECORD_STATEMENTS = 50_000
# Distributions of one record: real records have one to a few hundred; every read, page and
# validation of the record pays for each (10,000 made each read take seconds).
MAX_DISTRIBUTIONS = 1_000
# A catalogue dump is split into records; the document size cap (10 MiB) already bounds it, this
# bounds the per-record work one request can ask for.
MAX_RECORDS_PER_DOCUMENT = 10_000
# IRIs go into SPARQL updates and N-Triples; these characters would break both.
_IRI_FORBIDDEN = frozenset(' <>"{}|\\^`\n\r\t')
# The names the store gives its own graphs and nodes (catalogue.store.records): a record using
# one could make public statements about the node's own graphs and version nodes (a version
# marked deleted, another owner) that SPARQL readers take for the node's; refused in records
# whatever their position.
RESERVED_IRI_PREFIXES = (
    "urn:sluis:record",
    "urn:sluis:history",
    "urn:sluis:source",
    "urn:sluis:batch",
    "urn:sluis:genid",
)
MAX_IRI_CHARS = 4096
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Stored records were size-checked on the way in; their N-Triples form may be several times the
# size of the Turtle that was sent, so reading them back allows more.
STORED_RECORD_MAX_BYTES = 16 * DEFAULT_MAX_DOCUMENT_BYTES


class Assessment(Protocol):
    """What the pipeline needs of a quality assessment (``catalogue.quality.QualityAssessment``)."""

    def to_json(self) -> dict[str, Any]: ...

    def to_dqv(self, dataset: URIRef) -> Graph: ...


Validator = Callable[[Graph], ValidationReport]
BulkValidator = Callable[[Sequence[Graph]], Iterable[ValidationReport]]


class Assessor(Protocol):
    def __call__(
        self,
        graph: Graph,
        dataset: URIRef,
        report: ValidationReport,
        *,
        signed: bool,
        publisher_verified: bool,
    ) -> Assessment: ...


def timestamp(moment: datetime) -> str:
    """The one string form of times in the index (sortable, fixed width, UTC)."""
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def record_id_for(dataset: str) -> str:
    """A stable id for a dataset IRI: publishing the same IRI twice is detected, not duplicated."""
    return hashlib.sha256(dataset.encode("utf-8")).hexdigest()[:24]


def parse_document(data: bytes, media_type: str, *, base: str, max_bytes: int) -> Graph:
    """Step 1: the size-limited parse; every failure a :class:`PublishError` (400, 413, 415)."""
    try:
        if normalize_media_type(media_type) == TURTLE:
            fast = parse_turtle_fast(data, base, max_bytes, MAX_RECORD_STATEMENTS)
            if fast is not None:
                return fast
        return parse_rdf(
            data,
            media_type,
            base,
            max_bytes,
            max_statements=MAX_RECORD_STATEMENTS,
        )
    except DocumentTooLargeError as error:
        raise PublishError(
            413,
            error.code,
            "Document too large",
            str(error),
            [("body", str(error))],
            {"limit": error.limit},
        ) from None
    except StatementRefusedError as error:
        status = 413 if error.code == "literal-too-long" else 400
        raise PublishError(
            status, error.code, "Statement refused", str(error), [(error.field, error.reason)]
        ) from None
    except RdfSyntaxError as error:
        where = ""
        if error.line is not None:
            where = (
                f"line {error.line}" + (f", column {error.column}" if error.column is not None else "") + ": "
            )
        raise PublishError(
            400,
            error.code,
            "Malformed RDF",
            str(error),
            [("body", f"{where}{error.reason}")],
            {"line": error.line, "column": error.column},
        ) from None
    except VocabError as error:
        status = 415 if error.code == "unsupported-media-type" else 400
        raise PublishError(
            status, error.code, "Unreadable document", str(error), [("body", str(error))]
        ) from None


def find_record_subjects(graph: Graph) -> list[Node]:
    """Every dataset and dataset series of a document (or, failing those, every data service).

    A catalogue dump holds many; each becomes a record of its own (:func:`extract_record`).
    """
    primaries: list[Node] = sorted(
        {subject for kind in RECORD_TYPES for subject in graph.subjects(RDF.type, kind)}, key=str
    )
    if not primaries:
        primaries = sorted(set(graph.subjects(RDF.type, SERVICE_TYPE)), key=str)
    if len(primaries) > MAX_RECORDS_PER_DOCUMENT:
        raise too_many_records(len(primaries))
    return primaries


def too_many_records(count: int) -> PublishError:
    return PublishError(
        413,
        "too-many-records",
        "Too many records in one document",
        f"a document may describe at most {MAX_RECORDS_PER_DOCUMENT} datasets, this one has {count}",
        [("body", f"{count} datasets; split the document")],
        {"limit": MAX_RECORDS_PER_DOCUMENT},
    )


def no_dataset() -> PublishError:
    return PublishError(
        422,
        "no-dataset",
        "No dataset in the document",
        "the document holds no dcat:Dataset, dcat:DatasetSeries or dcat:DataService; "
        "a record holds exactly one",
        [("body", "no resource typed dcat:Dataset, dcat:DatasetSeries or dcat:DataService")],
    )


def too_many_distributions(count: int) -> PublishError:
    return PublishError(
        413,
        "too-many-distributions",
        "Too many distributions",
        f"a record may have at most {MAX_DISTRIBUTIONS} distributions; this one has {count}",
        [("dcat:distribution", f"{count} distributions, more than {MAX_DISTRIBUTIONS}")],
        {"limit": MAX_DISTRIBUTIONS},
    )


def record_too_large() -> PublishError:
    return PublishError(
        413,
        "record-too-large",
        "Record too large",
        f"a record may hold at most {MAX_RECORD_STATEMENTS} statements",
        [("body", f"more than {MAX_RECORD_STATEMENTS} statements reachable from the dataset")],
    )


def find_record_subject(graph: Graph) -> Node:
    """The one dataset / dataset series (or, failing those, the one data service) in ``graph``."""
    primaries = find_record_subjects(graph)
    if not primaries:
        raise no_dataset()
    if len(primaries) > 1:
        names = ", ".join(str(node) for node in primaries[:10])
        raise PublishError(
            422,
            "several-datasets",
            "Several datasets in one document",
            f"a record holds exactly one dataset; this document holds {len(primaries)}: {names}",
            [("body", f"{len(primaries)} datasets found ({names}); publish each in its own request")],
            {"datasets": [str(node) for node in primaries]},
        )
    return primaries[0]


StatementsBySubject = dict[Node, list[tuple[Node, Node, Node]]]


def statements_by_subject(graph: Graph) -> StatementsBySubject:
    """The document's statements grouped by subject (one pass; cut many records from it)."""
    by_subject: StatementsBySubject = {}
    for triple in graph:
        by_subject.setdefault(triple[0], []).append(triple)
    return by_subject


def extract_record(graph: Graph, subject: Node, by_subject: StatementsBySubject | None = None) -> Graph:
    """The record's subgraph: what ``subject`` reaches through resources described in the document.

    Other datasets, series and catalogues are boundaries (linked, not included): a dataset's
    ``dcat:inSeries`` names its series without copying the series' description. ``by_subject``
    is :func:`statements_by_subject` of ``graph`` when the caller cuts several records from one
    document (a harvested page of a thousand records would otherwise be walked a thousand times).
    """
    # One pass over the document groups its statements by subject; the walk then reads that
    # table instead of asking the graph per resource (rdflib pattern lookups dominated here).
    if by_subject is None:
        by_subject = statements_by_subject(graph)
    distributions = sum(1 for triple in by_subject.get(subject, ()) if triple[1] == DCAT.distribution)
    if distributions > MAX_DISTRIBUTIONS:
        raise too_many_distributions(distributions)
    record = Graph(bind_namespaces="none")  # prefixes are bound on output; binding here is costly
    seen: set[Node] = {subject}
    pending: list[Node] = [subject]
    statements = 0  # counted here: len() of an rdflib graph walks every statement
    while pending:
        node = pending.pop()
        for triple in by_subject.get(node, ()):
            record.add(triple)
            statements += 1
            if statements > MAX_RECORD_STATEMENTS:
                raise record_too_large()
            value = triple[2]
            if value in seen or not isinstance(value, URIRef | BNode):
                continue
            seen.add(value)
            described = by_subject.get(value)
            if not described:
                continue
            if any(p == RDF.type and o in _BOUNDARY_TYPES for _, p, o in described):
                continue
            pending.append(value)
    return record


def iri_problem(graph: Graph) -> PublishError | None:
    """The 400 for the first IRI that is not absolute or holds forbidden characters, if any.

    Returned, not raised: an ingest worker finds it, the node raises it in the order a publish
    checks things (after the 404/409 of the record's identity).
    """
    checked: set[URIRef] = set()
    for triple in graph:
        for term in triple:
            if isinstance(term, URIRef) and term not in checked:
                checked.add(term)
                text = str(term)
                if len(text) > MAX_IRI_CHARS or not _IRI_FORBIDDEN.isdisjoint(text) or ":" not in text:
                    return PublishError(
                        400,
                        "invalid-iri",
                        "Invalid IRI",
                        f"{text[:200]!r} is not an absolute IRI",
                        [("body", f"IRI {text[:200]!r} is not absolute or holds forbidden characters")],
                    )
                if text.startswith(RESERVED_IRI_PREFIXES):
                    return reserved_iri(text)
    return None


def reserved_iri(text: str) -> PublishError:
    return PublishError(
        400,
        "reserved-iri",
        "Reserved IRI",
        f"{text[:200]!r} is in the catalogue's own namespace (it names the node's graphs and versions)",
        [("body", f"IRI {text[:200]!r} is reserved: {', '.join(RESERVED_IRI_PREFIXES)}…")],
    )


def name_record(record: Graph, subject: Node, *, source: str, dataset_base: str) -> tuple[str, URIRef, Graph]:
    """A new record's id and dataset IRI (a blank-node dataset is given one), and its graph.

    Published here, a blank-node dataset gets a fresh IRI under the node's datasets; harvested,
    it is named from its source and its own statements, so the same description keeps the same
    IRI on every harvest.
    """
    if isinstance(subject, BNode):
        if source == LOCAL_SOURCE:
            new_id = uuid.uuid4().hex[:24]
            dataset = URIRef(f"{dataset_base}/{new_id}")
            return new_id, dataset, _rename(record, subject, dataset)
        digest = hashlib.sha256("\n".join(sorted(_shape_of(record, subject))).encode("utf-8")).hexdigest()
        minted = URIRef(f"{dataset_base}/{record_id_for(source + chr(10) + digest)}")
        record = _rename(record, subject, minted)
        subject = minted
    return record_id_for(str(subject)), URIRef(str(subject)), record


def take_proofs(record: Graph, dataset: URIRef) -> tuple[list[dict[str, Any]], ProofError | None]:
    """The publisher's proofs, removed from the record, or the reason they cannot be read."""
    try:
        return take_publisher_proofs(record, dataset), None
    except ProofError as error:
        return [], error


@dataclass(frozen=True)
class WorkedRecord:
    """Everything about a record that needs neither the store nor the node's key.

    Computed once per record, in the node's process or an ingest worker (plain data: it
    crosses process boundaries as strings and rows, never as an rdflib graph);
    :meth:`CataloguePublisher.settle` finishes it.
    """

    record_id: str
    dataset: str
    statements: tuple[str, ...]
    """The canonical statements (sorted N-Triples, blank nodes labelled canonically): what the
    publisher's proof and the node's proof sign, computed once."""
    content: str
    publishers: tuple[str, ...]
    named_publishers: tuple[str, ...]
    proofs: tuple[dict[str, Any], ...]
    proof_error: ProofError | None
    report: ValidationReport
    repairs: tuple[Repair, ...]
    quality: dict[str, Any]
    dqv: str
    row: IndexRow
    linked: tuple[str, ...] = ()
    """Other records this one links to (``dcat:inSeries``…) without describing them: when the
    store holds one, validation needs it as context."""
    unsigned_quality: dict[str, Any] | None = None
    """The quality (and DQV) as if the publisher proofs were absent, used when they fail."""
    unsigned_dqv: str | None = None
    warnings_json: tuple[dict[str, Any], ...] = ()
    """The report's warnings and violations as stored and answered (:func:`result_json`): made
    where the record is worked, since explaining each result costs more than validating."""
    violations_json: tuple[dict[str, Any], ...] = ()
    proof: Any = None
    """The node's proof over ``statements`` and ``proofs``, when the worker signed (by
    ``signed_by``); the node signs itself otherwise."""
    signed_by: str | None = None
    store_text: PreparedText | None = None
    """The stored version's text made where the record was worked (:func:`version_quality` of
    this record), so the node's writer only joins it; the store checks it still fits."""


def version_quality(
    quality: dict[str, Any],
    warnings_json: Sequence[dict[str, Any]],
    violations_json: Sequence[dict[str, Any]],
    repairs: Sequence[Repair],
) -> dict[str, Any]:
    """The quality a stored version carries: the score, the explained findings, the repairs."""
    return {
        "quality": quality,
        "warnings": list(warnings_json),
        "violations": list(violations_json),
        "repairs": [repair.to_json() for repair in repairs],
    }


def linked_records(record: Graph) -> tuple[str, ...]:
    """IRIs the record links to as other records and does not describe (validation context)."""
    found: set[str] = set()
    for predicate in _LINKS_TO_RECORDS:
        for target in record.objects(None, predicate):
            if isinstance(target, URIRef) and (target, RDF.type, None) not in record:
                found.add(str(target))
    return tuple(sorted(found))


def work_record(
    record: Graph,
    dataset: URIRef,
    record_id: str,
    *,
    report: ValidationReport,
    repairs: Sequence[Repair],
    proofs: Sequence[dict[str, Any]],
    proof_error: ProofError | None,
    assess: Assessor,
    publisher_verified: bool,
    with_dqv: bool,
) -> WorkedRecord:
    """Score, canonicalise and flatten one validated record (publisher proofs already taken)."""
    publishers = list(record.objects(dataset, DCT.publisher))

    def scored(signed: bool) -> tuple[dict[str, Any], str]:
        assessment = assess(record, dataset, report, signed=signed, publisher_verified=publisher_verified)
        quality = dict(assessment.to_json())
        quality["conformance"] = conformance_json(report)
        ehds = minimum_elements(record, dataset)
        if ehds is not None:
            quality["ehds_minimum"] = ehds
        if repairs:
            quality["repairs"] = len(repairs)
        dqv = ""
        if with_dqv:  # the bulk paths leave the DQV statements to be made when the record is read
            provenance = repairs_graph(dataset, [repair.to_json() for repair in repairs])
            dqv = "\n".join(ntriples_lines(assessment.to_dqv(dataset) + provenance))
        return quality, dqv

    quality, dqv = scored(bool(proofs))
    unsigned_quality, unsigned_dqv = scored(False) if proofs else (None, None)
    row = flatten_record(record, dataset, record_id=record_id, record_modified="", version=0, quality=quality)
    return WorkedRecord(
        record_id=record_id,
        dataset=str(dataset),
        statements=tuple(canonical_statements(record)),
        content="\n".join(ntriples_lines(record)),
        publishers=tuple(str(value) for value in publishers),
        named_publishers=tuple(str(value) for value in publishers if isinstance(value, URIRef)),
        proofs=tuple(dict(proof) for proof in proofs),
        proof_error=proof_error,
        report=report,
        repairs=tuple(repairs),
        quality=quality,
        dqv=dqv,
        row=row,
        linked=linked_records(record),
        unsigned_quality=unsigned_quality,
        unsigned_dqv=unsigned_dqv,
        warnings_json=tuple(result_json(result) for result in report.warnings),
        violations_json=tuple(result_json(result) for result in report.violations),
    )


def _rename(graph: Graph, old: Node, new: URIRef) -> Graph:
    renamed = Graph(bind_namespaces="none")
    for s, p, o in graph:
        renamed.add((new if s == old else s, p, new if o == old else o))
    return renamed


def result_json(result: ValidationResult) -> dict[str, Any]:
    """A validation result as the API shows it: the engine's fields plus what to change."""
    return {
        "focus_node": result.focus_node,
        "path": result.path,
        "severity": result.severity,
        "message": result.message,
        "constraint": result.constraint,
        "value": result.value,
        "source_shape": result.source_shape,
        "profile": profile_of_shape(result.source_shape),
        **explain(result).to_json(),
    }


def violations_error(report: ValidationReport) -> PublishError:
    violations = report.violations
    return PublishError(
        422,
        "shacl-violation",
        "The record does not conform to its DCAT-AP profiles",
        f"{len(violations)} SHACL violation(s)",
        [(result.path or result.focus_node, explain(result).text) for result in violations],
        {
            "violations": [result_json(result) for result in violations],
            "warnings": [result_json(result) for result in report.warnings],
        },
    )


@dataclass(frozen=True)
class PreparedRecord:
    """A record that passed every check, ready to be written (nothing stored yet)."""

    record_id: str
    dataset: URIRef
    version: RecordVersion
    row: IndexRow
    report: ValidationReport
    created: bool


@dataclass(frozen=True)
class PublishOutcome:
    record_id: str
    dataset: str
    version: int
    created: bool
    deleted: bool = False
    quality: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.record_id,
            "dataset": self.dataset,
            "version": self.version,
            "created": self.created,
            "deleted": self.deleted,
            "quality": self.quality,
            "warnings": self.warnings,
            "repairs": self.repairs,
            "violations": self.violations,
        }


class IngestStatus(StrEnum):
    """What became of one record of an ingested document."""

    STORED = "stored"
    """Stored and indexed (a new record or a new version), whatever its conformance."""
    UNCHANGED = "unchanged"
    """Same statements as the current version from the same source: nothing written."""
    QUARANTINED = "quarantined"
    """Stored, but not trusted: its proof failed or the trust check named a reason."""
    REJECTED = "rejected"
    """Not stored: strict mode and violations, or an error (``error`` says which)."""


TrustCheck = Callable[[str, Sequence[str]], "str | None"]
"""Called with a record's dataset IRI and canonical statements (what proofs sign); a returned
string quarantines it with that reason."""


@dataclass(frozen=True)
class RecordResult:
    """One record of an ingested document: its fate, the repairs made and what is wrong with it."""

    status: IngestStatus
    dataset: str | None
    record_id: str | None = None
    version: int | None = None
    created: bool = False
    repairs: tuple[Repair, ...] = ()
    violations: tuple[ValidationResult, ...] = ()
    warnings: tuple[ValidationResult, ...] = ()
    quality: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    error: PublishError | None = None
    name: str = ""
    """Which document (and, for a dump, which dataset of it): ``file`` or ``file#dataset``."""

    def outcome(self) -> PublishOutcome:
        """The answer of a single-record publish, as :meth:`CataloguePublisher.publish` gives it."""
        return PublishOutcome(
            self.record_id or "",
            self.dataset or "",
            self.version or 0,
            self.created,
            quality=dict(self.quality),
            warnings=[result_json(result) for result in self.warnings],
            repairs=[repair.to_json() for repair in self.repairs],
            violations=[result_json(result) for result in self.violations],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "dataset": self.dataset,
            "id": self.record_id,
            "version": self.version,
            "created": self.created,
            "repairs": [repair.to_json() for repair in self.repairs],
            "violations": [result_json(result) for result in self.violations],
            "warnings": [result_json(result) for result in self.warnings],
            "quality": dict(self.quality),
            "reason": self.reason,
            "error": None
            if self.error is None
            else {"status": self.error.status, "code": self.error.code, "detail": self.error.detail},
        }


def conformance_json(report: ValidationReport) -> dict[str, Any]:
    """DCAT-AP conformance as a quality dimension: every violation, counted by profile."""
    by_profile: dict[str, int] = {}
    for result in report.violations:
        profile = profile_of_shape(result.source_shape)
        by_profile[profile] = by_profile.get(profile, 0) + 1
    return {
        "conforms": not report.violations,
        "violations": len(report.violations),
        "warnings": len(report.warnings),
        "violations_by_profile": dict(sorted(by_profile.items())),
    }


def repairs_in(record: Graph, repairs: Sequence[Repair]) -> tuple[Repair, ...]:
    """The repairs about statements of this record (a dump's repairs are shared out per record)."""
    names = _node_names(record)
    return tuple(repair for repair in repairs if repair.subject in names)


class CataloguePublisher:
    """The write side of a catalogue node (one writer at a time; reads go to store and index)."""

    def __init__(
        self,
        store: RecordStore,
        index: SearchBackend,
        *,
        validate: Validator,
        assess: Assessor,
        signer: RecordSigner,
        key_for: KeyLookup,
        dataset_base: str,
        node_base: str | None = None,
        validate_many: BulkValidator | None = None,
        source: str = LOCAL_SOURCE,
        max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        warm_up: bool = True,
    ) -> None:
        self.store = store
        self.index = index
        self._validate = validate
        self._validate_many = validate_many or (lambda graphs: [validate(graph) for graph in graphs])
        self._assess = assess
        self.signer = signer
        self._key_for = key_for
        self._dataset_base = dataset_base.rstrip("/")
        # Skolem IRIs (/.well-known/genid/…) hang off the node's public URL.
        self._node_base = (
            node_base.rstrip("/") if node_base else self._dataset_base.rsplit("/catalogue/", 1)[0]
        )
        self._source = source
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.RLock()
        if warm_up:
            # Compiling the shapes and indexing the EU tables takes a second or more; do it now,
            # beside start-up, rather than in the first request that reads or writes a record.
            threading.Thread(target=self._warm_up, name="catalogue-warm-up", daemon=True).start()

    @property
    def dataset_base(self) -> str:
        """The IRI under which the node names datasets (``…/catalogue/datasets``)."""
        return self._dataset_base

    @property
    def node_base(self) -> str:
        """The node's public URL: skolem IRIs of blank nodes hang off it."""
        return self._node_base

    @property
    def validate_many(self) -> BulkValidator:
        return self._validate_many

    @property
    def assess(self) -> Assessor:
        return self._assess

    @property
    def uses_default_checks(self) -> bool:
        """Validation and scoring are the catalogue's own, which ingest workers can run."""
        return self._validate_many is validate_records and self._assess is assess

    def _warm_up(self) -> None:
        try:
            self._validate(Graph())
            normalise(Graph(), skolem_base=self._node_base)
        except Exception:  # a failure here shows again, with its reason, on first real use
            _log.exception("warming up the validator failed")

    # ---- steps 1-4 -------------------------------------------------------------------------
    def parse(self, data: bytes, media_type: str) -> Graph:
        return parse_document(data, media_type, base=self._dataset_base + "/", max_bytes=self.max_bytes)

    def _locate(
        self,
        graph: Graph,
        record_id: str | None,
        extracted: tuple[Node, Graph] | None = None,
        *,
        source: str = LOCAL_SOURCE,
    ) -> tuple[str, URIRef, Graph, RecordVersion | None]:
        if extracted is None:
            subject = find_record_subject(graph)
            record = extract_record(graph, subject)
        else:
            subject, record = extracted
        existing: RecordVersion | None = None
        if record_id is not None:
            existing = self.store.current(record_id)
            if existing is None:
                raise PublishError(
                    404,
                    "unknown-record",
                    "No such record",
                    f"no record {record_id!r}",
                    [("id", "no record with this id; POST creates records")],
                )
            if isinstance(subject, BNode):
                record = _rename(record, subject, URIRef(existing.dataset))
                subject = URIRef(existing.dataset)
            elif str(subject) != existing.dataset:
                raise PublishError(
                    409,
                    "dataset-mismatch",
                    "The document describes another dataset",
                    f"record {record_id} is about {existing.dataset}, the document about {subject}",
                    [("body", f"dataset IRI must stay {existing.dataset}")],
                )
            return record_id, URIRef(str(subject)), record, existing
        new_id, dataset, record = name_record(record, subject, source=source, dataset_base=self._dataset_base)
        return new_id, dataset, record, self.existing_for(new_id, dataset, source=source)

    def existing_for(self, record_id: str, dataset: URIRef, *, source: str) -> RecordVersion | None:
        """The stored version a new record would follow; a 409 when a local one is current.

        A harvested record (``source`` not local) is one record per dataset IRI (the harvest
        ledger keeps every origin), and ingesting it again makes a new version instead of a 409.
        """
        existing = self.store.current(record_id)
        if source == LOCAL_SOURCE and existing is not None and not existing.deleted:
            raise PublishError(
                409,
                "already-published",
                "Dataset already published",
                f"{dataset} is already published as record {record_id}; "
                f"PUT /catalogue/datasets/{record_id} replaces it",
                [("body", f"dataset {dataset} exists as record {record_id}")],
                {"id": record_id},
            )
        return existing

    def _refuse_other_records(self, worked: WorkedRecord) -> None:
        """Refuse a record that makes statements about another record's dataset.

        A record holds what its dataset reaches; another dataset is a boundary when the document
        types it, but a document can leave the type out and describe it all the same (give
        another publisher's dataset a title and a publisher of its own choosing). Those
        statements were stored in the record's graph and read, by the public SPARQL endpoint
        (every record graph) and by harvesters of ``/catalog``, as statements about the other
        dataset. A dataset this node holds a record for is described by that record only.
        """
        own = f"<{worked.dataset}>"
        described = {line.split(" ", 1)[0] for line in worked.statements if line.startswith("<")}
        for subject in sorted(described - {own}):
            other = self.store.record_for_dataset(subject[1:-1])
            if other is not None and other != worked.record_id:
                raise PublishError(
                    403,
                    "describes-another-record",
                    "The record describes another record's dataset",
                    f"{subject[1:-1]} is the dataset of record {other}; a record may link to it "
                    "but not make statements about it (they belong in that record)",
                    [("body", f"statements about {subject[1:-1]} (record {other})")],
                    {"id": other},
                )

    @staticmethod
    def _authorise(worked: WorkedRecord, owner: str | None, existing: RecordVersion | None) -> str:
        publishers = worked.publishers
        named = list(worked.named_publishers)
        if owner is None:
            return named[0] if named else (existing.owner if existing else LOCAL_SOURCE)
        if existing is not None and existing.owner != owner:
            raise PublishError(
                403,
                "not-owner",
                "Not your record",
                f"record is owned by {existing.owner}; your token is for {owner}",
                [("id", "the record belongs to another publisher")],
            )
        if publishers and named != [owner]:
            raise PublishError(
                403,
                "publisher-mismatch",
                "The record names another publisher",
                f"dct:publisher must be {owner} (the publisher your token was issued for)",
                [("dct:publisher", f"expected <{owner}>, found {', '.join(str(p) for p in publishers)}")],
            )
        return owner

    def validation_context(self, record: Graph) -> Graph | None:
        """The current descriptions of the records this one links to (for sh:class on the links)."""
        context: Graph | None = None
        for predicate in _LINKS_TO_RECORDS:
            for target in set(record.objects(None, predicate)):
                if not isinstance(target, URIRef) or (target, RDF.type, None) in record:
                    continue
                linked_id = self.store.record_for_dataset(str(target))
                linked = self.store.current(linked_id) if linked_id else None
                if linked is None or linked.deleted:
                    continue
                context = context if context is not None else Graph()
                context += record_graph_of(linked, with_quality=False)
        return context

    def _validate_in_context(self, records: Sequence[Graph]) -> list[ValidationReport]:
        contexts = [self.validation_context(record) for record in records]
        graphs = [
            record if context is None else record + context
            for record, context in zip(records, contexts, strict=True)
        ]
        reports = (
            self._validate_many(graphs) if len(graphs) > 1 else [self._validate(graphs[0])] if graphs else []
        )
        return [
            report if context is None else _without_context(report, record, context)
            for report, record, context in zip(reports, records, contexts, strict=True)
        ]

    def quality_graph(self, version: RecordVersion) -> Graph:
        """The DQV statements of a stored record (made now for records from the bulk path)."""
        if version.quality_content:
            return parse_rdf(version.quality_content, N_TRIPLES, version.dataset, STORED_RECORD_MAX_BYTES)
        record = record_graph_of(version, with_quality=False)
        dataset = URIRef(version.dataset)
        report = self._validate_in_context([record])[0]
        trust = (
            version.quality.get("quality", {}).get("trust", {}) if isinstance(version.quality, dict) else {}
        )
        assessment = self._assess(
            record,
            dataset,
            report,
            signed=bool(trust.get("signed")),
            publisher_verified=bool(trust.get("publisher_verified")),
        )
        return assessment.to_dqv(dataset) + repairs_graph(dataset, version.quality.get("repairs", []))

    # ---- the whole pipeline ----------------------------------------------------------------
    def prepare(
        self,
        graph: Graph,
        *,
        owner: str | None,
        record_id: str | None = None,
        report: ValidationReport | None = None,
        with_dqv: bool = True,
        extracted: tuple[Node, Graph] | None = None,
        lenient: bool = False,
        repairs: Sequence[Repair] | None = None,
        source: str | None = None,
        trust: TrustCheck | None = None,
    ) -> PreparedRecord:
        """Steps 2-7 on a parsed document; raises :class:`PublishError`, writes nothing.

        ``extracted`` is the record subject and subgraph when the caller already extracted them;
        ``report`` its validation report when the caller validated it (the bulk path does both).
        ``lenient`` keeps a record that violates its shapes (harvesting stores what other
        catalogues hold and scores its conformance; the violations are kept with the quality),
        and quarantines one whose publisher proof fails (or for which ``trust`` returns a
        reason) instead of rejecting it; not lenient (direct publishing) both answer 422.
        ``repairs`` are those :func:`catalogue.normalise.normalise` made to the document the
        record came from; None normalises the record here (the harvest path hands records
        already split). ``source`` names where the record came from when it is not this
        publisher's own source: a record held from another source is one record (its id is
        the dataset IRI's) and ingesting it again makes a new version instead of a 409.
        """
        source = source or self._source
        new_id, dataset, record, existing = self._locate(graph, record_id, extracted, source=source)
        if repairs is None:
            record = _copy(record)  # the caller's graph stays as it was sent
            repairs = normalise(record, owner=owner, skolem_base=self._node_base)
        iri_error = iri_problem(record)
        if iri_error is not None:
            raise iri_error
        proofs, proof_error = take_proofs(record, dataset)
        if report is None:
            report = self._validate_in_context([record])[0]
        worked = work_record(
            record,
            dataset,
            new_id,
            report=report,
            repairs=repairs,
            proofs=proofs,
            proof_error=proof_error,
            assess=self._assess,
            publisher_verified=owner is not None,
            with_dqv=with_dqv,
        )
        return self.settle(
            worked, owner=owner, existing=existing, lenient=lenient, trust=trust, source=source
        )

    def settle(
        self,
        worked: WorkedRecord,
        *,
        owner: str | None,
        existing: RecordVersion | None,
        lenient: bool,
        trust: TrustCheck | None,
        source: str,
    ) -> PreparedRecord:
        """The steps of a publish that need the node: authorisation, proofs, verdict, signature.

        ``worked`` is what :func:`work_record` computed (anywhere: in this process or an ingest
        worker); ``existing`` the stored version it follows. Raises :class:`PublishError` for a
        record that cannot be published; writes nothing.
        """
        dataset = URIRef(worked.dataset)
        owner_iri = self._authorise(worked, owner, existing)
        self._refuse_other_records(worked)
        quarantine: str | None = None
        publisher_proofs = list(worked.proofs)
        try:
            if worked.proof_error is not None:
                raise worked.proof_error
            if publisher_proofs:
                verify_publisher_statements(
                    worked.statements, worked.dataset, publisher_proofs, self._key_for
                )
        except ProofError as error:
            if not lenient:
                raise PublishError(
                    422,
                    error.code,
                    "Publisher proof does not verify",
                    error.message,
                    [("sluis:recordProof", error.message)],
                ) from None
            quarantine = f"publisher proof does not verify: {error.message}"
            if publisher_proofs:
                # Scored as unsigned: the proof it carried does not hold (and not in the
                # node's proof set: signed again without it).
                worked = replace(
                    worked,
                    proof=None,
                    proofs=(),
                    quality=worked.unsigned_quality or worked.quality,
                    dqv=worked.unsigned_dqv if worked.unsigned_dqv is not None else worked.dqv,
                )
            publisher_proofs = []
        report = worked.report
        if report.violations and not lenient:
            raise violations_error(report)
        if quarantine is None and trust is not None:
            quarantine = trust(worked.dataset, worked.statements)
        quality = dict(worked.quality)
        if quarantine is not None:
            quality["quarantined"] = quarantine
        if worked.proof is not None and worked.signed_by == self.signer.verification_method:
            proof = worked.proof  # signed where it was worked, over these statements and proofs
        else:
            proof = self.signer.sign_statements(worked.statements, worked.dataset, publisher_proofs)
        now = self._clock()
        version_number = 1 if existing is None else existing.version + 1
        version = RecordVersion(
            record_id=worked.record_id,
            version=version_number,
            dataset=worked.dataset,
            modified=now,
            deleted=False,
            owner=owner_iri,
            source=source,
            content=worked.content,
            quality_content=worked.dqv,
            proof=proof,
            quality=version_quality(quality, worked.warnings_json, worked.violations_json, worked.repairs),
            prepared=worked.store_text,
        )
        stamp = timestamp(now)
        # a dataset that states neither dct:modified nor dct:issued sorts by when it was recorded
        row = replace(
            worked.row, modified=worked.row.modified or stamp, record_modified=stamp, version=version_number
        )
        return PreparedRecord(worked.record_id, dataset, version, row, report, existing is None)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writer lock: another pipeline (harvesting) prepares and commits as one step."""
        with self._lock:
            yield

    def commit(self, prepared: Sequence[PreparedRecord], *, bulk: bool = False) -> None:
        """Write prepared records (store, then index); call inside :meth:`writing`.

        ``bulk`` lets a batch of only new records go through the store's bulk loader, with the
        bulk path's guarantees (a failed batch is removed again).
        """
        self._commit(prepared, bulk=bulk)

    def _commit(self, prepared: Sequence[PreparedRecord], *, bulk: bool = False) -> None:
        versions = [item.version for item in prepared]
        # Noted before the store write, removed after the index commit: a crash in between is
        # found and undone at the next start (catalogue.reconcile).
        with self.store.pending(versions):
            self._write_both(prepared, versions, bulk=bulk)

    def _write_both(
        self, prepared: Sequence[PreparedRecord], versions: list[RecordVersion], *, bulk: bool
    ) -> None:
        written = False
        try:
            with self.index.transaction() as transaction:
                for item in prepared:
                    if item.version.deleted:
                        transaction.tombstone(
                            item.record_id,
                            record_modified=item.row.record_modified,
                            version=item.version.version,
                        )
                    else:
                        transaction.upsert(item.row)
                self.store.write(versions, bulk=bulk)
                written = True
        except BaseException:
            if written:
                _log.error(
                    "index commit failed after store write; reverting", extra={"records": len(versions)}
                )
                self.store.revert(versions)
            raise

    def publish(
        self,
        data: bytes,
        media_type: str,
        *,
        owner: str | None,
        record_id: str | None = None,
        strict: bool = True,
    ) -> PublishOutcome:
        """Publish (``record_id`` None) or replace one record; all or nothing.

        The document is normalised first (:mod:`catalogue.normalise`); the repairs are in the
        outcome. ``strict`` (the default) rejects a record with violations (422); otherwise it
        is stored with its conformance in its quality.
        """
        graph = self.parse(data, media_type)
        repairs = normalise(graph, owner=owner, skolem_base=self._node_base)
        with self._lock:
            prepared = self.prepare(
                graph, owner=owner, record_id=record_id, lenient=not strict, repairs=repairs
            )
            self._commit([prepared])
        _log.info(
            "published record", extra={"record": prepared.record_id, "version": prepared.version.version}
        )
        return _outcome(prepared)

    def retract(self, record_id: str, *, owner: str | None) -> PublishOutcome:
        """Delete a record: a new version that is a tombstone; earlier versions stay readable."""
        with self._lock:
            existing = self.store.current(record_id)
            if existing is None or existing.deleted:
                raise PublishError(
                    404 if existing is None else 410,
                    "unknown-record",
                    "No such record" if existing is None else "Record already deleted",
                    f"no current record {record_id!r}",
                    [("id", "no current record with this id")],
                )
            if owner is not None and existing.owner != owner:
                raise PublishError(
                    403,
                    "not-owner",
                    "Not your record",
                    f"record is owned by {existing.owner}; your token is for {owner}",
                    [("id", "the record belongs to another publisher")],
                )
            now = self._clock()
            version = RecordVersion(
                record_id=record_id,
                version=existing.version + 1,
                dataset=existing.dataset,
                modified=now,
                deleted=True,
                owner=existing.owner,
                source=existing.source,
            )
            row = IndexRow(
                record_id,
                existing.dataset,
                "dataset",
                "",
                "",
                (),
                None,
                None,
                timestamp(now),
                timestamp(now),
                version.version,
                deleted=True,
            )
            tombstone = PreparedRecord(
                record_id, URIRef(existing.dataset), version, row, ValidationReport(True, []), False
            )
            self._commit([tombstone])
        return PublishOutcome(record_id, existing.dataset, version.version, False, deleted=True)


def _copy(graph: Graph) -> Graph:
    copied = Graph(bind_namespaces="none")
    for triple in graph:
        copied.add(triple)
    return copied


def _shape_of(record: Graph, subject: Node) -> list[str]:
    """The record's statements with blank nodes blurred: a stable text to name a blank dataset by."""
    return [
        " ".join("_" if isinstance(term, BNode) else term_text(term) for term in triple) for triple in record
    ]


def _node_names(graph: Graph) -> set[str]:
    names: set[str] = set()
    for subject in graph.subjects():
        names.add(str(subject))
        if isinstance(subject, BNode):
            names.add(f"_:{subject}")
    return names


def _without_context(report: ValidationReport, record: Graph, context: Graph) -> ValidationReport:
    """Drop the results about linked records: they were validated when they were published."""
    foreign = _node_names(context) - _node_names(record)
    kept = [result for result in report.results if result.focus_node not in foreign]
    return ValidationReport(not any(result.severity == "Violation" for result in kept), kept)


def _outcome(prepared: PreparedRecord) -> PublishOutcome:
    return PublishOutcome(
        prepared.record_id,
        str(prepared.dataset),
        prepared.version.version,
        prepared.created,
        quality=dict(prepared.version.quality.get("quality", {})),
        warnings=list(prepared.version.quality.get("warnings", [])),
        repairs=list(prepared.version.quality.get("repairs", [])),
        violations=list(prepared.version.quality.get("violations", [])),
    )


def record_graph_of(version: RecordVersion, *, with_quality: bool = True) -> Graph:
    """The stored record (as received, datatypes intact), plus its DQV measurements."""
    graph = parse_rdf(version.content, N_TRIPLES, version.dataset, STORED_RECORD_MAX_BYTES)
    if with_quality and version.quality_content:
        graph += parse_rdf(version.quality_content, N_TRIPLES, version.dataset, STORED_RECORD_MAX_BYTES)
    return graph
