"""The search index in PostgreSQL: full text (tsvector + GIN, language-aware) and facets.

Why: the embedded index is a SQLite file that only its own process writes. Replicas of a catalogue
node (several processes or machines behind one address) share this index instead, so a record
published through any replica is found through every one, at once: each publish commits its
rows in one PostgreSQL transaction, visible to all readers when it commits.

Same contract as :class:`catalogue.index.SearchIndex` (the shared index tests run on both):
every word of ``q`` must occur; filters take facet codes or IRIs; hits are counted up to
:data:`catalogue.index.COUNT_LIMIT` ("more than" past it), relevance ranks at most
:data:`catalogue.index.RANK_CANDIDATES` candidates, facet counts are exact up to the sample limit
and scaled past it; tombstones leave search but stay in the change listing; hits show the title in
the reader's language.

Facet filters are array overlaps on ``facet_ids`` (GIN-indexed): PostgreSQL intersects them with
the full-text match as bitmaps instead of checking each hit's facets row by row.

Language-aware: each language's title and description of a record is indexed with PostgreSQL's
``simple`` configuration (every word as written) and with that language's Snowball configuration
(stemming, stop words) when PostgreSQL has one; text without a language tag, and keywords, with
``simple`` and the configured default languages. A query word matches when any configuration's
lexemes do, so ``hospitals`` finds ``hospital``, ``Krankenhäuser`` finds ``Krankenhaus`` and a stop
word of one language is still a word of another. Diacritics are folded on both sides (as the
SQLite index does), in Python, so no extension is needed. Title words weigh most, then keywords,
then the description (``ts_rank`` weights A, B, C).

Concurrency: a record's row is locked for the whole transaction (``SELECT … FOR UPDATE``) and
facet counters are updated in a fixed order, so replicas writing at once neither lose counts nor
deadlock on each other's rows.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from catalogue.index import (
    COUNT_LIMIT,
    FACET_SAMPLE_LIMIT,
    FACETS,
    MAX_FACET_VALUES,
    RANK_CANDIDATES,
    SNIPPET_TOKENS,
    SORTS,
    ChangeRow,
    Hit,
    IndexRow,
    SearchError,
    SearchQuery,
    SearchResult,
    check_page,
    display_text,
    facet_code,
    fts_query,
)

# PostgreSQL text search configurations used besides ``simple``. Each costs index space (about one
# more lexeme list per record); a deployment names the languages of its records.
DEFAULT_LANGUAGES: tuple[str, ...] = ("english", "german", "french", "spanish", "italian", "dutch")
# A record's language (primary subtag) -> PostgreSQL's configuration for it (those PostgreSQL 15
# ships; a language without one is indexed with ``simple`` and the defaults).
LANGUAGE_CONFIGS: dict[str, str] = {
    "ar": "arabic", "ca": "catalan", "da": "danish", "de": "german", "el": "greek", "en": "english",
    "es": "spanish", "eu": "basque", "fi": "finnish", "fr": "french", "ga": "irish", "hu": "hungarian",
    "hy": "armenian", "id": "indonesian", "it": "italian", "lt": "lithuanian", "nb": "norwegian",
    "nl": "dutch", "nn": "norwegian", "no": "norwegian", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "sr": "serbian", "sv": "swedish", "tr": "turkish",
}  # fmt: skip
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
ALTER TABLE search_record ADD COLUMN IF NOT EXISTS texts JSONB NOT NULL DEFAULT '{}';
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
CREATE TABLE IF NOT EXISTS search_stats (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
"""
# Facet value ids on the row (an index written before them is filled from search_record_facet,
# which is no longer written), and the live-record counter.
_UPGRADE = """
ALTER TABLE search_record ADD COLUMN facet_ids BIGINT[] NOT NULL DEFAULT '{}';
UPDATE search_record r SET facet_ids = f.ids FROM (
    SELECT record, array_agg(value_id ORDER BY value_id) AS ids FROM search_record_facet GROUP BY record
) f WHERE f.record = r.rowid AND NOT r.deleted;
CREATE INDEX search_record_by_facets ON search_record USING GIN (facet_ids);
INSERT INTO search_stats (name, value)
    SELECT 'live', count(*) FROM search_record WHERE NOT deleted
    ON CONFLICT (name) DO UPDATE SET value = excluded.value;
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
        count_limit: int = COUNT_LIMIT,
        rank_candidates: int = RANK_CANDIDATES,
        read_connections: int = DEFAULT_READ_CONNECTIONS,
    ) -> None:
        for name in languages:
            if not _CONFIG_NAME.match(name):
                raise ValueError(f"{name!r} is not a text search configuration name")
        self._defaults = ("simple", *[name for name in languages if name != "simple"])
        self._facet_sample_limit = facet_sample_limit
        self._count_limit = count_limit
        self._rank_candidates = rank_candidates
        self._url = url
        self._writer = psycopg.connect(url, autocommit=True)
        with self._writer.transaction():
            self._writer.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            self._writer.execute(_SCHEMA)
            upgraded = self._writer.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'search_record' AND column_name = 'facet_ids'"
            ).fetchone()
            if upgraded is None:
                self._writer.execute(_UPGRADE)
            known = {
                row[0]
                for row in self._writer.execute(
                    "SELECT cfgname FROM pg_ts_config WHERE cfgname = ANY(%s)",
                    (list({*self._defaults, *LANGUAGE_CONFIGS.values()}),),
                )
            }
        missing = sorted(set(self._defaults) - known)
        if missing:
            self._writer.close()
            raise ValueError(f"PostgreSQL has no text search configuration {', '.join(missing)}")
        self._languages = {tag: name for tag, name in LANGUAGE_CONFIGS.items() if name in known}
        # A query word is looked up in every configuration a record's text may have been indexed with.
        self._configs = tuple(dict.fromkeys([*self._defaults, *sorted(set(self._languages.values()))]))
        self._write_lock = threading.RLock()
        self._readers: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._reader_slots = threading.BoundedSemaphore(read_connections)
        self._all_readers: list[psycopg.Connection[Any]] = []

    def document(self, row: IndexRow) -> tuple[str, list[str]]:
        """SQL (and its parameters) of a record's tsvector.

        Every word as written (``simple``) over all languages' text, as the embedded index has it;
        then each language's title and description stemmed with that language's configuration
        (text without a known language, and keywords, with the configured default languages).
        """
        keywords = fold(" ".join(row.keywords))
        parts: list[tuple[str, str, str]] = [  # (configuration, weight, text)
            ("simple", "A", fold(row.title)),
            ("simple", "B", keywords),
            ("simple", "C", fold(row.description)),
        ]
        stemmers = [name for name in self._defaults if name != "simple"]
        if row.texts:
            used: set[str] = set()
            for tag, (title, description) in row.texts.items():
                config = self._languages.get(tag.split("-", 1)[0])
                configs = [config] if config else stemmers
                used.update(configs)
                parts += [(name, "A", fold(title)) for name in configs]
                parts += [(name, "C", fold(description)) for name in configs]
            parts += [(name, "B", keywords) for name in sorted(used)]
        else:
            for weight, text in (("A", row.title), ("B", " ".join(row.keywords)), ("C", row.description)):
                parts += [(name, weight, fold(text)) for name in stemmers]
        sql = " || ".join(f"setweight(to_tsvector('{name}', %s), '{weight}')" for name, weight, _ in parts)
        return sql, [text for _, _, text in parts]

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
        """One write transaction: committed when the block ends without error, else rolled back.

        The live-record counter is updated last, once per transaction, so concurrent writers
        take it after every facet counter and wait on it for the shortest time.
        """
        with self._write_lock:
            if self._writer.closed or self._writer.broken:  # the server restarted: reconnect
                self._writer = psycopg.connect(self._url, autocommit=True)
            with self._writer.transaction():
                writer = PostgresIndexTransaction(self._writer, self.document)
                yield writer
                if writer.live_delta:
                    self._writer.execute(
                        "INSERT INTO search_stats (name, value) VALUES ('live', %s) ON CONFLICT (name) "
                        "DO UPDATE SET value = search_stats.value + excluded.value",
                        (writer.live_delta,),
                    )

    # ---- reading -----------------------------------------------------------------------------
    def count(self, *, include_deleted: bool = False) -> int:
        with self._read() as connection:
            if include_deleted:
                row = connection.execute("SELECT count(*) FROM search_record").fetchone()
            else:
                row = connection.execute("SELECT value FROM search_stats WHERE name = 'live'").fetchone()
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
        asked = {name: [value for value in query.filters.get(name, ()) if value] for name in FACETS}
        asked = {name: wanted for name, wanted in asked.items() if wanted}
        resolved = self._resolve(connection, asked) if asked else {}
        if any(not ids for ids, _ in resolved.values()):  # a value no record holds: nothing matches
            check_page(query, 0, True)
            return SearchResult(0, query.page, query.page_size, [], self._group([]))
        conditions = ["NOT r.deleted"]
        params: list[Any] = []
        for name in FACETS:
            if name in asked:
                conditions.append("r.facet_ids && %s::bigint[]")
                params.append(resolved[name][0])
        tsquery = ""
        if words:
            tsquery = self._tsquery(connection, words)
            conditions.append("r.document @@ %s::tsquery")
            params.append(tsquery)
        where = " AND ".join(conditions)
        if len(conditions) == 1:
            row = connection.execute("SELECT value FROM search_stats WHERE name = 'live'").fetchone()
            total, total_exact = (int(row[0]) if row else 0), True
        elif not words and len(asked) == 1 and len(next(iter(resolved.values()))[0]) == 1:
            total, total_exact = next(iter(resolved.values()))[1], True  # the value's maintained count
        else:
            row = connection.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM search_record r WHERE {where} LIMIT %s) c",
                [*params, self._count_limit + 1],
            ).fetchone()
            found = int(row[0]) if row else 0
            total, total_exact = (self._count_limit, False) if found > self._count_limit else (found, True)
        check_page(query, total, total_exact)
        offset = (query.page - 1) * query.page_size
        ranking_exact = True
        if words and query.sort == "relevance":
            rowids, ranking_exact = self._ranked(connection, where, params, tsquery, offset, query.page_size)
        else:
            order = (
                'r.sort_title COLLATE "C", r.id COLLATE "C"'
                if query.sort == "title"
                else 'r.modified COLLATE "C" DESC, r.id COLLATE "C"'
            )
            rowids = [
                int(row[0])
                for row in connection.execute(
                    f"SELECT r.rowid FROM search_record r WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s",
                    [*params, query.page_size, offset],
                )
            ]
        hits = self._hits(connection, rowids, words, query.languages)
        exact = True
        if len(conditions) == 1:
            facets = self._overall_facets(connection)
        else:
            limit = self._facet_sample_limit
            exact = total_exact and total <= limit
            matching = f"SELECT r.facet_ids FROM search_record r WHERE {where} LIMIT {int(limit)}"
            facets = self._facets_of(connection, matching, params, 1.0 if exact else total / limit)
        return SearchResult(
            total, query.page, query.page_size, hits, facets, exact, total_exact, ranking_exact
        )

    def _ranked(
        self,
        connection: psycopg.Connection[Any],
        where: str,
        params: Sequence[Any],
        tsquery: str,
        offset: int,
        size: int,
    ) -> tuple[list[int], bool]:
        """Rowids of one page by ``ts_rank`` among the candidates; whether every hit was one.

        Candidates: the first :data:`RANK_CANDIDATES` hits in the table's order, and as many
        whose title (weight A) holds every word, as the embedded index does.
        """
        limit = self._rank_candidates
        rank = "ts_rank(r.document, %s::tsquery)"
        scored = {
            int(row[0]): (float(row[1]), str(row[2]))
            for row in connection.execute(
                f"SELECT r.rowid, {rank}, r.id FROM search_record r WHERE {where} LIMIT %s",
                [tsquery, *params, limit],
            )
        }
        exact = len(scored) < limit
        if not exact:
            titles = re.sub(r"('(?:[^']|'')*')(:\*)?", r"\1:A", tsquery)
            title_params = [titles if value == tsquery else value for value in params]
            scored.update(
                (int(row[0]), (float(row[1]), str(row[2])))
                for row in connection.execute(
                    f"SELECT r.rowid, {rank}, r.id FROM search_record r WHERE {where} LIMIT %s",
                    [tsquery, *title_params, limit],
                )
            )
            if offset and offset >= len(scored):
                raise SearchError(
                    "page",
                    f"relevance ranks the best {len(scored)} of more hits; for deeper pages sort by "
                    "modified or title, or narrow the search",
                )
        ordered = sorted(scored.items(), key=lambda item: (-item[1][0], item[1][1].encode()))
        return [rowid for rowid, _ in ordered[offset : offset + size]], exact

    def _hits(
        self,
        connection: psycopg.Connection[Any],
        rowids: Sequence[int],
        words: Sequence[str],
        languages: Sequence[str],
    ) -> list[Hit]:
        """The page's hits in ``rowids`` order; snippets (``ts_headline``, the dearest part) for them only."""
        if not rowids:
            return []
        if words:
            snippet = (
                "ts_headline('simple', description, plainto_tsquery('simple', %s), "
                f"'MaxWords={SNIPPET_TOKENS}, MinWords={SNIPPET_TOKENS // 2}, "
                'StartSel="", StopSel="", FragmentDelimiter="…"\')'
            )
            snippet_params: list[Any] = [" ".join(words)]
        else:
            snippet, snippet_params = "''", []
        found = {
            int(row[0]): row
            for row in connection.execute(
                f"SELECT rowid, id, dataset, title, {snippet}, publisher, publisher_name, modified, "
                "quality_total, quality_maximum, quality_band, texts FROM search_record "
                "WHERE rowid = ANY(%s)",
                [*snippet_params, list(rowids)],
            )
        }
        hits = []
        for rowid in rowids:
            row = found[rowid]
            language, title, description = display_text(row[11] or {}, row[3], languages)
            hits.append(
                Hit(
                    id=row[1],
                    dataset=row[2],
                    title=title,
                    snippet=(row[4] if words else description[:200]) or "",
                    publisher=row[5],
                    publisher_name=row[6],
                    modified=row[7],
                    quality=None if row[8] is None else {"total": row[8], "maximum": row[9], "band": row[10]},
                    language=language,
                )
            )
        return hits

    def _resolve(
        self, connection: psycopg.Connection[Any], asked: dict[str, list[str]]
    ) -> dict[str, tuple[list[int], int]]:
        """Ids of the facet values asked for (full IRIs or short codes) that some record holds,
        and how many records hold them, per facet.

        One query for every filtered facet: a search's round trips are most of its time.
        """
        known = connection.execute(
            "SELECT facet, id, value, count FROM search_facet_value WHERE facet = ANY(%s) AND count > 0",
            (list(asked),),
        ).fetchall()
        found: dict[str, tuple[list[int], int]] = {name: ([], 0) for name in asked}
        for facet, value_id, value, count in known:
            codes = asked[facet]
            if value in codes or facet_code(value) in codes:
                ids, held = found[facet]
                found[facet] = ([*ids, int(value_id)], held + int(count))
        return found

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
            f"SELECT value_id, count(*) AS n FROM ({matching}) m, unnest(m.facet_ids) AS value_id "
            "GROUP BY value_id) c "
            'JOIN search_facet_value v ON v.id = c.value_id ORDER BY v.facet, c.n DESC, v.value COLLATE "C"',
            list(params),
        ).fetchall()
        if scale != 1.0:
            rows = [(facet, value, round(count * scale)) for facet, value, count in rows]
        return self._group(rows)


class PostgresIndexTransaction:
    """Writes inside :meth:`PostgresIndex.transaction`; counters change with the rows they count."""

    def __init__(
        self, connection: psycopg.Connection[Any], document: Callable[[IndexRow], tuple[str, list[str]]]
    ) -> None:
        self._connection = connection
        self._document = document
        self.live_delta = 0
        """Change of the live-record count, applied when the transaction ends."""

    def _lock(self, record_id: str) -> tuple[int, bool, list[int]] | None:
        row = self._connection.execute(
            "SELECT rowid, deleted, facet_ids FROM search_record WHERE id = %s FOR UPDATE", (record_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]), [int(v) for v in row[2]])

    def _remove(self, held: tuple[int, bool, list[int]]) -> None:
        """Take a live record out of its facet counts (its text goes with the row's next update)."""
        _, deleted, facet_ids = held
        if not deleted:
            if facet_ids:
                self._connection.execute(
                    "UPDATE search_facet_value SET count = count - 1 WHERE id = ANY(%s)", (sorted(facet_ids),)
                )
            self.live_delta -= 1

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
            "texts": json.dumps({tag: list(pair) for tag, pair in row.texts.items()}, ensure_ascii=False),
        }
        document, document_params = ("''::tsvector", []) if row.deleted else self._document(row)
        held = self._lock(row.record_id)
        if held is not None:
            self._remove(held)
        facet_ids = [] if row.deleted else self._facet_ids(row)
        values["facet_ids"] = facet_ids
        columns = list(values)
        while True:
            if held is not None:
                assignments = ", ".join(f"{name} = %s" for name in columns if name != "id")
                self._connection.execute(
                    f"UPDATE search_record SET {assignments}, document = {document} WHERE rowid = %s",
                    [*(values[name] for name in columns if name != "id"), *document_params, held[0]],
                )
                break
            inserted = self._connection.execute(
                f"INSERT INTO search_record ({', '.join(columns)}, document) "
                f"VALUES ({', '.join('%s' for _ in columns)}, {document}) "
                "ON CONFLICT (id) DO NOTHING RETURNING rowid",
                [*(values[name] for name in columns), *document_params],
            ).fetchone()
            if inserted is not None:
                break
            # Another replica inserted this record meanwhile: lock its row and update it.
            held = self._lock(row.record_id)
            if held is not None:
                self._remove(held)
        if not row.deleted:
            self.live_delta += 1

    def _facet_ids(self, row: IndexRow) -> list[int]:
        """Ids of the row's facet values, each count raised by one, in a fixed order (concurrent
        writers take the counters' row locks alike)."""
        pairs = sorted({(name, value) for name, values_ in row.facets.items() for value in values_})
        ids: list[int] = []
        for name, value in pairs:
            found = self._connection.execute(
                "INSERT INTO search_facet_value(facet, value, count) VALUES (%s, %s, 1) "
                "ON CONFLICT (facet, value) DO UPDATE SET count = search_facet_value.count + 1 "
                "RETURNING id",
                (name, value),
            ).fetchone()
            assert found is not None
            ids.append(int(found[0]))
        return sorted(set(ids))

    def tombstone(self, record_id: str, *, record_modified: str, version: int) -> None:
        """Mark a record deleted: gone from search, still listed (as deleted) for harvesters."""
        held = self._lock(record_id)
        if held is None:
            return
        self._remove(held)
        self._connection.execute(
            "UPDATE search_record SET deleted = true, document = ''::tsvector, facet_ids = '{}', "
            "record_modified = %s, version = %s WHERE rowid = %s",
            (record_modified, version, held[0]),
        )
