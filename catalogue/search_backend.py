"""What the catalogue needs of a search index, so SQLite FTS5 or PostgreSQL can serve it.

Why a protocol: one node keeps its index in a SQLite file next to it (:class:`catalogue.index.
SearchIndex`); several replicas of a node share one PostgreSQL index
(:class:`catalogue.index_postgres.PostgresIndex`) so a record published through any of them is
found through all. Both answer the same :class:`catalogue.index.SearchQuery` with the same
:class:`catalogue.index.SearchResult`, and the shared index tests run against both.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from catalogue.index import ChangeRow, IndexRow, SearchQuery, SearchResult


class IndexWriter(Protocol):
    """Writes inside one index transaction."""

    def upsert(self, row: IndexRow) -> None: ...

    def tombstone(self, record_id: str, *, record_modified: str, version: int) -> None: ...


class SearchBackend(Protocol):
    """The search index: written in transactions by the publisher, read by the HTTP API."""

    def transaction(self) -> AbstractContextManager[IndexWriter]:
        """Committed when the block ends without error, else rolled back."""
        ...

    def count(self, *, include_deleted: bool = False) -> int: ...

    def get(self, record_id: str) -> ChangeRow | None: ...

    def changes(
        self, *, modified_since: str | None, offset: int, limit: int
    ) -> tuple[int, list[ChangeRow]]: ...

    def search(self, query: SearchQuery) -> SearchResult: ...

    def close(self) -> None: ...
