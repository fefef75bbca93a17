"""Store and index chosen by URL: embedded (Oxigraph + SQLite in the node's folder) or shared.

Why URLs: one flag per piece says where it lives, the same on the command line, in compose files
and in tests. ``None`` keeps the embedded default; a SPARQL endpoint
(``sparql+http://host:8890/sparql``) holds the records and a PostgreSQL database
(``postgresql://user@host:5432/db``) the search index, shared by every replica of a node.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from catalogue.index import SearchIndex
from catalogue.search_backend import SearchBackend
from catalogue.store import OxigraphStore, RecordStore
from catalogue.store.remote import SCHEMES, SparqlEndpointStore

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


def open_store(url: str | None, embedded_path: Path) -> RecordStore:
    """The record store ``url`` names, or the embedded Oxigraph store at ``embedded_path``."""
    if not url:
        return OxigraphStore(embedded_path)
    if urlsplit(url).scheme in SCHEMES:
        return SparqlEndpointStore.from_url(url)
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
