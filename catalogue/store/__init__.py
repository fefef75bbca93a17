"""The catalogue's system of record (Oxigraph, behind :class:`RecordStore`) and its read-only SPARQL."""

from catalogue.store.records import (
    CHANGE_CREATED,
    CHANGE_DELETED,
    CHANGE_UPDATED,
    HISTORY_GRAPH,
    LOCAL_SOURCE,
    RECORDS_GRAPH,
    OxigraphStore,
    PreparedText,
    RecordStore,
    RecordVersion,
    StoreError,
    VersionInfo,
    prepare_text,
    record_graph,
    version_node,
)
from catalogue.store.sparql import QueryRefused, QueryResult, QueryTimeout, Snapshots, SparqlRunner

__all__ = [
    "CHANGE_CREATED",
    "CHANGE_DELETED",
    "CHANGE_UPDATED",
    "HISTORY_GRAPH",
    "LOCAL_SOURCE",
    "RECORDS_GRAPH",
    "OxigraphStore",
    "PreparedText",
    "QueryRefused",
    "QueryResult",
    "QueryTimeout",
    "RecordStore",
    "RecordVersion",
    "Snapshots",
    "SparqlRunner",
    "StoreError",
    "VersionInfo",
    "prepare_text",
    "record_graph",
    "version_node",
]
