"""The catalogue node's operations as it really serves them, for its published OpenAPI document.

One entry per method and path (:func:`connector.http.openapi.describe` refuses to start if a
route has none): the success responses with their media types, every problem status the route
can answer, the request bodies (RDF documents, SPARQL queries and forms, source descriptions)
and the parameters routes read by hand (search facets, the SPARQL ``query``).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI

from catalogue.index import FACETS
from connector.http.openapi import Operation, body, content, describe, query_parameter
from connector.http.operations import OPERATIONS
from vocab.rdfio import JSON_LD, N_TRIPLES, RDF_XML, TURTLE

RDF: Final = (TURTLE, JSON_LD, RDF_XML, N_TRIPLES)
SPARQL_RESULTS: Final = "application/sparql-results+json"
JSON: Final = ("application/json",)

_OBJECT: Final[dict[str, Any]] = {"type": "object"}
_OUTCOME: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["id", "dataset", "version", "created", "deleted", "href"],
    "properties": {
        "id": {"type": "string"},
        "dataset": {"type": "string"},
        "version": {"type": "integer"},
        "created": {"type": "boolean"},
        "deleted": {"type": "boolean"},
        "quality": {"type": "object"},
        "warnings": {"type": "array", "items": {"type": "object"}},
        "repairs": {"type": "array", "items": {"type": "object"}},
        "violations": {"type": "array", "items": {"type": "object"}},
        "href": {"type": "string"},
    },
}
# A catalogue dump published at once: one entry per dataset (status stored / quarantined / rejected).
_DUMP_OUTCOME: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["records"],
    "properties": {"records": {"type": "array", "items": {"type": "object"}}},
}
_SEARCH: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["total", "page", "page_size", "hits", "facets", "facets_exact"],
    "properties": {
        "total": {"type": "integer"},
        "total_exact": {
            "type": "boolean",
            "description": "false: more than `total` hits match (hits are counted up to 10,000)",
        },
        "page": {"type": "integer"},
        "page_size": {"type": "integer"},
        "hits": {
            "type": "array",
            "items": {"type": "object", "required": ["id", "dataset", "title", "href"]},
        },
        "facets": {"type": "object"},
        "facets_exact": {"type": "boolean"},
        "ranking_exact": {
            "type": "boolean",
            "description": "false: relevance ranked the first 2,000 hits and title matches, not all",
        },
    },
}
_VERSIONS: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["id", "versions"],
    "properties": {
        "id": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "object"}},
    },
}
_NODE: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["verification_method", "public_key_multibase", "records"],
    "properties": {
        "verification_method": {"type": "string"},
        "public_key_multibase": {"type": "string"},
        "records": {"type": "integer"},
    },
}
_LOCATION: Final = {"Location": {"description": "The record's URL", "schema": {"type": "string"}}}
_TRUNCATED: Final = {
    "Sluis-Results-Truncated": {
        "description": "true when a cap cut the results",
        "schema": {"type": "string"},
    },
    "Sluis-Results-Count": {
        "description": "rows (or triples) in this answer",
        "schema": {"type": "string"},
    },
}
_RECORD_BODY: Final = body(RDF, {"type": "string", "description": "one DCAT-AP record"})
_RDF_OK: Final = {
    200: {"content": content(RDF), "headers": {"Vary": {"schema": {"type": "string"}}}}
}
_SPARQL_OK: Final = {200: {"content": content((SPARQL_RESULTS, N_TRIPLES)), "headers": _TRUNCATED}}
_SPARQL_QUERY: Final = query_parameter(
    "query",
    {"type": "string"},
    "a read-only SPARQL 1.1 query (SELECT, ASK, CONSTRUCT, DESCRIBE)",
    required=True,
)
_SPARQL_PROBLEMS: Final = (400, 403, 406, 413, 422, 429, 503)
_SPARQL_NOTES: Final = {
    400: "Syntax error, SERVICE, a cross product, or past a limit of the query's algebra",
    403: "Updates are refused: the endpoint is read-only",
    422: "The query passed its time or memory limit and was stopped",
}
_FACETS: Final = [
    query_parameter(
        name, {"type": "array", "items": {"type": "string"}}, f"filter on {name} (IRI or code)"
    )
    for name in FACETS
] + [
    query_parameter(
        "lang", {"type": "string"}, "the reader's languages, comma-separated (before Accept-Language)"
    )
]
_SOURCE: Final = {"type": "object", "description": "a harvest source (id, kind, url, interval…)"}

CATALOGUE_OPERATIONS: Final[dict[tuple[str, str], Operation]] = {
    ("POST", "/catalogue/datasets"): Operation(
        {201: {"content": content(JSON, {"oneOf": [_OUTCOME, _DUMP_OUTCOME]}), "headers": _LOCATION}},
        (401, 403, 409, 413, 415, 422, 503),
        _RECORD_BODY,
        notes={422: "No dataset, or SHACL violations (listed) in strict mode", 409: "Already published"},
    ),
    ("PUT", "/catalogue/datasets/{record_id}"): Operation(
        {200: {"content": content(JSON, _OUTCOME), "headers": _LOCATION}},
        (401, 403, 404, 409, 413, 415, 422, 503),
        _RECORD_BODY,
    ),
    ("DELETE", "/catalogue/datasets/{record_id}"): Operation(
        {200: {"content": content(JSON, _OUTCOME)}}, (401, 403, 404, 409, 410, 503)
    ),
    ("GET", "/catalogue/datasets/{record_id}"): Operation(_RDF_OK, (404, 406, 410)),
    ("GET", "/catalogue/datasets/{record_id}/versions"): Operation(
        {200: {"content": content(JSON, _VERSIONS)}}, (404,)
    ),
    ("GET", "/catalogue/datasets/{record_id}/versions/{name}"): Operation(
        _RDF_OK, (400, 404, 406, 410)
    ),
    ("GET", "/catalogue/datasets/{record_id}/proof"): Operation(
        {200: {"content": content(JSON, _OBJECT)}}, (404, 410)
    ),
    ("GET", "/catalogue/node"): Operation({200: {"content": content(JSON, _NODE)}}),
    ("GET", "/catalogue/catalog"): Operation(_RDF_OK, (400, 406)),
    ("GET", "/catalogue/search"): Operation(
        {200: {"content": content(JSON, _SEARCH)}}, (400,), parameters=_FACETS
    ),
    ("GET", "/catalogue/sparql"): Operation(
        _SPARQL_OK, _SPARQL_PROBLEMS, parameters=[_SPARQL_QUERY], notes=_SPARQL_NOTES
    ),
    ("POST", "/catalogue/sparql"): Operation(
        _SPARQL_OK,
        (*_SPARQL_PROBLEMS, 415),
        {
            "required": True,
            "content": {
                "application/sparql-query": {"schema": {"type": "string"}},
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"query": {"type": "string"}},
                        "required": ["query"],
                    }
                },
                "application/sparql-update": {
                    "schema": {"type": "string", "description": "refused (403)"}
                },
            },
        },
        notes=_SPARQL_NOTES,
    ),
    ("GET", "/catalogue/sources"): Operation({200: {"content": content(JSON, _OBJECT)}}),
    ("POST", "/catalogue/sources"): Operation(
        {
            200: {"content": content(JSON, _OBJECT), "headers": _LOCATION},
            201: {"content": content(JSON, _OBJECT), "headers": _LOCATION},
        },
        (401, 403, 413),
        body(JSON, _SOURCE),
    ),
    ("GET", "/catalogue/sources/{source_id}"): Operation(
        {200: {"content": content(JSON, _OBJECT)}}, (404,)
    ),
    ("POST", "/catalogue/sources/{source_id}/harvest"): Operation(
        {202: {"content": content(JSON, _OBJECT)}}, (401, 403, 404, 409)
    ),
    ("GET", "/.well-known/did.json"): Operation({200: {"content": content(JSON, _OBJECT)}}),
}


def describe_catalogue(app: FastAPI) -> None:
    describe(app, {**CATALOGUE_OPERATIONS, **OPERATIONS})
