"""The search index in PostgreSQL: full text (tsvector + GIN, language-aware) and facets.

Why: the embedded index is a SQLite file that only its own process writes. Replicas of a catalogue
node (several processes or machines behind one address) share this index instead, so a record
published through any replica is found through every one, at once: each publish commits its
rows in one PostgreSQL transaction, visible to all readers when it commits.

Same contract as :class:`catalogue.index.SearchIndex` (the shared index tests run on both):
every word of ``q`` must occur; filters take facet codes or IRIs; facet counts are exact up to
the sample limit and scaled past it; tombstones leave search but stay in the change listing.

Language-aware: a record's text is indexed once with PostgreSQL's ``simple`` configuration (every
word as written) and once per configured language (Snowball stemming and stop words of English,
German, French… by default): a query word matches when any of them does, so ``hospitals`` finds
``hospital``, ``Krankenhäuser`` finds ``Krankenhaus`` and a stop word of one language is still a
word of another. Diacritics are folded on both sides (as the SQLite index does), in Python, so no
extension is needed. Title words weigh most, then keywords, then the description (``ts_rank``
weights A, B, C).

Concurrency: a record's row is locked for the whole transaction (``SELECT … FOR UPDATE``) and
facet counters are updated in a fixed order, so replicas writing at once neither lose counts nor
deadlock on each other's rows.
"""

from __future__ import annotations

import queue
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from catalogue.index import (
    FACET_SAMPLE_LIMIT,
    FACETS,
    MAX_FACET_VALUES,
    SNIPPET_TOKENS,
    SORTS,
    ChangeRow,
    Hit,
    IndexRow,
    SearchError,
    SearchQuery,
    SearchResult,
    facet_code,
    fts_query,
)

# PostgreSQL text search configurations used besides ``simple``. Each costs index space (about one
# more lexeme list per record); a deployment names the languages of its records.
DEFAULT_LANGUAGES: tuple[str, ...] = ("english", "german", "french", "spanish", "italian", "dutch")
_CONFIG_NAME = re.compile(r"^[a-z_]{1,40}$")
_WORD = re.compile(r"\w+", re.UNICODE)
# Read connections kept open per process (each HTTP worker thread borrows one per request).
DEFAULT_READ_CONNECTIONS = 8
# Serialises schema creation between processes starting at once.
_SCHEMA_LOCK_KEY = 0x5_1_0_15

_SCHEMA = """
CREATE TABLE IF NOT EXISTS search_record (
    rowid BIGSERIAL PRIMARY KEY,
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
    deleted BOOLEAN NOT NULL DEFAULT false,
    quality_total INTEGER,
    quality_maximum INTEGER,
    quality_band TEXT,
    sort_title TEXT NOT NULL,
    document TSVECTOR NOT NULL
);
CREATE INDEX IF NOT EXISTS search_record_text ON search_record USING GIN (document);
CREATE INDEX IF NOT EXISTS search_record_by_change
    ON search_record (record_modified COLLATE "C", id COLLATE "C");
CREATE INDEX IF NOT EXISTS search_record_by_modified ON search_record (deleted, modified COLLATE "C");
CREATE INDEX IF NOT EXISTS search_record_by_title ON search_record (deleted, sort_title COLLATE "C");
CREATE TABLE IF NOT EXISTS search_facet_value (
    id BIGSERIAL PRIMARY KEY,
    facet TEXT NOT NULL,
    value TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (facet, value)
);
CREATE TABLE IF NOT EXISTS search_record_facet (
    value_id BIGINT NOT NULL,
    record BIGINT NOT NULL,
    PRIMARY KEY (value_id, record)
);
CREATE INDEX IF NOT EXISTS search_record_facet_by_record ON search_record_facet (record, value_id);
"""


def fold(text: str) -> str:
    """Text without diacritics (``Zürich`` -> ``Zurich``), as SQLite's ``remove_diacritics``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


class PostgresIndex:
    """The search index in a PostgreSQL database (``postgresql://user@host:port/db``)."""

    def __init__(
        self,
        url: str,
        *,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        facet_sample_limit: int = FACET_SAMPLE_LIMIT,
        read_connections: int = DEFAULT_READ_CONNECTIONS,
    ) -> None:
        for name in languages:
            if not _CONFIG_NAME.match(name):
                raise ValueError(f"{name!r} is not a text search configuration name")
        self._configs = ("simple", *[name for name in languages if name != "simple"])
        self._facet_sample_limit = facet_sample_limit
        self._url = url
        self._writer = psycopg.connect(url, autocommit=True)
        with self._writer.transaction():
            self._writer.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            self._writer.execute(_SCHEMA)
            known = {
                row[0]
                for row in self._writer.execute(
                    "SELECT cfgname FROM pg_ts_config WHERE cfgname = ANY(%s)", (list(self._configs),)
                )
            }
        missing = sorted(set(self._configs) - known)
        if missing:
            self._writer.close()
            raise ValueError(f"PostgreSQL has no text search configuration {', '.join(missing)}")
        self._write_lock = threading.RLock()
        self._readers: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._reader_slots = threading.BoundedSemaphore(read_connections)
        self._all_readers: list[psycopg.Connection[Any]] = []
        self._document_sql = self._document_expression()

    def _document_expression(self) -> str:
        """SQL of a record's tsvector from parameters %(title)s, %(keywords)s, %(description)s."""
        parts = []
        for weight, name in (("A", "title"), ("B", "keywords"), ("C", "description")):
            for config in self._configs:
                parts.append(f"setweight(to_tsvector('{config}', %({name})s), '{weight}')")
        return " || ".join(parts)

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        self._reader_slots.acquire()
        try:
            try:
                connection = self._readers.get_nowait()
            except queue.Empty:
                connection = psycopg.connect(self._url, autocommit=True)
                self._all_readers.append(connection)
            try:
                yield connection
            finally:
                if connection.closed or connection.broken:
                    self._all_readers.remove(connection)
                else:
                    self._readers.put(connection)
        finally:
            self._reader_slots.release()

    def close(self) -> None:
        for connection in self._all_readers:
            connection.close()
        self._writer.close()

    # ---- writing -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[PostgresIndexTransaction]:
        """One write transaction: committed when the block ends without error, else rolled back."""
        with self._write_lock:
            if self._writer.closed or self._writer.broken:  # the server restarted: reconnect
                self._writer = psycopg.connect(self._url, autocommit=True)
            with self._writer.transaction():
                yield PostgresIndexTransaction(self._writer, self._document_sql)

    # ---- reading -----------------------------------------------------------------------------
    def count(self, *, include_deleted: bool = False) -> int:
        sql = "SELECT count(*) FROM search_record" + ("" if include_deleted else " WHERE NOT deleted")
        with self._read() as connection:
            row = connection.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def get(self, record_id: str) -> ChangeRow | None:
        with self._read() as connection:
            row = connection.execute(
                "SELECT id, dataset, record_modified, version, deleted FROM search_record WHERE id = %s",
                (record_id,),
            ).fetchone()
        return None if row is None else ChangeRow(row[0], row[1], row[2], int(row[3]), bool(row[4]))

    def changes(self, *, modified_since: str | None, offset: int, limit: int) -> tuple[int, list[ChangeRow]]:
        where, params = ("WHERE record_modified >= %s", [modified_since]) if modified_since else ("", [])
        with self._read() as connection:
            total_row = connection.execute(
                f"SELECT count(*) FROM search_record {where}",
                params,
            ).fetchone()
            rows = connection.execute(
                f"SELECT id, dataset, record_modified, version, deleted FROM search_record {where} "
                'ORDER BY record_modified COLLATE "C", id COLLATE "C" LIMIT %s OFFSET %s',
                [*params, limit, offset],
            ).fetchall()
        total = int(total_row[0]) if total_row else 0
        return total, [ChangeRow(r[0], r[1], r[2], int(r[3]), bool(r[4])) for r in rows]

    def _tsquery(self, connection: psycopg.Connection[Any], words: Sequence[str]) -> str:
        """Every word must match, in any configuration, as one ``tsquery`` text.

        PostgreSQL makes each word's lexemes (bound parameters: no query syntax gets through);
        alternatives that stem alike are merged, which also keeps the planner's estimate of
        the hits honest (seven copies of one lexeme looked seven times as common, and made it
        scan the table instead of the GIN index).
        """
        columns = ", ".join(
            f"plainto_tsquery('{config}', %s)::text" for _ in words for config in self._configs
        )
        params = [word for word in words for _ in self._configs]
        row = connection.execute(f"SELECT {columns}", params).fetchone()
        values = list(row) if row else []
        clauses = []
        size = len(self._configs)
        for position in range(len(words)):
            lexemes = values[position * size : (position + 1) * size]
            alternatives = sorted({value for value in lexemes if value})
            if alternatives:
                clauses.append("(" + " | ".join(f"({value})" for value in alternatives) + ")")
        return " & ".join(clauses)

    def search(self, query: SearchQuery) -> SearchResult:
        if query.sort not in SORTS:
            raise SearchError("sort", f"unknown sort {query.sort!r}; use one of {', '.join(SORTS)}")
        unknown = sorted(set(query.filters) - set(FACETS))
        if unknown:
            raise SearchError(unknown[0], f"unknown facet; facets are {', '.join(FACETS)}")
        text = query.q.strip()
        words: list[str] = []
        if text:
            fts_query(query.q)  # the same limits on length and word count as the embedded index
            words = [fold(word).lower() for word in _WORD.findall(query.q)]
            if not words:
                raise SearchError("q", "holds no searchable words")
        with self._read() as connection:
            return self._search(connection, query, words)

    def _search(
        self, connection: psycopg.Connection[Any], query: SearchQuery, words: Sequence[str]
    ) -> SearchResult:
        conditions = ["NOT r.deleted"]
        params: list[Any] = []
        asked = {name: [value for value in query.filters.get(name, ()) if value] for name in FACETS}
        asked = {name: wanted for name, wanted in asked.items() if wanted}
        filtered = bool(asked)
        resolved = self._resolve(connection, asked) if asked else {}
        for name in FACETS:
            if name in asked:
                ids = resolved[name]
                conditions.append(
                    "EXISTS (SELECT 1 FROM search_record_facet x WHERE x.record = r.rowid "
                    "AND x.value_id = ANY(%s))"
                )
                params.append(ids)
        source = "search_record r"
        source_params: list[Any] = []
        if words:
            source = "search_record r CROSS JOIN (SELECT %s::tsquery AS q) query"
            source_params = [self._tsquery(connection, words)]
            conditions.insert(0, "r.document @@ query.q")
        where = " AND ".join(conditions)
        all_params = [*source_params, *params]
        total_row = connection.execute(
            f"SELECT count(*) FROM {source} WHERE {where}",
            all_params,
        ).fetchone()
        total = int(total_row[0]) if total_row else 0
        last_page = max(1, -(-total // query.page_size))
        if query.page > last_page:
            raise SearchError(
                "page", f"page {query.page} is past the last page ({last_page}) of {total} hits"
            )
        snippet_params: list[Any] = []
        if words:
            snippet = (
                "ts_headline('simple', r.description, plainto_tsquery('simple', %s), "
                f"'MaxWords={SNIPPET_TOKENS}, MinWords={SNIPPET_TOKENS // 2}, "
                "StartSel=\"\", StopSel=\"\", FragmentDelimiter=\"…\"')"
            )
            snippet_params = [" ".join(words)]
        else:
            snippet = "substr(r.description, 1, 200)"
        order = {
            "relevance": "ts_rank(r.document, query.q) DESC, r.id COLLATE \"C\""
            if words
            else 'r.modified COLLATE "C" DESC, r.id COLLATE "C"',
            "modified": 'r.modified COLLATE "C" DESC, r.id COLLATE "C"',
            "title": 'r.sort_title COLLATE "C", r.id COLLATE "C"',
        }[query.sort]
        # The page is chosen first, then snippets are made for its rows only (ts_headline re-reads
        # the text and is the dearest part of a hit).
        page_sql = snippet.replace("r.description", "p.description")
        rows = connection.execute(
            f"SELECT p.id, p.dataset, p.title, {page_sql}, p.publisher, p.publisher_name, p.modified, "
            "p.quality_total, p.quality_maximum, p.quality_band FROM ("
            f"SELECT r.*, row_number() OVER (ORDER BY {order}) AS position FROM {source} WHERE {where} "
            f"ORDER BY {order} LIMIT %s OFFSET %s) p ORDER BY p.position",
            [*snippet_params, *all_params, query.page_size, (query.page - 1) * query.page_size],
        ).fetchall()
        hits = [
            Hit(
                id=row[0],
                dataset=row[1],
                title=row[2].split("\n", 1)[0],  # every language is indexed; the first is shown
                snippet=row[3] or "",
                publisher=row[4],
                publisher_name=row[5],
                modified=row[6],
                quality=None if row[7] is None else {"total": row[7], "maximum": row[8], "band": row[9]},
            )
            for row in rows
        ]
        exact = True
        if not filtered and not words:
            facets = self._overall_facets(connection)
        else:
            limit = self._facet_sample_limit
            exact = total <= limit
            matching = f"SELECT r.rowid AS id FROM {source} WHERE {where} LIMIT {int(limit)}"
            facets = self._facets_of(connection, matching, all_params, 1.0 if exact else total / limit)
        return SearchResult(total, query.page, query.page_size, hits, facets, exact)

    def _resolve(
        self, connection: psycopg.Connection[Any], asked: dict[str, list[str]]
    ) -> dict[str, list[int]]:
        """Ids of the facet values asked for (full IRIs or short codes), per facet; [-1] for none.

        One query for every filtered facet: a search's round trips are most of its time.
        """
        known = connection.execute(
            "SELECT facet, id, value FROM search_facet_value WHERE facet = ANY(%s) AND count > 0",
            (list(asked),),
        ).fetchall()
        found: dict[str, list[int]] = {name: [] for name in asked}
        for facet, value_id, value in known:
            codes = asked[facet]
            if value in codes or facet_code(value) in codes:
                found[facet].append(int(value_id))
        return {name: ids or [-1] for name, ids in found.items()}

    @staticmethod
    def _group(rows: Iterable[tuple[str, str, int]]) -> dict[str, list[dict[str, Any]]]:
        facets: dict[str, list[dict[str, Any]]] = {name: [] for name in FACETS}
        for name, value, count in rows:
            bucket = facets.get(name)
            if bucket is not None and len(bucket) < MAX_FACET_VALUES and count > 0:
                bucket.append({"value": value, "code": facet_code(value), "count": int(count)})
        return facets

    def _overall_facets(self, connection: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
        rows = connection.execute(
            "SELECT facet, value, count FROM search_facet_value WHERE count > 0 "
            'ORDER BY facet, count DESC, value COLLATE "C"'
        ).fetchall()
        return self._group(rows)

    def _facets_of(
        self, connection: psycopg.Connection[Any], matching: str, params: Sequence[Any], scale: float
    ) -> dict[str, list[dict[str, Any]]]:
        rows = connection.execute(
            "SELECT v.facet, v.value, c.n FROM ("
            f"SELECT f.value_id, count(*) AS n FROM ({matching}) m "
            "JOIN search_record_facet f ON f.record = m.id GROUP BY f.value_id) c "
            'JOIN search_facet_value v ON v.id = c.value_id ORDER BY v.facet, c.n DESC, v.value COLLATE "C"',
            list(params),
        ).fetchall()
        if scale != 1.0:
            rows = [(facet, value, round(count * scale)) for facet, value, count in rows]
        return self._group(rows)


class PostgresIndexTransaction:
    """Writes inside :meth:`PostgresIndex.transaction`."""

    def __init__(self, connection: psycopg.Connection[Any], document_sql: str) -> None:
        self._connection = connection
        self._document_sql = document_sql

    def _lock(self, record_id: str) -> tuple[int, bool] | None:
        row = self._connection.execute(
            "SELECT rowid, deleted FROM search_record WHERE id = %s FOR UPDATE", (record_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    def _remove(self, rowid: int, deleted: bool) -> None:
        """Drop a record's facets (its text goes with the row's next update)."""
        if not deleted:
            self._connection.execute(
                "UPDATE search_facet_value SET count = count - 1 WHERE id IN "
                "(SELECT value_id FROM search_record_facet WHERE record = %s)",
                (rowid,),
            )
        self._connection.execute("DELETE FROM search_record_facet WHERE record = %s", (rowid,))

    def upsert(self, row: IndexRow) -> None:
        keywords = " ".join(row.keywords)
        values: dict[str, Any] = {
            "id": row.record_id,
            "dataset": row.dataset,
            "kind": row.kind,
            "title": row.title,
            "description": row.description,
            "keywords": keywords,
            "publisher": row.publisher,
            "publisher_name": row.publisher_name,
            "modified": row.modified,
            "record_modified": row.record_modified,
            "version": row.version,
            "deleted": row.deleted,
            "quality_total": row.quality_total,
            "quality_maximum": row.quality_maximum,
            "quality_band": row.quality_band,
            "sort_title": row.title.split("\n", 1)[0].casefold(),
        }
        text = {
            "title": fold(row.title),
            "keywords": fold(keywords),
            "description": fold(row.description),
        }
        columns = list(values)
        assignments = ", ".join(f"{name} = %({name})s" for name in columns if name != "id")
        parameters = {**values, **{f"text_{name}": value for name, value in text.items()}}
        document = self._document_sql
        for name in text:
            document = document.replace(f"%({name})s", f"%(text_{name})s")
        if row.deleted:
            document = "''::tsvector"
        while True:
            held = self._lock(row.record_id)
            if held is not None:
                rowid = held[0]
                self._remove(rowid, held[1])
                self._connection.execute(
                    f"UPDATE search_record SET {assignments}, document = {document} "
                    "WHERE rowid = %(rowid)s",
                    {**parameters, "rowid": rowid},
                )
                break
            inserted = self._connection.execute(
                f"INSERT INTO search_record ({', '.join(columns)}, document) "
                f"VALUES ({', '.join(f'%({name})s' for name in columns)}, {document}) "
                "ON CONFLICT (id) DO NOTHING RETURNING rowid",
                parameters,
            ).fetchone()
            if inserted is not None:
                rowid = int(inserted[0])
                break
            # Another replica inserted this record meanwhile: lock its row and update it.
        if row.deleted:
            return
        pairs = sorted({(name, value) for name, values_ in row.facets.items() for value in values_})
        ids: list[tuple[int, int]] = []
        for name, value in pairs:  # a fixed order: concurrent writers take counter locks alike
            found = self._connection.execute(
                "INSERT INTO search_facet_value(facet, value, count) VALUES (%s, %s, 1) "
                "ON CONFLICT (facet, value) DO UPDATE SET count = search_facet_value.count + 1 "
                "RETURNING id",
                (name, value),
            ).fetchone()
            assert found is not None
            ids.append((int(found[0]), rowid))
        if ids:
            with self._connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO search_record_facet(value_id, record) VALUES (%s, %s)", ids
                )

    def tombstone(self, record_id: str, *, record_modified: str, version: int) -> None:
        """Mark a record deleted: gone from search, still listed (as deleted) for harvesters."""
        held = self._lock(record_id)
        if held is None:
            return
        self._remove(held[0], held[1])
        self._connection.execute(
            "UPDATE search_record SET deleted = true, document = ''::tsvector, record_modified = %s, "
            "version = %s WHERE rowid = %s",
            (record_modified, version, held[0]),
        )
