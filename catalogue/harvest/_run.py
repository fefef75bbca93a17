"""Running one harvest of one source: the I/O around the pure run machine.

Per page: fetch (:mod:`._fetch`, capped), read (:mod:`._pages`), judge each record's trust
(:mod:`._trust`), prepare the changed ones through the catalogue's own publish pipeline
(validation, quality, the node's signature) *outside* the writer lock, then commit them under it
one batch at a time, and record origins, cursor and visited page in one ledger transaction. So
local publishing and search never wait for a peer: they wait at most for one batch's write.

Deletions: a tombstone on a page (``adms:status`` deleted) or, after a *complete* listing, a
dataset the source no longer lists, drops that source's origin and version; the record shows
another source's version, or is retracted when no origin holds it any more (:mod:`._versions`).
Incomplete runs (a cap, a page loop, an unreadable page or file, an interruption) never delete;
a capped run's listing is carried on by the next run, which sweeps once it is complete. Each
page is asked for with the validators it had when last read; a 304 stands for what it listed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rdflib import Graph, URIRef

from catalogue.harvest._fastpage import read_page_fast
from catalogue.harvest._fetch import Fetcher, FetchError, FetchLimits, origin_of
from catalogue.harvest._machine import IllegalTransition, RunEvent, RunState, step
from catalogue.harvest._pages import (
    Page,
    PageError,
    PageRecord,
    media_type_of,
    parse_page,
    read_listing,
    read_page,
    read_signed_record,
    signed_record_url,
)
from catalogue.harvest._trust import TRUST_QUARANTINED, Verdict, judge
from catalogue.harvest._versions import SourceGraphs, source_graph, source_id_of, successor, takes_display
from catalogue.harvest._work import RecordWorker
from catalogue.harvest.config import NodeSettings
from catalogue.harvest.ledger import Ledger, Origin, PageState, Run, Source
from catalogue.index import TRUST_LOCAL
from catalogue.pipeline import WorkedDocument
from catalogue.publish import (
    RECORD_TYPES,
    CataloguePublisher,
    PreparedRecord,
    PublishError,
    record_id_for,
    timestamp,
)
from catalogue.store import LOCAL_SOURCE, RecordVersion, StoreError
from vocab.errors import VocabError
from vocab.namespaces import DCT, DSPACE, RDF
from vocab.rdfio import N_TRIPLES, parse_rdf

_log = logging.getLogger(__name__)

#: Cursor entries: a page of a listing (its failure fails the run) or a file a directory listing
#: linked to (its failure is reported by name and the run goes on, without sweeping).
_PAGE, _FILE = "page", "file"
#: What ``judge`` is given when it reads no graph (no ``publishers`` list; statements given).
_NO_GRAPH = Graph()
_PROOF_ERRORS = frozenset(
    {"bad_proof", "malformed_proof", "unknown_key", "too_many_proofs", "proof_mismatch"}
)

ProgressHook = Callable[[Run], None]
#: Fetches a DSP catalog: (dsp base URL, connector DID) -> (status, JSON body).
DspFetch = Callable[[str, str], tuple[int, Any]]


class HarvestError(Exception):
    """A harvest that could not start (unknown source, illegal run state)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Entry:
    role: str
    url: str

    def encoded(self) -> str:
        return f"{self.role}\t{self.url}"

    @staticmethod
    def decode(text: str) -> _Entry:
        role, _, url = text.partition("\t")
        return _Entry(role, url) if url else _Entry(_PAGE, role)


def with_modified_since(url: str, since: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("modified_since", "page")]
    query.append(("modified_since", since))
    return urlunsplit(parts._replace(query=urlencode(query)))


class Harvester:
    """Harvests sources into one node (store, index, ledger); one run per source at a time."""

    def __init__(
        self,
        publisher: CataloguePublisher,
        ledger: Ledger,
        settings: NodeSettings,
        *,
        fetcher: Fetcher | None = None,
        dsp_fetch: DspFetch | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        workers: int | None = None,
    ) -> None:
        """``workers``: ingest worker processes for large batches (None: sized to the machine,
        0: none, all work in this process)."""
        self.publisher = publisher
        self.ledger = ledger
        self.settings = settings
        limits = settings.limits
        self.fetcher = fetcher or Fetcher(
            FetchLimits(
                limits.timeout_seconds,
                limits.deadline_seconds,
                limits.max_page_bytes,
                settings.address_policy,
            )
        )
        if not isinstance(publisher.store, SourceGraphs):
            raise TypeError("harvesting needs a store that keeps source copies (replace_source_copies)")
        self._graphs: SourceGraphs = publisher.store
        self._worker = RecordWorker(publisher, workers)
        self._dsp_fetch = dsp_fetch
        self._clock = clock
        self._running: set[str] = set()
        self._guard = threading.Lock()

    def start_workers(self) -> float:
        """Start the ingest worker processes before a large harvest; their start-up CPU seconds
        (otherwise they start with the first large batch)."""
        return self._worker.start()

    def close(self) -> None:
        self.fetcher.close()
        self._worker.close()

    # ---- the run ------------------------------------------------------------------------------
    def harvest(
        self, source_id: str, *, progress: ProgressHook | None = None, stop: threading.Event | None = None
    ) -> Run:
        source = self.ledger.source(source_id)
        if source is None:
            raise HarvestError("unknown-source", f"no source {source_id!r}")
        with self._guard:
            if source_id in self._running:
                raise HarvestError("already-running", f"source {source_id!r} is being harvested")
            self._running.add(source_id)
        try:
            return self._harvest(source, progress, stop or threading.Event())
        finally:
            with self._guard:
                self._running.discard(source_id)

    def _move(self, run: Run, event: RunEvent) -> None:
        moved = step(run.state, event)
        if isinstance(moved, IllegalTransition):
            raise HarvestError("illegal-transition", moved.reason)
        run.state = moved.after

    def _start(self, source: Source) -> Run:
        run = self.ledger.open_run(source.id)
        if run is not None:  # a process stopped during it: resume at its cursor
            if run.state is not RunState.INTERRUPTED:
                if run.state is RunState.PENDING:
                    self._move(run, RunEvent.START)
                self._move(run, RunEvent.INTERRUPT)
            self._move(run, RunEvent.RESUME)
            self.ledger.save_run(run)
            return run
        last = self.ledger.last_run(source.id)
        if last is not None and last.state is RunState.CAPPED and last.cursor:
            # The last run met a cap mid-listing: this one carries that listing on from its
            # cursor, with what it saw, so a source larger than one run is listed (and swept)
            # completely over several runs.
            run = self.ledger.new_run(
                source.id, timestamp(self._clock()), last.cursor, last.incremental, continues=last
            )
            self._move(run, RunEvent.START)
            self.ledger.save_run(run)
            return run
        _, _, watermark = self.ledger.sync_state(source.id)
        incremental = bool(source.incremental and watermark)
        url = with_modified_since(source.url, watermark) if incremental and watermark else source.url
        run = self.ledger.new_run(
            source.id, timestamp(self._clock()), [_Entry(_PAGE, url).encoded()], incremental
        )
        self._move(run, RunEvent.START)
        self.ledger.save_run(run)
        return run

    def _harvest(self, source: Source, progress: ProgressHook | None, stop: threading.Event) -> Run:
        run = self._start(source)
        began = time.monotonic()
        while run.state is RunState.LISTING:
            if stop.is_set():
                self._move(run, RunEvent.INTERRUPT)
                break
            if not run.cursor:
                complete = run.complete and not run.incremental
                untouched = not run.counts.get("pages") and run.counts.get("not_modified")
                if untouched and run.complete and run.continues is None:
                    self._move(run, RunEvent.NOT_MODIFIED)  # every page answered 304
                elif complete:
                    self._move(run, RunEvent.LAST_PAGE_STORED)
                else:
                    self._move(run, RunEvent.LAST_PAGE_NO_SWEEP)
                break
            if self.ledger.visited_count(run.id) >= self.settings.limits.max_listing_pages:
                run.error = (
                    f"listing cap reached ({self.settings.limits.max_listing_pages} pages over the runs "
                    "that carried it on); the next run lists the source again from its first page"
                )
                run.cursor, run.complete = [], False
                self._move(run, RunEvent.CAP_REACHED)
                break
            cap = self._cap_reached(run, began)
            if cap:
                run.error = cap
                self._move(run, RunEvent.CAP_REACHED)
                break
            entry = _Entry.decode(run.cursor[0])
            if self.ledger.visited(run.id, entry.url):
                if entry.role == _FILE:
                    run.cursor.pop(0)
                    continue
                run.error = f"page loop: {entry.url} was already read in this run; listing stopped there"
                run.cursor, run.complete = [], False  # a loop is not carried on by the next run
                self._move(run, RunEvent.CAP_REACHED)
                break
            cached = None if source.kind == "dsp" else self.ledger.page_state(source.id, entry.url)
            try:
                page, fetched_bytes, validators = self._read(source, entry, cached)
            except (FetchError, PageError) as error:
                if entry.role == _FILE:
                    with self.ledger.transaction() as db:
                        self.ledger.reject(db, run, entry.url, error.message)
                        run.complete = False
                        run.cursor.pop(0)
                        self.ledger.mark_visited(db, run.id, entry.url)
                        self.ledger.save_run(run, db)
                    continue
                run.error = error.message
                self._move(run, RunEvent.PAGE_FAILED)
                break
            except Exception as error:  # a defect must end this run, not wedge the source for good
                _log.exception(
                    "harvest: reading a page failed", extra={"source": source.id, "url": entry.url}
                )
                run.error = f"internal error reading {entry.url}: {type(error).__name__}"
                self._move(run, RunEvent.PAGE_FAILED)
                break
            if page is None:  # 304: the page is as it was when last read
                self._page_unchanged(source, run, entry, cached)
                if progress is not None:
                    progress(run)
                continue
            run.count("pages")
            run.count("bytes", fetched_bytes)
            try:
                self._store_page(source, run, entry, page, validators)
            except Exception as error:  # e.g. the store refused a write: report, keep what was stored
                _log.exception(
                    "harvest: storing a page failed", extra={"source": source.id, "url": entry.url}
                )
                run.error = f"storing the records of {entry.url} failed: {type(error).__name__}: {error}"[
                    :1000
                ]
                self._move(run, RunEvent.PAGE_FAILED)
                break
            if progress is not None:
                progress(run)
        if run.state is RunState.SWEEPING:
            self._sweep(source, run)
            self._move(run, RunEvent.SWEPT)
        return self._finish(source, run)

    def _cap_reached(self, run: Run, began: float) -> str | None:
        limits = self.settings.limits
        if run.counts.get("pages", 0) + run.counts.get("not_modified", 0) >= limits.max_pages:
            return f"page cap reached ({limits.max_pages} pages); the rest is left for the next run"
        # New work counts, not records seen unchanged: a source larger than the cap still moves on
        # at every run (its unchanged records cost only their page's fetch and parse).
        work = sum(run.counts.get(name, 0) for name in ("stored", "quarantined", "rejected"))
        if work >= limits.max_records:
            return (
                f"record cap reached ({limits.max_records} records stored, quarantined or rejected); "
                "the rest is left for the next run"
            )
        if run.counts.get("bytes", 0) >= limits.max_run_bytes:
            return f"byte cap reached ({limits.max_run_bytes} bytes); the rest is left for the next run"
        if time.monotonic() - began >= limits.max_run_seconds:
            return f"time cap reached ({limits.max_run_seconds:g} s); the rest is left for the next run"
        return None

    def _read(
        self, source: Source, entry: _Entry, cached: PageState | None
    ) -> tuple[Page | None, int, tuple[str | None, str | None]]:
        """The page (None: 304 to the validators it had when last read in full), its size and
        its validators."""
        limits = self.settings.limits
        if source.kind == "dsp":
            page, size = self._read_dsp(source, entry.url)
            return page, size, (None, None)
        etag, last_modified = (cached.etag, cached.last_modified) if cached else (None, None)
        fetched = self.fetcher.get(entry.url, etag=etag, last_modified=last_modified)
        if fetched.not_modified:
            if cached is None:
                raise FetchError("unexpected-304", f"{entry.url} answered 304 to an unconditional request")
            return None, 0, (etag, last_modified)
        if fetched.status != 200:
            raise FetchError("http-status", f"{fetched.url} answered HTTP {fetched.status}")
        media_type = media_type_of(fetched.url, fetched.media_type)
        if media_type in ("text/html", "application/xhtml+xml"):
            page = read_listing(fetched.body, fetched.url)
        else:
            fast = read_page_fast(fetched.body, media_type, fetched.url, source.iri, limits.max_page_bytes)
            if fast is not None:
                page = fast
            else:
                graph = parse_page(fetched.body, media_type, fetched.url, limits.max_page_bytes)
                page = read_page(graph, fetched.url, source.iri)
        return page, len(fetched.body), (fetched.etag, fetched.last_modified)

    def _read_dsp(self, source: Source, url: str) -> tuple[Page, int]:
        from vocab.jsonld import check_json_limits, to_graph

        if self._dsp_fetch is None:
            raise FetchError("no-identity", "DSP sources need the node's identity (a node.toml with its key)")
        status, body = self._dsp_fetch(url, source.did or "")
        if status != 200 or not isinstance(body, dict):
            raise FetchError("http-status", f"{url} answered the catalog request with HTTP {status}")
        size = len(json.dumps(body))
        try:
            check_json_limits(body)
            graph = to_graph(body, url.rstrip("/") + "/")
        except VocabError as error:
            raise PageError(
                "unparsable", f"{url}: the DSP catalog is not readable JSON-LD: {error}"
            ) from None
        # DSP datasets name no publisher; the catalog names its participant, which is who offers
        # them (a DID): it becomes the records' dct:publisher where they name none.
        participant = next(graph.objects(None, DSPACE.participantId), None)
        if participant is not None and ":" in str(participant):
            publisher = URIRef(str(participant))
            for kind in RECORD_TYPES:
                for dataset in set(graph.subjects(RDF.type, kind)):
                    if graph.value(dataset, DCT.publisher) is None:
                        graph.add((dataset, DCT.publisher, publisher))
        return read_page(graph, url, source.iri), size

    # ---- writing a page ---------------------------------------------------------------------
    def _store_page(
        self,
        source: Source,
        run: Run,
        entry: _Entry,
        page: Page,
        validators: tuple[str | None, str | None],
    ) -> None:
        now = timestamp(self._clock())
        unique: dict[str, PageRecord] = {}
        for record in page.records:
            unique.setdefault(record.dataset, record)
        records = list(unique.values())
        batch = self.settings.limits.batch_size
        for start in range(0, len(records), batch):
            self._store_batch(source, run, records[start : start + batch], now, entry.url)
        self._delete(source, run, page.deleted)
        etag, last_modified = validators
        # Validators are kept only for pages read in full; an incremental run's URLs change
        # with its watermark, so its pages are not asked again.
        keep = (etag or last_modified) and not run.incremental and not page.rejected
        state = PageState(etag, last_modified, page.next_url, tuple(page.links)) if keep else None
        with self.ledger.transaction() as db:
            for item, reason in page.rejected:
                self.ledger.reject(db, run, item, reason)
            if page.newest and (run.newest is None or page.newest > run.newest):
                run.newest = page.newest
            self.ledger.put_page_state(db, source.id, entry.url, state)
            self._follow(db, source, run, entry, page.next_url, page.links)

    def _page_unchanged(self, source: Source, run: Run, entry: _Entry, cached: PageState | None) -> None:
        """A 304: what the page listed when last read is seen again; its links are followed."""
        if cached is None:  # _read only returns no page for a page it had validators for
            raise HarvestError("illegal-transition", f"{entry.url}: 304 without validators")
        now = timestamp(self._clock())
        with self.ledger.transaction() as db:
            seen = self.ledger.seen_on_page(db, run.id, source.id, entry.url, now)
            run.count("not_modified")
            run.count("seen", seen)
            run.count("unchanged", seen)
            self._follow(db, source, run, entry, cached.next_url, cached.links)

    def _follow(
        self,
        db: sqlite3.Connection,
        source: Source,
        run: Run,
        entry: _Entry,
        next_url: str | None,
        links: Sequence[str],
    ) -> None:
        """Done with ``entry``: its next page and listed files go to the front of the cursor."""
        self.ledger.mark_visited(db, run.id, entry.url)
        run.cursor.pop(0)
        follow = [_Entry(_FILE if link.rsplit("/", 1)[-1] else _PAGE, link) for link in links]
        if next_url:
            follow.insert(0, _Entry(entry.role, next_url))
        home = origin_of(source.url)
        for link in follow:
            if origin_of(link.url) != home:  # a page may not send us to another host
                run.complete = False
                self.ledger.reject(db, run, link.url, "link to another host than the source's; not followed")
        run.cursor[0:0] = [link.encoded() for link in follow if origin_of(link.url) == home]
        self.ledger.save_run(run, db)

    def _store_batch(
        self, source: Source, run: Run, records: Sequence[PageRecord], now: str, page_url: str
    ) -> None:
        known = self.ledger.origins_of_source(source.id, [record.dataset for record in records])
        unchanged: list[str] = []
        candidates: list[tuple[PageRecord, Verdict]] = []
        quarantined: list[tuple[PageRecord, str]] = []
        unreadable: list[tuple[str, str]] = []
        for record in records:
            run.count("seen")
            origin = known.get(record.dataset)
            if origin is not None and origin.digest == record.digest:
                unchanged.append(record.dataset)
                continue
            # The rdflib graph is made only where something reads it: the publishers a source
            # may speak for, or the in-process path (limits are the ingest workers' then).
            try:
                graph = record.graph if source.publishers else _NO_GRAPH
            except VocabError as error:
                unreadable.append((record.dataset, f"not readable: {error}"))
                continue
            trusted = self.settings.trusted
            if record.node_proof is not None and record.canonical is None and record.catalog_record:
                # Blank nodes shared with other records of the page: the cut holds more than was
                # signed, so the signed form is what can verify (and its check is cheap).
                unavailable = Verdict(TRUST_QUARANTINED, "signed form not available from the source")
                record, verdict = self._signed_form(source, record, unavailable)
                if verdict is not unavailable:  # judged on the signed form: that is the verdict
                    if verdict.quarantined:
                        quarantined.append((record, verdict.reason))
                    else:
                        candidates.append((record, verdict))
                    continue
            verdict = judge(
                source, trusted, record.dataset, graph, record.node_proof, record.proof_statements
            )
            if verdict.quarantined and record.node_proof is not None and record.canonical is not None:
                # Signed over the rdflib form where the two differ (a literal rdflib normalises)
                verdict = judge(source, trusted, record.dataset, graph, record.node_proof, record.statements)
            if verdict.quarantined and record.node_proof is not None:
                record, verdict = self._signed_form(source, record, verdict)
            if verdict.quarantined:
                quarantined.append((record, verdict.reason))
            else:
                candidates.append((record, verdict))
        # The CPU-bound work of the records this source's version will be shown for, as a batch
        # through the shared ingest pipeline (worker processes for a large batch).
        to_work = [
            record for record, verdict in candidates if not self._shows_elsewhere(source, record, verdict)
        ]
        worked = dict(zip([r.dataset for r in to_work], self._worker.work(to_work, source.iri), strict=True))
        try:
            prepared, origins, rejected, proof_failures = self._prepare(source, candidates, now, worked)
            with self.publisher.writing():
                self.publisher.commit(prepared, bulk=True)
        except StoreError:
            # A local publish of the same dataset got there between settling and commit: settle
            # again under the lock (rare; the lock is then held for one batch's settling).
            with self.publisher.writing():
                prepared, origins, rejected, proof_failures = self._prepare(source, candidates, now, worked)
                self.publisher.commit(prepared, bulk=True)
        # Each source's version in its own graph, written before the ledger notes its digest (a
        # failure here is rewritten at the next run, whose digest comparison finds it changed).
        kept = {origin.dataset for origin in origins}
        self._graphs.replace_source_copies(
            {
                source_graph(source.id, record.dataset): record.content()
                for record, _ in candidates
                if record.dataset in kept
            }
        )
        quarantined.extend(proof_failures)
        with self.ledger.transaction() as db:
            self.ledger.put_origins(db, origins)
            self.ledger.touch_origins(db, source.id, unchanged, now)
            for record, reason in quarantined:
                self.ledger.quarantine(db, source.id, record.dataset, reason, now, record.digest)
            for item, reason in [*rejected, *unreadable]:
                self.ledger.reject(db, run, item, reason)
            self.ledger.mark_seen(db, run.id, [record.dataset for record in records])
            self.ledger.note_page(db, source.id, page_url, [record.dataset for record in records])
            run.count("unchanged", len(unchanged))
            run.count("stored", len(prepared))
            run.count("quarantined", len(quarantined))
            self.ledger.save_run(run, db)

    def _signed_form(
        self, source: Source, record: PageRecord, verdict: Verdict
    ) -> tuple[PageRecord, Verdict]:
        """Judge the record again in its signed form, fetched from the same origin as the source."""
        url = signed_record_url(record.catalog_record)
        if url is None or origin_of(url) != origin_of(source.url):
            return record, verdict
        try:
            fetched = self.fetcher.get(url)
        except FetchError:
            return record, verdict
        signed = read_signed_record(fetched.body, record.dataset) if fetched.status == 200 else None
        if signed is None:
            return record, verdict
        graph, proof = signed
        again = judge(source, self.settings.trusted, record.dataset, graph, proof)
        if again.quarantined:
            return record, again
        # The digest stays the page's: the next run compares what the page serves.
        return PageRecord(
            record.dataset, record.digest, proof, record.catalog_record, given_graph=graph
        ), again

    def _shows_elsewhere(self, source: Source, record: PageRecord, verdict: Verdict) -> bool:
        """Whether the record stays showing another path's version (this one only an origin):
        published here, or another source's version that this one does not outrank."""
        existing = self.publisher.store.current(record_id_for(record.dataset))
        if existing is None or existing.deleted or existing.source == source.iri:
            return False
        shown = self._shown_origin(existing.source, record.dataset)
        return existing.source == LOCAL_SOURCE or not takes_display(verdict.trust, shown)

    def _prepare(
        self,
        source: Source,
        candidates: Sequence[tuple[PageRecord, Verdict]],
        now: str,
        worked: Mapping[str, WorkedDocument],
    ) -> tuple[list[PreparedRecord], list[Origin], list[tuple[str, str]], list[tuple[PageRecord, str]]]:
        prepared: list[PreparedRecord] = []
        origins: list[Origin] = []
        rejected: list[tuple[str, str]] = []
        proof_failures: list[tuple[PageRecord, str]] = []
        for record, verdict in candidates:
            record_id = record_id_for(record.dataset)
            if self._shows_elsewhere(source, record, verdict):
                # Held through another path: one record, one more origin (see _versions).
                origins.append(
                    Origin(source.id, record.dataset, record_id, record.digest, now, verdict.trust)
                )
                continue
            existing = self.publisher.store.current(record_id)
            try:
                item = self._settled(source, record, existing, worked.get(record.dataset))
            except PublishError as error:
                reason = "; ".join(f"{field}: {why}" for field, why in error.errors) or error.detail
                if error.code in _PROOF_ERRORS:
                    proof_failures.append((record, f"publisher proof does not verify: {reason}"))
                else:
                    rejected.append((record.dataset, f"{error.title}: {reason}"))
                continue
            held = item.version.quality.get("quality", {}).get("quarantined")
            if held:  # the pipeline's own checks (a publisher proof in the record) failed it
                proof_failures.append((record, str(held)))
                continue
            row = replace(item.row, facets={**item.row.facets, "trust": (verdict.trust,)})
            prepared.append(replace(item, row=row))
            origins.append(
                Origin(source.id, record.dataset, item.record_id, record.digest, now, verdict.trust)
            )
        return prepared, origins, rejected, proof_failures

    def _settled(
        self, source: Source, record: PageRecord, existing: RecordVersion | None, done: WorkedDocument | None
    ) -> PreparedRecord:
        """The record worked by the ingest pipeline, settled here; a record that links to records
        this node holds (validation must see them) goes through the publisher in this process."""
        item = None
        if done is not None:
            if done.error is not None:
                raise done.error
            item = next((found for found in done.items if found.subject == record.dataset), None)
        if item is not None and item.worked is None and item.error is not None:
            raise item.error
        if item is not None and item.iri_error is not None:
            raise item.iri_error
        store = self.publisher.store
        if (
            item is not None
            and item.worked is not None
            and not any(store.record_for_dataset(target) for target in item.worked.linked)
        ):
            return self.publisher.settle(
                item.worked, owner=None, existing=existing, lenient=True, trust=None, source=source.iri
            )
        return self.publisher.prepare(
            record.graph,
            owner=None,
            record_id=existing.record_id if existing is not None else None,
            extracted=(record.subject, record.graph),
            lenient=True,
            source=source.iri,
            with_dqv=False,  # made when the record is read, as for bulk publishing
        )

    # ---- deletions ----------------------------------------------------------------------------
    def _delete(self, source: Source, run: Run, datasets: Sequence[str]) -> None:
        if not datasets:
            return
        held = self.ledger.origins_of_source(source.id, list(datasets))
        for dataset in datasets:
            origin = held.get(dataset)
            if origin is not None:
                self._drop(source, run, origin)

    def _shown_origin(self, source_iri: str, dataset: str) -> Origin | None:
        """The ledger's origin of the version a record shows (None: not a harvest source's)."""
        shown_id = source_id_of(source_iri)
        if shown_id is None:
            return None
        return self.ledger.origins_of_source(shown_id, [dataset]).get(dataset)

    def _drop(self, source: Source, run: Run, origin: Origin) -> None:
        """This source no longer lists the dataset: its version goes; the record shows another
        source's version if one is left, and is retracted when none is."""
        self._graphs.replace_source_copies({source_graph(source.id, origin.dataset): ""})
        with self.ledger.transaction() as db:
            self.ledger.drop_origin(db, source.id, origin.dataset)
        current = self.publisher.store.current(origin.record_id)
        if current is None or current.deleted or current.source == LOCAL_SOURCE:
            return
        if current.source != source.iri:
            return  # another source's version is shown: it stays
        remaining = self.ledger.origins([origin.record_id]).get(origin.record_id, [])
        heir = successor(remaining)
        if heir is not None and self._show(heir):
            return
        try:
            self.publisher.retract(origin.record_id, owner=None)
            run.count("deleted")
        except PublishError as error:
            _log.warning(
                "could not retract a harvested record",
                extra={"record": origin.record_id, "error": error.detail},
            )

    def _show(self, heir: Origin) -> bool:
        """Make the record show ``heir``'s version, read back from its graph; False when that
        graph is missing (the heir's next harvest, finding its digest cleared, stores it anew)."""
        statements = self._graphs.source_copy(source_graph(heir.source, heir.dataset))
        heir_source = self.ledger.source(heir.source)
        if not statements or heir_source is None:
            with self.ledger.transaction() as db:
                self.ledger.put_origins(db, [replace(heir, digest="")])
            return False
        try:
            graph = parse_rdf("\n".join(statements), N_TRIPLES, heir.dataset)
            subject = URIRef(heir.dataset)
            with self.publisher.writing():
                item = self.publisher.prepare(
                    graph,
                    owner=None,
                    record_id=heir.record_id,
                    extracted=(subject, graph),
                    lenient=True,
                    source=heir_source.iri,
                    with_dqv=False,
                )
                row = replace(item.row, facets={**item.row.facets, "trust": (heir.trust,)})
                self.publisher.commit([replace(item, row=row)])
        except (PublishError, VocabError, StoreError) as error:
            _log.warning(
                "could not show another source's version",
                extra={"record": heir.record_id, "source": heir.source, "error": str(error)},
            )
            return False
        return True

    def _sweep(self, source: Source, run: Run) -> None:
        for origin in self.ledger.unseen(run.id, source.id):
            self._drop(source, run, origin)
        with self.ledger.transaction() as db:
            self.ledger.drop_unseen_quarantine(db, run.id, source.id)
            self.ledger.drop_unvisited_pages(db, run.id, source.id)
            self.ledger.save_run(run, db)

    def _finish(self, source: Source, run: Run) -> Run:
        if run.state is not RunState.INTERRUPTED:
            run.finished = timestamp(self._clock())
        self.ledger.save_run(run)
        if run.state is RunState.DONE:
            self.ledger.set_sync_state(source.id, etag=None, last_modified=None, watermark=run.newest)
        ended = run.state in (RunState.DONE, RunState.UNCHANGED, RunState.FAILED)
        if ended or (run.state is RunState.CAPPED and not run.cursor):
            self.ledger.forget_run_scratch(run.id)  # a capped run with a cursor is carried on
        _log.info(
            "harvest run ended",
            extra={"source": source.id, "state": str(run.state), "counts": run.counts, "error": run.error},
        )
        return run


def origins_json(ledger: Ledger, record_ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """Each record's origins for search hits; a record no source lists was published here."""
    found = ledger.origins(record_ids)
    answer: dict[str, list[dict[str, str]]] = {}
    for record_id in record_ids:
        answer[record_id] = [
            {"source": origin.source, "harvested": origin.harvested, "trust": origin.trust}
            for origin in found.get(record_id, [])
        ] or [{"source": "local", "harvested": "", "trust": TRUST_LOCAL}]
    return answer
