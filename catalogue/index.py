"""The search index: one flattened row per record, ranked full text (SQLite FTS5, BM25) and facets.

Why not SPARQL: ``CONTAINS`` over 100,000 datasets took 0.5 s; FTS5 ranks the same in ~14 ms and
ships with Python (offline). The index is derived data: the store is the system of record and the
index is written in the same publish, inside a transaction that is committed only after the store
accepted the write (see :mod:`catalogue.publish`).

Facets are multi-valued (a dataset has several themes, its distributions several formats), so
each distinct (facet, value) gets an integer id in ``facet_value`` (with its record count, so the
landing page of a million-record catalogue does not scan) and ``record_facet`` pairs ids with
records: counting facets over a hit list groups small integers, not strings.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rdflib import Literal, URIRef
from rdflib.term import Node

from catalogue import ranking
from vocab import authority
from vocab.namespaces import DCAT, DCT, FOAF, HEALTHDCATAP, RDF, SKOS, VCARD

FACETS: tuple[str, ...] = (
    "theme",
    "publisher",
    "format",
    "license",
    "access_rights",
    "spatial",
    "health_category",
    "quality_band",
    "trust",
    "ehds_minimum",
)
# Trust of a record (facet ``trust``): published here, harvested from a source trusted by key, or
# harvested from a source that is not (quarantined records are never indexed).
TRUST_LOCAL = "local"
TRUST_TRUSTED = "trusted"
TRUST_UNTRUSTED = "untrusted"
SORTS: tuple[str, ...] = ("relevance", "modified", "title")

# Facet lists stay readable: the most frequent values of each facet are returned, not all of them.
MAX_FACET_VALUES = 50
# Facet counts over a huge hit list (a common word, a broad filter at a million records) cost time
# in proportion to the hits: past this many, counts are estimated from this many hits and scaled
# to the total, and the answer says so (``facets_exact: false``).
FACET_SAMPLE_LIMIT = 2_000
# Hits are counted up to this many; past it the answer says "more than COUNT_LIMIT"
# (``total_exact: false``, ``total`` = COUNT_LIMIT), as web search engines do, and pages past
# the first COUNT_LIMIT hits are not served (narrow the search instead). Counting every hit of
# a word most records hold would cost time in proportion to the catalogue.
COUNT_LIMIT = 10_000
# Relevance ranking scores at most this many matching records (the first in the full-text index's
# order, plus as many whose title holds every word): the first page then costs the same for ten
# hits or half a million. Below it every hit is ranked (``catalogue.ranking``).
RANK_CANDIDATES = 2_000
# Word rarity (relevance) counts a word's records up to this many; past it a word is "common".
IDF_COUNT_LIMIT = 5_000
# Without text, a filter matching at least one record in this many is "dense": the sort order's
# index is walked and each row checked, instead of collecting every match and sorting them.
DENSE_FILTER_RATIO = 50
# A search query is a few words; longer input is abuse of the ranking function.
MAX_QUERY_TERMS = 32
MAX_QUERY_CHARS = 1000
# A snippet is a line in a result list.
SNIPPET_TOKENS = 24
# Titles and descriptions beyond this size add nothing to ranking but cost index space.
MAX_INDEXED_TEXT_CHARS = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS record (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    dataset TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    keywords TEXT NOT NULL,
    publisher TEXT,
    publisher_name TEXT,
    modified TEXT NOT NULL,
    record_modified TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    quality_total INTEGER,
    quality_maximum INTEGER,
    quality_band TEXT,
    sort_title TEXT NOT NULL,
    texts TEXT NOT NULL DEFAULT '{}',
    facets TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS record_by_change ON record(record_modified, id);
CREATE INDEX IF NOT EXISTS record_by_modified ON record(deleted, modified);
CREATE INDEX IF NOT EXISTS record_by_title ON record(deleted, sort_title);
CREATE TABLE IF NOT EXISTS index_stats (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS facet_value (
    id INTEGER PRIMARY KEY,
    facet TEXT NOT NULL,
    value TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (facet, value)
);
CREATE TABLE IF NOT EXISTS record_facet (
    value_id INTEGER NOT NULL,
    record INTEGER NOT NULL,
    PRIMARY KEY (value_id, record)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_facet_by_record ON record_facet(record, value_id);
"""

# The full-text table. ``facets`` holds a token per facet value of the record (``f`` + the value's
# id): a facet filter is then one more term of the full-text query, and FTS5 intersects the
# posting lists of words and facet values itself instead of checking each hit's facets.
_TEXT_TABLE = """
CREATE VIRTUAL TABLE record_text USING fts5(
    title, description, keywords, facets,
    content='record', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
)"""
_TEXT_COLUMNS = "{title description keywords}"
# Accept-Language lists longer than this are cut (a header is read per request).
MAX_ACCEPTED_LANGUAGES = 16
_WORD = re.compile(r"\w+", re.UNICODE)


class SearchError(ValueError):
    """A search request the index cannot answer; ``field`` names the parameter at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class IndexRow:
    """A record flattened for search: its text, its facet values and what a hit shows."""

    record_id: str
    dataset: str
    kind: str
    title: str
    description: str
    keywords: tuple[str, ...]
    publisher: str | None
    publisher_name: str | None
    modified: str
    record_modified: str
    version: int
    deleted: bool = False
    quality_total: int | None = None
    quality_maximum: int | None = None
    quality_band: str | None = None
    facets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    texts: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Language tag ("" for none) -> (title, description): what a hit shows in that language.
    ``title`` and ``description`` hold every language's text (the display language's first, one
    per line), so every language is searchable in any backend."""


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    sort: str = "relevance"
    page: int = 1
    page_size: int = 20
    languages: tuple[str, ...] = ()
    """The reader's languages, most wanted first (``lang=`` / ``Accept-Language``): hits show the
    title in the first of them the record has."""


@dataclass(frozen=True)
class Hit:
    id: str
    dataset: str
    title: str
    snippet: str
    publisher: str | None
    publisher_name: str | None
    modified: str
    quality: dict[str, Any] | None
    language: str | None = None
    """The language of ``title`` (None when the record's title carries no language tag)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset": self.dataset,
            "title": self.title,
            "language": self.language,
            "snippet": self.snippet,
            "publisher": self.publisher,
            "publisher_name": self.publisher_name,
            "modified": self.modified,
            "quality": self.quality,
        }


@dataclass(frozen=True)
class SearchResult:
    total: int
    page: int
    page_size: int
    hits: list[Hit]
    facets: dict[str, list[dict[str, Any]]]
    facets_exact: bool = True
    total_exact: bool = True
    """False when more hits match than were counted: ``total`` is then a lower bound
    (:data:`COUNT_LIMIT`), shown as "more than"."""
    ranking_exact: bool = True
    """False when relevance ranked the :data:`RANK_CANDIDATES` candidates, not every hit."""

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "total_exact": self.total_exact,
            "page": self.page,
            "page_size": self.page_size,
            "hits": [hit.to_json() for hit in self.hits],
            "facets": self.facets,
            "facets_exact": self.facets_exact,
            "ranking_exact": self.ranking_exact,
        }


@dataclass(frozen=True)
class ChangeRow:
    """A record as the catalogue listing (and harvesters) see it: id, change time, tombstone."""

    record_id: str
    dataset: str
    record_modified: str
    version: int
    deleted: bool


# ---- flattening (pure) ------------------------------------------------------------------------
class Statements(Protocol):
    """What flattening reads of a record: the objects of a subject and predicate (an rdflib graph,
    or the ingest pipeline's read-only view of its compact form)."""

    def objects(self, subject: Node, predicate: URIRef) -> Iterable[Node]: ...


def _best_text(graph: Statements, subject: Node, predicate: URIRef) -> str:
    values = [value for value in graph.objects(subject, predicate) if isinstance(value, Literal)]
    if not values:
        return ""
    for language in ("en", None):
        for value in values:
            if value.language == language:
                return str(value)
    return str(values[0])


def language_order(tags: Iterable[str]) -> list[str]:
    """Languages in display order when the reader states none: English, untagged, then the rest."""
    return sorted(set(tags), key=lambda tag: (tag != "en", tag != "", tag))


def texts_by_language(graph: Statements, subject: Node) -> dict[str, tuple[str, str]]:
    """Every language's title and description of a record (a missing one is the default's)."""
    titles: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for predicate, into in ((DCT.title, titles), (DCT.description, descriptions)):
        for value in sorted(
            (v for v in graph.objects(subject, predicate) if isinstance(v, Literal)), key=str
        ):
            into.setdefault((value.language or "").lower(), str(value))
    order = language_order([*titles, *descriptions])
    if not order:
        return {}
    first = order[0]
    default_title = titles.get(first) or next(iter(titles.values()), "")
    default_description = descriptions.get(first) or next(iter(descriptions.values()), "")
    return {
        tag: (titles.get(tag, default_title), descriptions.get(tag, default_description)) for tag in order
    }


def pick_language(texts: Mapping[str, Any], wanted: Sequence[str]) -> str | None:
    """The first of ``wanted`` (or its primary subtag) that ``texts`` has; None when none does."""
    for tag in wanted:
        tag = tag.lower()
        for candidate in (tag, tag.split("-", 1)[0]):
            if candidate in texts:
                return candidate
        for have in texts:
            if have.split("-", 1)[0] == tag.split("-", 1)[0]:
                return have
    return None


def _all_text(graph: Statements, subject: Node, predicate: URIRef) -> list[str]:
    return sorted({str(value) for value in graph.objects(subject, predicate) if isinstance(value, Literal)})


def _iris(graph: Statements, subjects: Iterable[Node], predicate: URIRef) -> list[str]:
    found: set[str] = set()
    for subject in subjects:
        for value in graph.objects(subject, predicate):
            if isinstance(value, URIRef):
                found.add(str(value))
            elif isinstance(value, Literal) and str(value).strip():
                found.add(str(value).strip())
    return sorted(found)


def _kind(graph: Statements, dataset: URIRef) -> str:
    types = set(graph.objects(dataset, RDF.type))
    if DCAT.DatasetSeries in types:
        return "series"
    if DCAT.Dataset in types:
        return "dataset"
    if DCAT.DataService in types:
        return "service"
    return "dataset"


def _ehds_facet(quality: Mapping[str, Any] | None) -> tuple[str, ...]:
    found = quality.get("ehds_minimum") if quality else None
    if not isinstance(found, Mapping):
        return ()
    return ("complete",) if found.get("complete") else ("incomplete",)


def _display_title(row: IndexRow) -> str:
    return row.title.split("\n", 1)[0]


def display_text(
    texts: Mapping[str, Any], indexed_title: str, wanted: Sequence[str]
) -> tuple[str | None, str, str]:
    """(language, title, description) a hit shows: the reader's language if the record has it."""
    order = list(texts)
    chosen = pick_language(texts, wanted) or (order[0] if order else None)
    if chosen is None:
        return None, indexed_title.split("\n", 1)[0], ""
    title, description = texts[chosen]
    return chosen or None, str(title), str(description)


def accepted_languages(lang: str | None, accept_language: str | None) -> tuple[str, ...]:
    """The reader's languages, most wanted first: ``lang=`` (comma-separated) before ``Accept-Language``."""
    wanted: list[str] = []
    if lang:
        wanted += [tag.strip().lower() for tag in lang.split(",") if tag.strip()]
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:MAX_ACCEPTED_LANGUAGES]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", tag) and quality > 0:
            weighted.append((-quality, position, tag.lower()))
    wanted += [tag for _, _, tag in sorted(weighted)]
    return tuple(dict.fromkeys(wanted))[:MAX_ACCEPTED_LANGUAGES]


def label_facets(facets: Mapping[str, list[dict[str, Any]]], languages: Sequence[str]) -> None:
    """Give each facet value its ``skos:prefLabel`` in the reader's language (in place).

    Values from the shipped tables (themes, licences, formats, access rights, places, health
    categories) are labelled from them; the others keep their code as label.
    """
    known = authority.tables()
    for entries in facets.values():
        for entry in entries:
            value = str(entry.get("value", ""))
            entry["label"] = (
                known.display(value, languages) if known.schemes_of.get(value) else entry.get("code", value)
            )


def facet_code(value: str) -> str:
    """The short code of a facet value: the last segment of an IRI (``HEAL`` for a theme)."""
    trimmed = value.rstrip("/#")
    for separator in ("#", "/", ":"):
        if separator in trimmed:
            trimmed = trimmed.rsplit(separator, 1)[1]
    return trimmed


def flatten_record(
    graph: Statements,
    dataset: URIRef,
    *,
    record_id: str,
    record_modified: str,
    version: int,
    quality: Mapping[str, Any] | None = None,
) -> IndexRow:
    """The index row of one record's subgraph (``graph`` holds only that record)."""
    distributions = list(graph.objects(dataset, DCAT.distribution))
    publishers = list(graph.objects(dataset, DCT.publisher))
    publisher = str(publishers[0]) if publishers and isinstance(publishers[0], URIRef) else None
    publisher_name = None
    if publishers:
        publisher_name = (
            _best_text(graph, publishers[0], FOAF.name)
            or _best_text(graph, publishers[0], SKOS.prefLabel)
            or _best_text(graph, publishers[0], VCARD.fn)
            or None
        )
    modified = _best_text(graph, dataset, DCT.modified) or _best_text(graph, dataset, DCT.issued)
    band = str(quality.get("band")) if quality and quality.get("band") is not None else None
    facets: dict[str, tuple[str, ...]] = {
        "theme": tuple(_iris(graph, [dataset], DCAT.theme)),
        "publisher": (publisher,) if publisher else (),
        "format": tuple(
            sorted(
                set(_iris(graph, distributions, DCT["format"]))
                | set(_iris(graph, distributions, DCAT.mediaType))
            )
        ),
        "license": tuple(
            sorted(set(_iris(graph, distributions, DCT.license)) | set(_iris(graph, [dataset], DCT.license)))
        ),
        "access_rights": tuple(_iris(graph, [dataset], DCT.accessRights)),
        "spatial": tuple(_iris(graph, [dataset], DCT.spatial)),
        "health_category": tuple(_iris(graph, [dataset], HEALTHDCATAP.healthCategory)),
        "quality_band": (band,) if band else (),
        # Health records: whether the 27 minimum elements of Regulation (EU) 2026/2098 are given.
        "ehds_minimum": _ehds_facet(quality),
        "trust": (TRUST_LOCAL,),
    }
    texts = texts_by_language(graph, dataset)
    # Every language is indexed (titles one per line, the display language's first).
    title = "\n".join(dict.fromkeys(t for t, _ in texts.values() if t))
    description = "\n".join(dict.fromkeys(d for _, d in texts.values() if d))
    return IndexRow(
        record_id=record_id,
        dataset=str(dataset),
        kind=_kind(graph, dataset),
        title=title[:MAX_INDEXED_TEXT_CHARS],
        description=description[:MAX_INDEXED_TEXT_CHARS],
        texts={
            tag: (t[:MAX_INDEXED_TEXT_CHARS], d[:MAX_INDEXED_TEXT_CHARS]) for tag, (t, d) in texts.items()
        },
        keywords=tuple(_all_text(graph, dataset, DCAT.keyword)),
        publisher=publisher,
        publisher_name=publisher_name,
        modified=modified or record_modified,
        record_modified=record_modified,
        version=version,
        quality_total=int(quality["total"]) if quality and "total" in quality else None,
        quality_maximum=int(quality["maximum"]) if quality and "maximum" in quality else None,
        quality_band=band,
        facets=facets,
    )


def fts_query(text: str) -> str:
    """User words as an FTS5 query: every word must occur (quoted, so no operator injection)."""
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError("q", f"is longer than {MAX_QUERY_CHARS} characters")
    words = _WORD.findall(text)
    if len(words) > MAX_QUERY_TERMS:
        raise SearchError("q", f"has more than {MAX_QUERY_TERMS} words")
    return " ".join(f'"{word}"' for word in words)


# ---- the index ----------------------------------------------------------------------------------
# 2: facet tokens in the full-text table and a counter of live records (files written earlier
# are upgraded when opened).
_SCHEMA_VERSION = 2


class SearchIndex:
    """SQLite FTS5 + facet tables in one file; one writer, a read connection per thread.

    What a search costs does not grow with its hits (see ``docs/catalogue.md``, "Search at
    scale"): hits are counted up to :data:`COUNT_LIMIT`, relevance ranks at most
    :data:`RANK_CANDIDATES` candidates, facets are counted on a sample of
    :data:`FACET_SAMPLE_LIMIT` hits, and the landing page reads counters kept in the same
    transactions as the rows.
    """

    def __init__(
        self,
        path: Path,
        *,
        facet_sample_limit: int = FACET_SAMPLE_LIMIT,
        count_limit: int = COUNT_LIMIT,
        rank_candidates: int = RANK_CANDIDATES,
    ) -> None:
        self._path = path
        self._facet_sample_limit = facet_sample_limit
        self._count_limit = count_limit
        self._rank_candidates = rank_candidates
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        self._writer.executescript(_SCHEMA)
        self._upgrade()
        self._write_lock = threading.RLock()
        self._facet_ids: dict[tuple[str, str], int] = {}  # see IndexTransaction
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

    def _upgrade(self) -> None:
        """Bring a file written by an earlier version to this schema, once, in one transaction."""
        connection = self._writer
        connection.execute("BEGIN IMMEDIATE")
        try:
            if int(connection.execute("PRAGMA user_version").fetchone()[0]) < _SCHEMA_VERSION:
                columns = {row[1] for row in connection.execute("PRAGMA table_info(record)")}
                for name, default in (("texts", "'{}'"), ("facets", "''")):
                    if name not in columns:
                        connection.execute(
                            f"ALTER TABLE record ADD COLUMN {name} TEXT NOT NULL DEFAULT {default}"
                        )
                connection.execute(
                    "UPDATE record SET facets = coalesce((SELECT group_concat('f' || value_id, ' ') "
                    "FROM record_facet WHERE record = record.rowid), '') WHERE deleted = 0"
                )
                connection.execute("DROP TABLE IF EXISTS record_text")
                connection.execute(_TEXT_TABLE)
                connection.execute(
                    "INSERT INTO record_text(rowid, title, description, keywords, facets) "
                    "SELECT rowid, title, description, keywords, facets FROM record WHERE deleted = 0"
                )
                connection.execute(
                    "INSERT OR REPLACE INTO index_stats(name, value) "
                    "VALUES ('live', (SELECT count(*) FROM record WHERE deleted = 0))"
                )
                connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=10000")
        return connection

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            connection.execute("PRAGMA query_only=1")
            self._local.connection = connection
            self._readers.append(connection)
        return connection

    def close(self) -> None:
        for connection in self._readers:
            connection.close()
        self._writer.close()

    # ---- writing -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[IndexTransaction]:
        """One write transaction: committed when the block ends without error, else rolled back."""
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            transaction = IndexTransaction(self._writer, self._facet_ids)
            try:
                yield transaction
                transaction.count_facets()
            except BaseException:
                self._writer.execute("ROLLBACK")
                # Ids of values first written in this transaction are gone with it (and may be
                # given to other values later): forget every id rather than sort them out.
                self._facet_ids.clear()
                raise
            self._writer.execute("COMMIT")

    # ---- reading -----------------------------------------------------------------------------
    @staticmethod
    def _live(connection: sqlite3.Connection) -> int:
        row = connection.execute("SELECT value FROM index_stats WHERE name = 'live'").fetchone()
        return int(row[0]) if row else 0

    def count(self, *, include_deleted: bool = False) -> int:
        connection = self._reader()
        if not include_deleted:
            return self._live(connection)
        return int(connection.execute("SELECT count(*) FROM record").fetchone()[0])

    def get(self, record_id: str) -> ChangeRow | None:
        row = (
            self._reader()
            .execute(
                "SELECT id, dataset, record_modified, version, deleted FROM record WHERE id = ?", (record_id,)
            )
            .fetchone()
        )
        return None if row is None else ChangeRow(row[0], row[1], row[2], int(row[3]), bool(row[4]))

    def changes(self, *, modified_since: str | None, offset: int, limit: int) -> tuple[int, list[ChangeRow]]:
        """Every record (tombstones too) in change order, for the catalogue listing and harvesters."""
        where, params = ("WHERE record_modified >= ?", [modified_since]) if modified_since else ("", [])
        connection = self._reader()
        total = int(connection.execute(f"SELECT count(*) FROM record {where}", params).fetchone()[0])
        rows = connection.execute(
            f"SELECT id, dataset, record_modified, version, deleted FROM record {where} "
            "ORDER BY record_modified, id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return total, [ChangeRow(r[0], r[1], r[2], int(r[3]), bool(r[4])) for r in rows]

    def search(self, query: SearchQuery) -> SearchResult:
        if query.sort not in SORTS:
            raise SearchError("sort", f"unknown sort {query.sort!r}; use one of {', '.join(SORTS)}")
        unknown = sorted(set(query.filters) - set(FACETS))
        if unknown:
            raise SearchError(unknown[0], f"unknown facet; facets are {', '.join(FACETS)}")
        match = fts_query(query.q) if query.q.strip() else ""
        if query.q.strip() and not match:
            raise SearchError("q", "holds no searchable words")
        connection = self._reader()
        filters: list[tuple[int, list[int]]] = []
        for name in FACETS:
            wanted = [value for value in query.filters.get(name, ()) if value]
            if wanted:
                filters.append(self._resolve(connection, name, wanted))
        live = self._live(connection)
        if any(not ids for _, ids in filters):  # a value no record holds: nothing matches
            check_page(query, 0, True)
            return SearchResult(0, query.page, query.page_size, [], self._group([]))
        terms = [f"{_TEXT_COLUMNS} : ({match})"] if match else []
        terms += ["facets : (" + " OR ".join(f'"f{value}"' for value in ids) + ")" for _, ids in filters]
        expression = " AND ".join(terms)
        # One pass over the full-text index per search: the first hits (up to the count limit)
        # give the total, the relevance candidates and the facet sample.
        matched: list[int] = []
        if not terms:
            total, total_exact = live, True
        elif not match and len(filters) == 1 and len(filters[0][1]) == 1:
            total, total_exact = filters[0][0], True  # the value's maintained count
            matched = self._matching(connection, expression, self._facet_sample_limit)
        else:
            matched = self._matching(connection, expression, self._count_limit + 1)
            total_exact = len(matched) <= self._count_limit
            total = len(matched) if total_exact else self._count_limit
        check_page(query, total, total_exact)
        offset = (query.page - 1) * query.page_size
        ranking_exact = True
        if match and query.sort == "relevance":
            rowids, ranking_exact = self._ranked(
                connection, query, expression, matched, offset, query.page_size
            )
        else:
            dense = not total_exact or total * DENSE_FILTER_RATIO >= live
            rowids = self._ordered(
                connection, expression, filters, query.sort, dense, offset, query.page_size
            )
        hits = self._hits(connection, rowids, terms[0] if match else "", query.languages)
        exact = True
        if not terms:
            facets = self._overall_facets(connection)
        else:
            sample = matched[: self._facet_sample_limit]
            exact = total_exact and len(sample) == total
            facets = self._facets_of(connection, sample, 1.0 if exact else total / max(1, len(sample)))
        return SearchResult(
            total, query.page, query.page_size, hits, facets, exact, total_exact, ranking_exact
        )

    @staticmethod
    def _matching(connection: sqlite3.Connection, expression: str, limit: int) -> list[int]:
        """Rowids of the first ``limit`` hits of a full-text expression, in the index's order."""
        return [
            int(row[0])
            for row in connection.execute(
                "SELECT rowid FROM record_text WHERE record_text MATCH ? LIMIT ?", (expression, limit)
            )
        ]

    def _ranked(
        self,
        connection: sqlite3.Connection,
        query: SearchQuery,
        expression: str,
        matched: Sequence[int],
        offset: int,
        size: int,
    ) -> tuple[list[int], bool]:
        """Rowids of one page by relevance (:mod:`catalogue.ranking`); whether every hit was ranked.

        Candidates are the first :data:`RANK_CANDIDATES` hits in the index's order and as many
        whose title holds every word: a record naming the words in its title (the heaviest
        column) is a candidate however many hits there are.
        """
        limit = self._rank_candidates
        candidates = list(matched[:limit])
        exact = len(matched) <= limit
        if not exact:
            titled = expression.replace(_TEXT_COLUMNS, "{title}", 1)
            known = set(candidates)
            candidates += [rowid for rowid in self._matching(connection, titled, limit) if rowid not in known]
            if offset and offset >= len(candidates):
                raise SearchError(
                    "page",
                    f"relevance ranks the best {len(candidates)} of more hits; for deeper pages sort by "
                    "modified or title, or narrow the search",
                )
        words = list(dict.fromkeys(word.lower() for word in _WORD.findall(query.q)))
        first = candidates[: limit if not exact else len(candidates)]
        low, high = min(first, default=0), max(first, default=0)
        found_in: dict[str, dict[str, set[int]]] = {}
        for column in ("title", "keywords"):
            found_in[column] = {
                word: {
                    int(row[0])
                    for row in connection.execute(
                        "SELECT rowid FROM record_text WHERE record_text MATCH ? AND rowid BETWEEN ? AND ?",
                        (f'{{{column}}} : ("{word}")', low, high),
                    )
                }
                for word in words
            }
        titled_all = set(candidates[len(first) :])  # title matches past the first candidates
        weights = self._idf(connection, words) if len(words) > 1 else {}
        ordered = ranking.rank_by_columns(
            words, weights, candidates, found_in["title"], found_in["keywords"], titled_all
        )
        return ordered[offset : offset + size], exact

    def _idf(self, connection: sqlite3.Connection, words: Sequence[str]) -> dict[str, float]:
        """Each word's inverse document frequency, its documents counted up to a limit.

        Counting every record holding a common word would cost time in proportion to the
        catalogue; past :data:`IDF_COUNT_LIMIT` a word is simply common.
        """
        live = max(1, self._live(connection))
        weights = {}
        for word in words:
            row = connection.execute(
                "SELECT count(*) FROM (SELECT 1 FROM record_text WHERE record_text MATCH ? LIMIT ?)",
                (f'{_TEXT_COLUMNS} : ("{word}")', IDF_COUNT_LIMIT),
            ).fetchone()
            weights[word] = ranking.idf(live, int(row[0]))
        return weights

    def _ordered(
        self,
        connection: sqlite3.Connection,
        expression: str,
        filters: Sequence[tuple[int, list[int]]],
        sort: str,
        dense: bool,
        offset: int,
        size: int,
    ) -> list[int]:
        """Rowids of one page in a stored order (modified, title; relevance without words).

        Few hits: collect them from the full-text index and sort them. Many hits (``dense``):
        walk the order's index and keep the rows that match (facet filters by their table,
        words by the full-text index), which stops after a page's worth instead of sorting
        every hit.
        """
        order = "r.sort_title, r.id" if sort == "title" else "r.modified DESC, r.id"
        params: list[Any] = []
        if not expression:
            where = "r.deleted = 0"
        elif dense:
            conditions = ["r.deleted = 0"]
            for _, ids in filters:
                conditions.append(
                    "EXISTS (SELECT 1 FROM record_facet x WHERE x.record = r.rowid AND x.value_id IN "
                    f"({','.join('?' * len(ids))}))"
                )
                params += ids
            if expression.startswith(_TEXT_COLUMNS):
                conditions.append(
                    "EXISTS (SELECT 1 FROM record_text t WHERE t.record_text MATCH ? AND t.rowid = r.rowid)"
                )
                params.append(expression)
            where = " AND ".join(conditions)
        else:
            sql = (
                "SELECT r.rowid FROM (SELECT rowid AS id FROM record_text WHERE record_text MATCH ?) m "
                f"CROSS JOIN record r ON r.rowid = m.id ORDER BY {order} LIMIT ? OFFSET ?"
            )
            return [int(row[0]) for row in connection.execute(sql, (expression, size, offset))]
        sql = f"SELECT r.rowid FROM record r WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
        return [int(row[0]) for row in connection.execute(sql, [*params, size, offset])]

    def _hits(
        self, connection: sqlite3.Connection, rowids: Sequence[int], expression: str, languages: Sequence[str]
    ) -> list[Hit]:
        """The page's hits, in ``rowids`` order; snippets made for these rows only."""
        if not rowids:
            return []
        found = {
            int(row[0]): row
            for row in connection.execute(
                "SELECT rowid, id, dataset, title, publisher, publisher_name, modified, quality_total, "
                "quality_maximum, quality_band, texts FROM record WHERE rowid IN "
                "(SELECT value FROM json_each(?))",
                (json.dumps(list(rowids)),),
            )
        }
        hits = []
        for rowid in rowids:
            row = found[rowid]
            language, title, description = display_text(json.loads(row[10] or "{}"), row[3], languages)
            snippet = description[:200]
            if expression:
                made = connection.execute(
                    f"SELECT snippet(record_text, 1, '', '', '…', {SNIPPET_TOKENS}) FROM record_text "
                    "WHERE record_text MATCH ? AND rowid = ?",
                    (expression, rowid),
                ).fetchone()
                snippet = made[0] if made else ""
            hits.append(
                Hit(
                    id=row[1],
                    dataset=row[2],
                    title=title,
                    snippet=snippet or "",
                    publisher=row[4],
                    publisher_name=row[5],
                    modified=row[6],
                    quality=None if row[7] is None else {"total": row[7], "maximum": row[8], "band": row[9]},
                    language=language,
                )
            )
        return hits

    def _resolve(
        self, connection: sqlite3.Connection, facet: str, wanted: Sequence[str]
    ) -> tuple[int, list[int]]:
        """Ids of the facet values asked for (full IRIs or short codes) that some record holds,
        and how many records hold them."""
        known = connection.execute(
            "SELECT id, value, count FROM facet_value WHERE facet = ? AND count > 0", (facet,)
        ).fetchall()
        codes = set(wanted)
        found = [
            (int(row[0]), int(row[2])) for row in known if row[1] in codes or facet_code(row[1]) in codes
        ]
        return sum(count for _, count in found), [value_id for value_id, _ in found]

    def _group(self, rows: Iterable[tuple[str, str, int]]) -> dict[str, list[dict[str, Any]]]:
        facets: dict[str, list[dict[str, Any]]] = {name: [] for name in FACETS}
        for name, value, count in rows:
            bucket = facets.get(name)
            if bucket is not None and len(bucket) < MAX_FACET_VALUES and count > 0:
                bucket.append({"value": value, "code": facet_code(value), "count": int(count)})
        return facets

    def _overall_facets(self, connection: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
        rows = connection.execute(
            "SELECT facet, value, count FROM facet_value WHERE count > 0 ORDER BY facet, count DESC, value"
        ).fetchall()
        return self._group(rows)

    def _facets_of(
        self, connection: sqlite3.Connection, sample: Sequence[int], scale: float
    ) -> dict[str, list[dict[str, Any]]]:
        """Facet counts over the sampled hits, scaled to the total when the sample is not all."""
        rows = connection.execute(
            "SELECT v.facet, v.value, c.n FROM ("
            "SELECT f.value_id, count(*) AS n FROM (SELECT value AS id FROM json_each(?)) m "
            "CROSS JOIN record_facet f ON f.record = m.id GROUP BY f.value_id) c "
            "JOIN facet_value v ON v.id = c.value_id ORDER BY v.facet, c.n DESC, v.value",
            (json.dumps(list(sample)),),
        ).fetchall()
        if scale != 1.0:
            rows = [(facet, value, round(count * scale)) for facet, value, count in rows]
        return self._group(rows)


def check_page(query: SearchQuery, total: int, exact: bool) -> None:
    """Refuse a page past the last one (past the counted hits when there are more)."""
    last_page = max(1, -(-total // query.page_size))
    if query.page > last_page:
        if exact:
            raise SearchError(
                "page", f"page {query.page} is past the last page ({last_page}) of {total} hits"
            )
        raise SearchError(
            "page",
            f"page {query.page} is past the first {total} of more hits, which is as deep as results "
            "go; narrow the search",
        )


# Facet value ids the writer remembers (~200 bytes each); values past this are looked up each time.
MAX_KNOWN_FACET_VALUES = 200_000


class IndexTransaction:
    """Writes inside :meth:`SearchIndex.transaction`; counters change with the rows they count.

    ``facet_ids`` remembers the id of each (facet, value) the writer has met: ids never change
    once committed (values are never deleted), so a known value costs no statement per record;
    its count is raised once per value when the transaction ends (:meth:`count_facets`).
    """

    def __init__(
        self, connection: sqlite3.Connection, facet_ids: dict[tuple[str, str], int] | None = None
    ) -> None:
        self._connection = connection
        self._known = {} if facet_ids is None else facet_ids
        self._counted: dict[int, int] = {}

    def _live(self, delta: int) -> None:
        self._connection.execute("UPDATE index_stats SET value = value + ? WHERE name = 'live'", (delta,))

    def _remove(self, record_id: str) -> int | None:
        """Drop a record's text and facets; return its rowid (kept, so ids stay stable)."""
        row = self._connection.execute(
            "SELECT rowid, title, description, keywords, facets, deleted FROM record WHERE id = ?",
            (record_id,),
        ).fetchone()
        if row is None:
            return None
        rowid = int(row[0])
        if not row[5]:
            self._connection.execute(
                "INSERT INTO record_text(record_text, rowid, title, description, keywords, facets) "
                "VALUES ('delete', ?, ?, ?, ?, ?)",
                (rowid, row[1], row[2], row[3], row[4]),
            )
            self._connection.execute(
                "UPDATE facet_value SET count = count - 1 WHERE id IN "
                "(SELECT value_id FROM record_facet WHERE record = ?)",
                (rowid,),
            )
            self._live(-1)
        self._connection.execute("DELETE FROM record_facet WHERE record = ?", (rowid,))
        return rowid

    def _facet_ids(self, row: IndexRow) -> list[int]:
        """Ids of the row's facet values, each value's count raised by one."""
        ids: list[int] = []
        for name, values_ in row.facets.items():
            for value in sorted(set(values_)):
                known = self._known.get((name, value))
                if known is not None:
                    self._counted[known] = self._counted.get(known, 0) + 1
                    ids.append(known)
                    continue
                found = self._connection.execute(
                    "INSERT INTO facet_value(facet, value, count) VALUES (?, ?, 1) "
                    "ON CONFLICT(facet, value) DO UPDATE SET count = count + 1 RETURNING id",
                    (name, value),
                ).fetchone()
                if len(self._known) < MAX_KNOWN_FACET_VALUES:
                    self._known[(name, value)] = int(found[0])
                ids.append(int(found[0]))
        return sorted(set(ids))

    def count_facets(self) -> None:
        """Raise the counts of the known values this transaction's rows hold (before commit)."""
        if self._counted:
            self._connection.executemany(
                "UPDATE facet_value SET count = count + ? WHERE id = ?",
                [(count, value_id) for value_id, count in self._counted.items()],
            )
            self._counted.clear()

    def upsert(self, row: IndexRow) -> None:
        rowid = self._remove(row.record_id)
        keywords = " ".join(row.keywords)
        ids = [] if row.deleted else self._facet_ids(row)
        tokens = " ".join(f"f{value_id}" for value_id in ids)
        values = (
            row.record_id,
            row.dataset,
            row.kind,
            row.title,
            row.description,
            keywords,
            row.publisher,
            row.publisher_name,
            row.modified,
            row.record_modified,
            row.version,
            int(row.deleted),
            row.quality_total,
            row.quality_maximum,
            row.quality_band,
            _display_title(row).casefold(),
            json.dumps({tag: list(pair) for tag, pair in row.texts.items()}, ensure_ascii=False),
            tokens,
        )
        columns = (
            "id, dataset, kind, title, description, keywords, publisher, publisher_name, modified, "
            "record_modified, version, deleted, quality_total, quality_maximum, quality_band, "
            "sort_title, texts, facets"
        )
        if rowid is None:
            cursor = self._connection.execute(
                f"INSERT INTO record ({columns}) VALUES ({','.join('?' * len(values))})", values
            )
            assert cursor.lastrowid is not None
            rowid = int(cursor.lastrowid)
        else:
            assignments = ", ".join(f"{name.strip()} = ?" for name in columns.split(","))
            self._connection.execute(f"UPDATE record SET {assignments} WHERE rowid = ?", (*values, rowid))
        if row.deleted:
            return
        self._connection.execute(
            "INSERT INTO record_text(rowid, title, description, keywords, facets) VALUES (?, ?, ?, ?, ?)",
            (rowid, row.title, row.description, keywords, tokens),
        )
        self._connection.executemany(
            "INSERT INTO record_facet(value_id, record) VALUES (?, ?)",
            [(value_id, rowid) for value_id in ids],
        )
        self._live(1)

    def remove(self, record_id: str) -> None:
        """Forget a record entirely (crash recovery: a row whose record the store does not hold)."""
        self._remove(record_id)
        self._connection.execute("DELETE FROM record WHERE id = ?", (record_id,))

    def tombstone(self, record_id: str, *, record_modified: str, version: int) -> None:
        """Mark a record deleted: gone from search, still listed (as deleted) for harvesters."""
        self._remove(record_id)
        self._connection.execute(
            "UPDATE record SET deleted = 1, record_modified = ?, version = ? WHERE id = ?",
            (record_modified, version, record_id),
        )
