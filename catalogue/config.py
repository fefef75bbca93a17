"""The catalogue node's configuration: one typed object, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from vocab.rdfio import DEFAULT_MAX_DOCUMENT_BYTES

# Paging: a harvester pulls pages of records; a page of 1,000 records is a few MB of Turtle.
DEFAULT_CATALOG_PAGE_SIZE = 100
MAX_CATALOG_PAGE_SIZE = 1000
# Search pages are read by people and UIs.
DEFAULT_SEARCH_PAGE_SIZE = 20
MAX_SEARCH_PAGE_SIZE = 100
# SPARQL: a query that runs longer than this is stopped and answered with a problem; results past
# the cap are cut (flagged in a header) so one query cannot stream the whole store.
DEFAULT_SPARQL_TIMEOUT_SECONDS = 10.0
DEFAULT_SPARQL_MAX_RESULTS = 10_000
# Results are cut at this many bytes too: a few rows holding megabyte literals are as heavy as a
# million small ones.
DEFAULT_SPARQL_MAX_RESULT_BYTES = 8 * 1024 * 1024
# Queries run in worker processes (one per running query); more at once are refused with 429.
DEFAULT_SPARQL_CONCURRENCY = 2
# Memory one query may take in its worker, beyond what the worker uses idle; past it the worker
# dies and the query is answered 422.
DEFAULT_SPARQL_MEMORY_BYTES = 512 * 1024 * 1024
MAX_SPARQL_QUERY_CHARS = 100_000
# Page numbers beyond this are past the end of any catalogue we hold (and would overflow SQLite's
# integer offsets).
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class CatalogueConfig:
    public_url: str = "http://127.0.0.1:8080"
    """Base URL the node is reached at: minted dataset IRIs, Location headers, Hydra links."""
    title: str = "Sluis catalogue"
    description: str = "DCAT-AP 3 / HealthDCAT-AP records published on this Sluis node."
    publisher: str = "https://w3id.org/sluis/node"
    publisher_name: str = "Sluis catalogue node"
    max_body_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    sparql_timeout_seconds: float = DEFAULT_SPARQL_TIMEOUT_SECONDS
    sparql_max_results: int = DEFAULT_SPARQL_MAX_RESULTS
    sparql_concurrency: int = DEFAULT_SPARQL_CONCURRENCY
    sparql_max_result_bytes: int = DEFAULT_SPARQL_MAX_RESULT_BYTES
    sparql_memory_bytes: int = DEFAULT_SPARQL_MEMORY_BYTES
    store_url: str | None = None
    """Where the records live: None for the embedded Oxigraph store, or a SPARQL 1.1 endpoint
    (``sparql+http://host:port/sparql``) shared by replicas (:mod:`catalogue.backends`)."""
    index_url: str | None = None
    """Where the search index lives: None for embedded SQLite, or ``postgresql://…``."""
    strict_publishing: bool = True
    """Direct publishing rejects a record with SHACL violations (422). Off, such records are
    stored with their conformance as part of their quality, as harvested records always are."""

    @property
    def base(self) -> str:
        return self.public_url.rstrip("/")
