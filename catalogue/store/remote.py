"""The :class:`RecordStore` on any SPARQL 1.1 Query/Update endpoint (Virtuoso, Fuseki, GraphDB…).

Why: one embedded Oxigraph store serves one process. Deployments that outgrow a machine (or that
already run a triple store, as piveau does with Virtuoso) keep the records in a shared SPARQL
server; several catalogue processes then read and write the same records. The layout is the
embedded store's (:mod:`catalogue.store.records`): one named graph per current record, the
catalogue records, the version history; everything travels as SPARQL 1.1 Protocol requests over
HTTP (``application/x-www-form-urlencoded`` POSTs), nothing else is assumed of the server.

All or nothing per batch, as far as the protocol allows. SPARQL 1.1 Update only says a request
*should* be atomic, and servers differ: Virtuoso 7 keeps the operations of a request that ran
before a failing one. So a batch is not trusted to one request. Each :meth:`write` is a small
journal protocol in the store itself (graph ``urn:sluis:batches``):

1. *claim*: one ``INSERT DATA`` names the batch (id, start time, the versions it writes) and puts a
   lock triple on each record it touches; reading the locks back tells whether another writer
   (another catalogue process) holds one of them — then the claim is withdrawn and the write
   answers ``stale-version`` (409): nothing was written;
2. the versions are checked (each must be the next of its record) while the locks are held;
3. *write*: the versions as ``INSERT DATA`` requests (as few as the server's request size limits
   allow; blank nodes skolemised, see :func:`skolemised`);
4. *release*: the batch and its locks are deleted. In a publish, :meth:`pending` holds the claim
   around the store write *and* the index commit, so release comes after both.

If any request of step 3 fails, the batch's versions are removed again (each record back at its
previous version) before the error is raised. If the process dies between 1 and 4, the batch stays
named in the store: :meth:`recover` (run when a node opens the store, knowing the index) finishes
every batch older than the lease: versions the index committed are kept, the others rolled back,
so store and index agree again after any crash.

Reads are SPARQL SELECTs (JSON results). The node's public SPARQL endpoint does not go through
this class: :class:`catalogue.store.remote_sparql.RemoteSparqlRunner` forwards checked queries.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyoxigraph as ox

from catalogue.store.records import (
    HISTORY_GRAPH,
    RECORDS_GRAPH,
    SOURCE_COPIES_GRAPH,
    RecordVersion,
    StoreError,
    VersionInfo,
    _catalog_record_statements,
    _iri,
    _version_statements,
    record_graph,
    source_copy_delete,
    source_copy_statement,
    version_node,
)
from catalogue.store.sparql_check import QueryRefused, check_query
from vocab.namespaces import DCAT, DCT, FOAF, SLUIS

_log = logging.getLogger(__name__)

BATCHES_GRAPH = "urn:sluis:batches"
_BATCH_PREFIX = "urn:sluis:batch:"
_LOCKED_BY = f"{SLUIS}lockedBy"
_STARTED = f"{SLUIS}batchStarted"
_WRITES = f"{SLUIS}batchWrites"
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"

SPARQL_RESULTS_JSON = "application/sparql-results+json"
N_TRIPLES = "application/n-triples"
# URL schemes that name a SPARQL endpoint (``sparql+http://host:port/sparql``).
SCHEMES = {"sparql+http": "http", "sparql+https": "https"}
# A batch whose writer has not finished within this time is taken to be dead (its process killed);
# write requests time out well before it.
DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_TIMEOUT_SECONDS = 120.0
# Answers of the node's public SPARQL endpoint are read up to this many bytes, then refused: the
# runner's row cap only applies after parsing, so the bytes are capped here.
MAX_QUERY_ANSWER_BYTES = 64 * 1024 * 1024
# Statements and bytes of one update request (see :func:`insert_data_requests`).
MAX_LINES_PER_REQUEST = 4_000
MAX_BYTES_PER_REQUEST = 4 * 1024 * 1024
# Reads of the store's own data (a record's history node holds its full N-Triples).
MAX_READ_ANSWER_BYTES = 256 * 1024 * 1024


def endpoint_from_url(url: str) -> str:
    """The HTTP(S) address of a store URL: ``sparql+http://h/sparql`` -> ``http://h/sparql``."""
    parts = urlsplit(url)
    scheme = SCHEMES.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ValueError(
            f"{url!r} is not a SPARQL store URL; use sparql+http://host:port/path or sparql+https://…"
        )
    return scheme + url[len(parts.scheme) :]


def _value(binding: dict[str, Any], name: str) -> str | None:
    term = binding.get(name)
    return None if term is None else str(term.get("value"))


def _timestamp_literal(moment: datetime) -> str:
    return f'"{moment.astimezone(UTC).isoformat()}"^^<http://www.w3.org/2001/XMLSchema#dateTime>'


def skolemised(record_id: str, content: str) -> list[str]:
    """A record's N-Triples lines with each blank node replaced by an IRI of its own.

    SPARQL 1.1 allows blank nodes in ``INSERT DATA``, but Virtuoso refuses them there, and its
    ``INSERT {…} WHERE {}`` (which takes them) compiles to SQL whose size limit a single large
    record exceeds. RDF 1.1 (§3.5) allows replacing blank nodes by fresh IRIs (skolemisation);
    these are ``urn:sluis:genid:{record}:{label}``. Only the live graph (what public SPARQL sees)
    holds them: the record as served is the history's N-Triples text, blank nodes unchanged.
    """
    lines = [line for line in content.split("\n") if line.strip()]
    if "_:" not in content:
        return lines
    prefix = f"urn:sluis:genid:{record_id}:"

    def term(value: Any) -> str:
        if isinstance(value, ox.BlankNode):
            return f"<{prefix}{value.value}>"
        return str(value)

    return [
        f"{term(quad.subject)} {term(quad.predicate)} {term(quad.object)} ."
        for quad in ox.parse(content.encode("utf-8"), ox.RdfFormat.N_TRIPLES)
    ]


def _term(binding: dict[str, Any], skolem_prefix: str) -> str:
    """An N-Triples term from a SPARQL JSON result binding (skolem IRIs back to blank nodes)."""
    value = str(binding.get("value", ""))
    kind = binding.get("type")
    if kind == "uri":
        if value.startswith(skolem_prefix):
            return f"_:{value[len(skolem_prefix) :]}"
        return str(ox.NamedNode(value))
    if kind == "bnode":
        return f"_:{value}"
    language = binding.get("xml:lang")
    if language:
        return str(ox.Literal(value, language=str(language)))
    datatype = binding.get("datatype")
    if datatype:
        return str(ox.Literal(value, datatype=ox.NamedNode(str(datatype))))
    return str(ox.Literal(value))


def insert_data_requests(blocks: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """``INSERT DATA`` requests for (graph, statement lines) blocks, each within the size limits.

    Virtuoso's SPARQL compiler fails on requests of more than about 9,000 lines ("memory
    exhausted"); requests are cut at :data:`MAX_LINES_PER_REQUEST` statements (and
    :data:`MAX_BYTES_PER_REQUEST`), between statements. The batch journal, not the request,
    makes a write all or nothing, so a batch may take several requests.
    """
    requests: list[str] = []
    current: dict[str, list[str]] = {}
    lines = size = 0

    def flush() -> None:
        nonlocal current, lines, size
        if current:
            body = "\n".join(
                f"GRAPH {graph} {{\n" + "\n".join(statements) + "\n}" for graph, statements in current.items()
            )
            requests.append(f"INSERT DATA {{\n{body}\n}}")
        current, lines, size = {}, 0, 0

    for graph, statements in blocks:
        for statement in statements:
            if lines >= MAX_LINES_PER_REQUEST or (size and size + len(statement) > MAX_BYTES_PER_REQUEST):
                flush()
            current.setdefault(graph, []).append(statement)
            lines += 1
            size += len(statement) + 1
    flush()
    return requests


def _version_from(record_id: str, version: int, values: dict[str, str]) -> RecordVersion | None:
    """A version from its history node's statements (predicate -> value)."""
    if str(DCT.modified) not in values:
        return None
    proof_text = values.get(str(SLUIS.proof), "")
    quality_text = values.get(str(SLUIS.quality), "")
    return RecordVersion(
        record_id=record_id,
        version=version,
        dataset=values.get(str(FOAF.primaryTopic), ""),
        modified=datetime.fromisoformat(values[str(DCT.modified)]),
        deleted=values.get(str(SLUIS.deleted), "") in ("true", "1"),
        owner=values.get(str(SLUIS.owner), ""),
        source=values.get(str(SLUIS.source), ""),
        content=values.get(str(SLUIS.content), ""),
        quality_content=values.get(str(SLUIS.qualityContent), ""),
        proof=json.loads(proof_text) if proof_text else None,
        quality=json.loads(quality_text) if quality_text else {},
    )


class SparqlEndpointStore:
    """A :class:`catalogue.store.RecordStore` whose statements live in a SPARQL 1.1 server."""

    def __init__(
        self,
        query_url: str,
        update_url: str | None = None,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recover: bool = True,
    ) -> None:
        self.query_url = query_url
        self.update_url = update_url or query_url
        self._lease = lease
        self._clock = clock
        # No redirects: a store answers where it was configured, never elsewhere.
        self._client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self.committed_version: Callable[[str], int | None] | None = None
        """The version of a record the search index committed (set by whoever opens the index
        with this store); recovery keeps batch versions the index already holds."""
        if recover:
            self.recover()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SparqlEndpointStore:
        return cls(endpoint_from_url(url), **options)

    # ---- protocol --------------------------------------------------------------------------
    def _post(self, url: str, form: dict[str, str], accept: str, max_bytes: int) -> tuple[str, bytes]:
        try:
            with self._client.stream("POST", url, data=form, headers={"Accept": accept}) as response:
                if response.status_code >= 300:
                    # Servers echo the whole request in their error answers: read only the start.
                    start = b""
                    for chunk in response.iter_bytes():
                        start += chunk
                        if len(start) >= 2000:
                            break
                    text = start[:600].decode("utf-8", "replace").strip()
                    raise StoreError(
                        "store-request-failed", f"the SPARQL store answered {response.status_code}: {text}"
                    )
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise StoreError(
                            "store-answer-too-large", f"the SPARQL store answered more than {max_bytes} bytes"
                        )
                    chunks.append(chunk)
                return response.headers.get("content-type", ""), b"".join(chunks)
        except httpx.HTTPError as error:
            raise StoreError("store-unavailable", f"the SPARQL store cannot be reached: {error}") from error

    def _select(self, query: str) -> list[dict[str, Any]]:
        _, body = self._post(self.query_url, {"query": query}, SPARQL_RESULTS_JSON, MAX_READ_ANSWER_BYTES)
        try:
            answer = json.loads(body)
            bindings: list[dict[str, Any]] = answer["results"]["bindings"]
        except (ValueError, KeyError, TypeError) as error:
            raise StoreError("store-request-failed", "the SPARQL store answered no SELECT results") from error
        return bindings

    def _ask(self, query: str) -> bool:
        _, body = self._post(self.query_url, {"query": query}, SPARQL_RESULTS_JSON, 1024 * 1024)
        try:
            return bool(json.loads(body)["boolean"])
        except (ValueError, KeyError, TypeError) as error:
            raise StoreError("store-request-failed", "the SPARQL store answered no ASK result") from error

    def _update(self, update: str) -> None:
        self._post(self.update_url, {"update": update}, "*/*", 1024 * 1024)

    # ---- reads ---------------------------------------------------------------------------
    def _current_version_numbers(self, record_ids: Sequence[str]) -> dict[str, int]:
        if not record_ids:
            return {}
        values = " ".join(_iri(record_graph(record_id)) for record_id in record_ids)
        rows = self._select(
            f"SELECT ?r ?v WHERE {{ VALUES ?r {{ {values} }} "
            f"GRAPH <{RECORDS_GRAPH}> {{ ?r <{SLUIS.version}> ?v }} }}"
        )
        prefix = record_graph("")
        found: dict[str, int] = {}
        for row in rows:
            graph, number = _value(row, "r"), _value(row, "v")
            if graph is not None and number is not None and graph.startswith(prefix):
                found[graph[len(prefix) :]] = int(number)
        return found

    def _issued(self, record_id: str) -> datetime | None:
        rows = self._select(
            f"SELECT ?i WHERE {{ GRAPH <{RECORDS_GRAPH}> {{ "
            f"{_iri(record_graph(record_id))} <{DCT.issued}> ?i }} }} LIMIT 1"
        )
        text = _value(rows[0], "i") if rows else None
        return None if text is None else datetime.fromisoformat(text)

    def current(self, record_id: str) -> RecordVersion | None:
        number = self._current_version_numbers([record_id]).get(record_id)
        return None if number is None else self.version(record_id, number)

    def version(self, record_id: str, version: int) -> RecordVersion | None:
        rows = self._select(
            f"SELECT ?p ?o WHERE {{ GRAPH <{HISTORY_GRAPH}> {{ "
            f"{_iri(version_node(record_id, version))} ?p ?o }} }}"
        )
        values = {str(_value(row, "p")): _value(row, "o") or "" for row in rows}
        return _version_from(record_id, version, values)

    def all_versions(self, record_ids: Sequence[str]) -> dict[str, list[RecordVersion]]:
        """Every version of each record, in one query (migration reads a batch at a time)."""
        if not record_ids:
            return {}
        graphs = " ".join(_iri(record_graph(record_id)) for record_id in record_ids)
        rows = self._select(
            f"SELECT ?r ?n ?p ?o WHERE {{ VALUES ?r {{ {graphs} }} GRAPH <{HISTORY_GRAPH}> {{ "
            f"?n <{SLUIS.versionOf}> ?r ; ?p ?o }} }}"
        )
        prefix = record_graph("")
        nodes: dict[tuple[str, str], dict[str, str]] = {}
        for row in rows:
            graph, node = str(_value(row, "r")), str(_value(row, "n"))
            nodes.setdefault((graph[len(prefix) :], node), {})[str(_value(row, "p"))] = _value(row, "o") or ""
        found: dict[str, list[RecordVersion]] = {record_id: [] for record_id in record_ids}
        for (record_id, _node), values in nodes.items():
            number = values.get(str(SLUIS.version))
            made = _version_from(record_id, int(number), values) if number else None
            if made is not None and record_id in found:
                found[record_id].append(made)
        for versions in found.values():
            versions.sort(key=lambda item: item.version)
        return found

    def versions(self, record_id: str) -> list[VersionInfo]:
        rows = self._select(
            f"SELECT ?v ?m ?d WHERE {{ GRAPH <{HISTORY_GRAPH}> {{ "
            f"?n <{SLUIS.versionOf}> {_iri(record_graph(record_id))} ; <{SLUIS.version}> ?v ; "
            f"<{DCT.modified}> ?m . OPTIONAL {{ ?n <{SLUIS.deleted}> ?d }} }} }}"
        )
        found = [
            VersionInfo(
                int(str(_value(row, "v"))),
                datetime.fromisoformat(str(_value(row, "m"))),
                _value(row, "d") in ("true", "1"),
            )
            for row in rows
        ]
        return sorted(found, key=lambda info: info.version)

    def record_for_dataset(self, dataset: str) -> str | None:
        rows = self._select(
            f"SELECT ?r WHERE {{ GRAPH <{RECORDS_GRAPH}> {{ ?r <{FOAF.primaryTopic}> {_iri(dataset)} }} }}"
        )
        prefix = record_graph("")
        for row in rows:
            graph = _value(row, "r")
            if graph is not None and graph.startswith(prefix):
                return graph[len(prefix) :]
        return None

    def types_of(self, resource: str) -> list[str]:
        record_id = self.record_for_dataset(resource)
        if record_id is None:
            return []
        rows = self._select(
            f"SELECT ?t WHERE {{ GRAPH {_iri(record_graph(record_id))} {{ "
            f"{_iri(resource)} <{_RDF_TYPE}> ?t FILTER(isIRI(?t)) }} }}"
        )
        return [str(_value(row, "t")) for row in rows]

    def count_records(self) -> int:
        rows = self._select(
            f"SELECT (COUNT(?r) AS ?n) WHERE {{ GRAPH <{RECORDS_GRAPH}> {{ "
            f"?r <{_RDF_TYPE}> <{DCAT.CatalogRecord}> }} }}"
        )
        return int(str(_value(rows[0], "n"))) if rows else 0

    def record_ids(self, *, page_size: int = 10_000) -> Iterator[str]:
        """Every record id (tombstones too), in id order, page by page (for migration)."""
        prefix = record_graph("")
        last = ""
        while True:
            rows = self._select(
                f"SELECT ?r WHERE {{ GRAPH <{RECORDS_GRAPH}> {{ ?r <{_RDF_TYPE}> <{DCAT.CatalogRecord}> }} "
                f"FILTER(STR(?r) > {json.dumps(last)}) }} ORDER BY STR(?r) LIMIT {int(page_size)}"
            )
            names = [str(_value(row, "r")) for row in rows]
            for name in names:
                if name.startswith(prefix):
                    yield name[len(prefix) :]
            if len(names) < page_size:
                return
            last = names[-1]

    def query(self, sparql: str) -> Any:
        """A read-only query answered by the server, for maintenance tools (migration).

        Returns Oxigraph's result objects (solutions, boolean, or a list of triples), as the
        embedded store does. The public endpoint goes through
        :class:`catalogue.store.remote_sparql.RemoteSparqlRunner` (caps, time limit) instead.
        """
        # The query's form (from its parsed algebra, within the node's limits) decides which
        # media type to ask the server for.
        try:
            form = check_query(sparql).form
        except QueryRefused as refused:
            raise SyntaxError(refused.reason) from None
        graph_form = form in ("CONSTRUCT", "DESCRIBE")
        accept = f"{N_TRIPLES}, text/plain;q=0.8" if graph_form else SPARQL_RESULTS_JSON
        media, body = self._post(self.query_url, {"query": sparql}, accept, MAX_QUERY_ANSWER_BYTES)
        media = media.split(";")[0].strip().lower()
        if media in (SPARQL_RESULTS_JSON, "application/json"):
            try:
                answer = json.loads(body)
            except ValueError as error:
                raise SyntaxError("the SPARQL store answered unreadable JSON") from error
            for row in answer.get("results", {}).get("bindings", []):
                for term in row.values():  # SPARQL 1.0 servers still say "typed-literal"
                    if isinstance(term, dict) and term.get("type") == "typed-literal":
                        term["type"] = "literal"
            return ox.parse_query_results(json.dumps(answer).encode(), ox.QueryResultsFormat.JSON)
        if media in (N_TRIPLES, "text/plain", "text/turtle"):
            syntax = ox.RdfFormat.TURTLE if media == "text/turtle" else ox.RdfFormat.N_TRIPLES
            return [ox.Triple(q.subject, q.predicate, q.object) for q in ox.parse(body, syntax)]
        if media.startswith("text/") and b"error" in body[:200].lower():
            raise SyntaxError(body[:300].decode("utf-8", "replace"))
        raise StoreError("store-request-failed", f"the SPARQL store answered an unexpected {media!r}")

    # ---- writes --------------------------------------------------------------------------
    def write(self, versions: Sequence[RecordVersion], *, bulk: bool = False) -> None:
        """Store new versions (each the next number of its record), all or nothing (see module).

        ``bulk`` makes no difference here: every batch goes as ``INSERT DATA`` requests.
        """
        del bulk
        if not versions:
            return
        if len({record.record_id for record in versions}) != len(versions):
            raise StoreError("duplicate-record", "one write holds at most one version per record")
        with self._write_lock:
            held = self._held_for(versions)
            batch = held or self._claim(versions)
            try:
                current = self._current_version_numbers([record.record_id for record in versions])
                for record in versions:
                    number = current.get(record.record_id)
                    expected = 1 if number is None else number + 1
                    if record.version != expected:
                        raise StoreError(
                            "stale-version",
                            f"record {record.record_id} is at version {number}; "
                            f"cannot write version {record.version}",
                        )
                try:
                    for request in self._requests_for(versions):
                        self._update(request)
                except StoreError:
                    _log.error("SPARQL store write failed; removing the batch", extra={"batch": batch})
                    self._remove_versions(versions)
                    raise
            finally:
                if held is None:
                    self._release(batch)

    def _held_for(self, versions: Sequence[RecordVersion]) -> str | None:
        """The batch :meth:`pending` claimed for these versions on this thread, if any."""
        held: tuple[str, frozenset[tuple[str, int]]] | None = getattr(self._local, "held", None)
        if held is None:
            return None
        wanted = {(record.record_id, record.version) for record in versions}
        return held[0] if wanted <= held[1] else None

    @contextmanager
    def pending(self, versions: Sequence[RecordVersion]) -> Iterator[None]:
        """Hold the batch's claim for the whole publish: store write *and* index commit.

        The publisher wraps both in this block, so the batch stays named in the store until the
        index has committed too. A writer killed after its store write but before the index
        commit leaves the batch pending, and :meth:`recover` decides by the index: versions it
        committed are kept, the others rolled back — store and index agree again, and a retried
        publish is a first publish (never a 409 for a record search cannot find).
        """
        if not versions or getattr(self._local, "held", None) is not None:
            yield
            return
        batch = self._claim(versions)
        self._local.held = (batch, frozenset((record.record_id, record.version) for record in versions))
        try:
            yield
        finally:
            self._local.held = None
            self._release(batch)

    def revert(self, versions: Sequence[RecordVersion]) -> None:
        """Undo :meth:`write` of these versions (a later step of a publish failed)."""
        with self._write_lock:
            held = self._held_for(versions)
            batch = held or self._claim(versions)
            try:
                self._remove_versions(versions)
            finally:
                if held is None:
                    self._release(batch)

    def _claim(self, versions: Sequence[RecordVersion], *, retry: bool = True) -> str:
        batch = f"{_BATCH_PREFIX}{uuid.uuid4()}"
        writes = json.dumps([[record.record_id, record.version] for record in versions])
        graphs = [_iri(record_graph(record.record_id)) for record in versions]
        locks = "\n".join(f"{graph} <{_LOCKED_BY}> <{batch}> ." for graph in graphs)
        self._update(
            f"INSERT DATA {{ GRAPH <{BATCHES_GRAPH}> {{\n"
            f"<{batch}> <{_STARTED}> {_timestamp_literal(self._clock())} ;\n"
            f"  <{_WRITES}> {json.dumps(writes)} .\n{locks}\n}} }}"
        )
        rows = self._select(
            f"SELECT ?r ?b WHERE {{ VALUES ?r {{ {' '.join(graphs)} }} "
            f"GRAPH <{BATCHES_GRAPH}> {{ ?r <{_LOCKED_BY}> ?b }} FILTER(?b != <{batch}>) }} LIMIT 1"
        )
        if not rows:
            return batch
        self._release(batch)
        if retry and self.recover() > 0:  # the other holder was a dead writer's stale batch
            return self._claim(versions, retry=False)
        graph = str(_value(rows[0], "r"))
        raise StoreError(
            "stale-version",
            f"record {graph.removeprefix(record_graph(''))} is being written by another catalogue "
            "process; read it again and retry",
        )

    def _release(self, batch: str) -> None:
        self._update(
            f"DELETE WHERE {{ GRAPH <{BATCHES_GRAPH}> {{ ?r <{_LOCKED_BY}> <{batch}> }} }} ;\n"
            f"DELETE WHERE {{ GRAPH <{BATCHES_GRAPH}> {{ <{batch}> ?p ?o }} }}"
        )

    def _requests_for(self, records: Sequence[RecordVersion]) -> list[str]:
        """The update requests that write ``records``: removals first, then the statements."""
        removals: list[str] = []
        blocks: list[tuple[str, list[str]]] = []
        for record in records:
            graph = _iri(record_graph(record.record_id))
            issued = record.modified
            if record.version > 1:
                issued = self._issued(record.record_id) or record.modified
                removals.append(f"DROP SILENT GRAPH {graph}")
                removals.append(f"DELETE WHERE {{ GRAPH <{RECORDS_GRAPH}> {{ {graph} ?p ?o }} }}")
            blocks.append((f"<{HISTORY_GRAPH}>", _version_statements(record).split("\n")))
            blocks.append((f"<{RECORDS_GRAPH}>", _catalog_record_statements(record, issued).split("\n")))
            if not record.deleted and record.content:
                blocks.append((graph, skolemised(record.record_id, record.content)))
        requests = [" ;\n".join(removals)] if removals else []
        return requests + insert_data_requests(blocks)

    # ---- a harvest source's copy of what it served (text, outside the records' graphs) -------
    def replace_source_copies(self, graphs: Mapping[str, str]) -> None:
        """Keep exactly the given N-Triples under each name ("" drops it).

        Stored as text, one literal per copy (see the embedded store's method for why). Not
        journalled: these copies are a cache of what a source served, written before the
        harvest ledger notes it, so a failed write is rewritten by the next harvest.
        """
        if not graphs:
            return
        operations = [
            *(f"DROP SILENT GRAPH {_iri(name)}" for name in graphs),
            *(source_copy_delete(name) for name in graphs),
        ]
        blocks = [
            (_iri(SOURCE_COPIES_GRAPH), [source_copy_statement(name, content)])
            for name, content in graphs.items()
            if content
        ]
        with self._write_lock:
            self._update(" ;\n".join(operations))
            for request in insert_data_requests(blocks):
                self._update(request)

    def source_copy(self, name: str) -> list[str]:
        """The N-Triples lines kept under ``name`` by :meth:`replace_source_copies`."""
        rows = self._select(
            f"SELECT ?copy WHERE {{ GRAPH {_iri(SOURCE_COPIES_GRAPH)} "
            f"{{ {_iri(name)} <{SLUIS}content> ?copy }} }} LIMIT 1"
        )
        if not rows:
            return []
        copy = str(rows[0]["copy"].get("value", ""))
        return [line for line in copy.split("\n") if line.strip()]

    def _remove_versions(self, versions: Sequence[RecordVersion]) -> None:
        """Put each record back at the version before this one (or remove it when new).

        Idempotent: a version that never landed is removed as a no-op, so recovery can run it on a
        batch of unknown progress.
        """
        for record in versions:
            self._roll_back(record.record_id, record.version)

    def _roll_back(self, record_id: str, version: int) -> None:
        node = _iri(version_node(record_id, version))
        graph = _iri(record_graph(record_id))
        issued = self._issued(record_id)
        operations = [
            f"DELETE WHERE {{ GRAPH <{HISTORY_GRAPH}> {{ {node} ?p ?o }} }}",
            f"DROP SILENT GRAPH {graph}",
            f"DELETE WHERE {{ GRAPH <{RECORDS_GRAPH}> {{ {graph} ?p ?o }} }}",
        ]
        self._update(" ;\n".join(operations))
        previous = self.version(record_id, version - 1) if version > 1 else None
        if previous is not None:
            restore = [
                (
                    f"<{RECORDS_GRAPH}>",
                    _catalog_record_statements(previous, issued or previous.modified).split("\n"),
                )
            ]
            if not previous.deleted and previous.content:
                restore.append((graph, skolemised(record_id, previous.content)))
            for request in insert_data_requests(restore):
                self._update(request)

    def pending_batches(self) -> list[tuple[str, datetime, list[tuple[str, int]]]]:
        """Batches named in the store and not released: (id, start, [(record, version)…])."""
        rows = self._select(
            f"SELECT ?b ?s ?w WHERE {{ GRAPH <{BATCHES_GRAPH}> {{ ?b <{_STARTED}> ?s ; <{_WRITES}> ?w }} }}"
        )
        found = []
        for row in rows:
            writes = json.loads(str(_value(row, "w")))
            found.append(
                (
                    str(_value(row, "b")),
                    datetime.fromisoformat(str(_value(row, "s"))),
                    [(str(item[0]), int(item[1])) for item in writes],
                )
            )
        return found

    def recover(self) -> int:
        """Finish with every batch whose writer died (older than the lease); return how many.

        Each version of such a batch is kept if the search index committed it (see
        :attr:`committed_version`: the writer died after its index commit, before releasing the
        batch) and rolled back otherwise.
        """
        deadline = self._clock() - self._lease
        recovered = 0
        for batch, started, writes in self.pending_batches():
            if started > deadline:
                continue  # a live writer (maybe another process) is still inside its lease
            _log.warning(
                "recovering a batch left unfinished by a stopped writer",
                extra={"batch": batch, "records": len(writes)},
            )
            for record_id, version in writes:
                committed = self.committed_version(record_id) if self.committed_version else None
                if committed is not None and committed >= version:
                    continue
                self._roll_back(record_id, version)
            self._release(batch)
            recovered += 1
        return recovered

    def flush(self) -> None:
        """Nothing to flush: every request is durable when the server answers."""

    def close(self) -> None:
        self._client.close()
