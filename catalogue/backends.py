"""Store and index chosen by URL: embedded (Oxigraph + SQLite in the node's folder) or shared.

Why URLs: one flag per piece says where it lives, the same on the command line, in compose files
and in tests. ``None`` keeps the embedded default; a SPARQL endpoint
(``sparql+http://host:8890/sparql``) holds the records and a PostgreSQL database
(``postgresql://user@host:5432/db``) the search index, shared by every replica of a node.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from catalogue.config import MAX_SPARQL_QUERY_CHARS, CatalogueConfig
from catalogue.index import SearchIndex
from catalogue.search_backend import SearchBackend
from catalogue.store import OxigraphStore, RecordStore, Snapshots, SparqlRunner
from catalogue.store.remote import SCHEMES, SparqlEndpointStore
from catalogue.store.remote_sparql import RemoteSparqlRunner

INDEX_SCHEMES = ("postgresql", "postgres")


def describe(url: str | None) -> str:
    """A URL safe to print: without its password."""
    if not url:
        return "embedded"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def open_store(url: str | None, embedded_path: Path, *, recover: bool = True) -> RecordStore:
    """The record store ``url`` names, or the embedded Oxigraph store at ``embedded_path``.

    ``recover`` False leaves a SPARQL store's dead writers' batches for the caller to recover
    (:func:`open_storage` does, knowing the index).
    """
    if not url:
        return OxigraphStore(embedded_path)
    if urlsplit(url).scheme in SCHEMES:
        return SparqlEndpointStore.from_url(url, recover=recover)
    raise ValueError(
        f"store URL {describe(url)!r}: use sparql+http://host:port/path (a SPARQL 1.1 endpoint) "
        "or leave it out for the embedded store"
    )


def open_index(url: str | None, embedded_path: Path) -> SearchBackend:
    """The search index ``url`` names, or the embedded SQLite index at ``embedded_path``."""
    if not url:
        return SearchIndex(embedded_path)
    if urlsplit(url).scheme in INDEX_SCHEMES:
        from catalogue.index_postgres import PostgresIndex

        return PostgresIndex(url)
    raise ValueError(
        f"index URL {describe(url)!r}: use postgresql://user@host:port/database "
        "or leave it out for the embedded index"
    )


def open_storage(
    settings: CatalogueConfig, store_path: Path, index_path: Path
) -> tuple[RecordStore, SearchBackend]:
    """A node's store and index; a shared store recovers its dead writers' batches knowing what
    the index committed (kept) and what it did not (rolled back)."""
    store = open_store(settings.store_url, store_path, recover=False)
    try:
        index = open_index(settings.index_url, index_path)
    except BaseException:
        store.close()
        raise
    if isinstance(store, SparqlEndpointStore):

        def committed(record_id: str) -> int | None:
            row = index.get(record_id)
            return None if row is None else row.version

        store.committed_version = committed
        store.recover()
    return store, index


def open_sparql(
    store: RecordStore, snapshots: Path, settings: CatalogueConfig
) -> SparqlRunner | RemoteSparqlRunner:
    """The public SPARQL endpoint's runner: worker processes on snapshots of an embedded store,
    or the SPARQL server itself (same checks and caps) when the records live there."""
    if isinstance(store, SparqlEndpointStore):
        return RemoteSparqlRunner(
            store.query_url,
            timeout_seconds=settings.sparql_timeout_seconds,
            max_results=settings.sparql_max_results,
            max_result_bytes=settings.sparql_max_result_bytes,
            concurrency=settings.sparql_concurrency,
            max_query_chars=MAX_SPARQL_QUERY_CHARS,
        )
    if not isinstance(store, OxigraphStore):
        raise TypeError(f"no SPARQL runner for a {type(store).__name__}")
    return SparqlRunner(
        Snapshots(store, snapshots),
        timeout_seconds=settings.sparql_timeout_seconds,
        max_results=settings.sparql_max_results,
        max_result_bytes=settings.sparql_max_result_bytes,
        concurrency=settings.sparql_concurrency,
        memory_bytes=settings.sparql_memory_bytes,
        max_query_chars=MAX_SPARQL_QUERY_CHARS,
    )
