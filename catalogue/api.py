"""The catalogue node's HTTP API (FastAPI): publish, read, list, search and query records.

Writes need a publisher token (``Authorization: Bearer …``); reads are public. Every bad input
is an RFC 9457 problem naming the field (``connector.http``). The routes are thin: the work
is in :mod:`catalogue.publish`, :mod:`catalogue.index` and :mod:`catalogue.store`.

Endpoints (all under ``/catalogue``):

* ``POST /datasets`` · ``PUT|DELETE /datasets/{id}`` — publish, replace, retract (tombstone);
* ``GET /datasets/{id}[.ttl|.jsonld|.rdf|.nt]`` — the record (content negotiation), with its DQV
  quality measurements; ``/versions``, ``/versions/{n}``; ``/proof`` — the signed record;
* ``GET /catalog`` — the whole catalogue, DCAT-AP with Hydra paging and ``modified_since``;
* ``GET /search`` — ranked full text with facets (JSON);
* ``GET|POST /sparql`` — read-only SPARQL 1.1 with a time limit and a result cap;
* ``GET /node`` — the node's signing key (to verify record proofs offline).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from rdflib import Graph, Literal, URIRef
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from catalogue.backends import open_sparql, open_storage
from catalogue.config import (
    DEFAULT_CATALOG_PAGE_SIZE,
    DEFAULT_SEARCH_PAGE_SIZE,
    MAX_CATALOG_PAGE_SIZE,
    MAX_PAGE,
    MAX_SEARCH_PAGE_SIZE,
    MAX_SPARQL_QUERY_CHARS,
    CatalogueConfig,
)
from catalogue.harvest.routes import install_federation
from catalogue.index import FACETS, SearchError, SearchIndex, SearchQuery, accepted_languages, label_facets
from catalogue.openapi import describe_catalogue
from catalogue.operations import harvest_collector
from catalogue.pages import install_catalogue_pages
from catalogue.pipeline import IngestPipeline
from catalogue.publish import (
    Assessor,
    BulkValidator,
    CataloguePublisher,
    PublishError,
    Validator,
    record_graph_of,
    timestamp,
)
from catalogue.reconcile import reconcile
from catalogue.render import (
    MAX_PAGE_STATEMENTS,
    NotXmlError,
    RecordRenderer,
    fits_as_xml,
    statements_in,
    write_page,
)
from catalogue.search_backend import SearchBackend
from catalogue.signing import NODE_KEY_FILE, KeyLookup, RecordSigner, TrustedKeys, load_node_key
from catalogue.store import (
    CHANGE_DELETED,
    OxigraphStore,
    QueryRefused,
    QueryTimeout,
    RecordStore,
    RecordVersion,
    SparqlRunner,
    StoreError,
)
from catalogue.store.remote_sparql import RemoteSparqlRunner
from catalogue.tokens import TOKENS_FILE, TokenStore
from connector.http import (
    BodyError,
    FieldError,
    ProblemError,
    RefuseUnstorableUrls,
    StrictJsonBodies,
    bearer_token,
    choose_media_type,
    install_operations,
    install_problem_handlers,
    problem_response,
    read_body_bytes,
)
from vocab.errors import VocabError
from vocab.jsonld import DCAT_AP_CONTEXT, MAX_JSON_DEPTH
from vocab.namespaces import ADMS, DCAT, DCT, FOAF, HYDRA, RDF, RDFS, SLUIS, XSD, bind_prefixes
from vocab.rdfio import JSON_LD, MEDIA_TYPE_BY_SUFFIX, N_TRIPLES, RDF_XML, TURTLE, serialize

_log = logging.getLogger(__name__)

PROBLEM_BASE = "https://w3id.org/sluis/problems/"
STORE_DIR = "store"
SNAPSHOTS_DIR = "sparql-snapshots"
INDEX_FILE = "index.sqlite"
RDF_MEDIA_TYPES: tuple[str, ...] = (TURTLE, JSON_LD, RDF_XML, N_TRIPLES)
# Bodies past the limit are drained (up to this multiple) before answering 413, so the client
# reads the problem instead of a reset connection; beyond it the connection is simply closed.
_DRAIN_FACTOR = 4
# Record ids we mint are 24 hex digits; anything outside this shape names no record and never
# reaches the store (where it would have to become an IRI).
_RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[tuple[str, str]] = (),
    extra: dict[str, Any] | None = None,
) -> ProblemError:
    return ProblemError(
        status,
        title,
        detail,
        PROBLEM_BASE + code,
        [FieldError(field, reason) for field, reason in errors],
        dict(extra or {}),
    )


def _url_refusal(path: str, status: int, reason: str) -> Response:
    """A URL holding U+0000: in a path it can only be a record id (none holds one), else a filter."""
    field = "id" if status == 404 else "(query string)"
    title = "No such record" if status == 404 else "Invalid URL"
    return problem_response(
        status, title, reason, code=PROBLEM_BASE + "invalid-url", errors=[FieldError(field, reason)]
    )


def _from_publish_error(error: PublishError) -> ProblemError:
    return _problem(error.status, error.code, error.title, error.detail, error.errors, error.extra)


@dataclass
class CatalogueNode:
    """Everything one node holds open: store, index, tokens, the publish pipeline, SPARQL."""

    config: CatalogueConfig
    store: RecordStore
    index: SearchBackend
    tokens: TokenStore
    publisher: CataloguePublisher
    sparql: SparqlRunner | RemoteSparqlRunner
    key_for: KeyLookup
    pipeline: IngestPipeline

    @property
    def signer(self) -> RecordSigner:
        return self.publisher.signer

    def close(self) -> None:
        self.pipeline.close()
        self.sparql.close()
        self.index.close()
        self.tokens.close()
        self.store.close()


def default_validator() -> tuple[Validator, BulkValidator | None]:
    """K2's fast validator (agrees with pyshacl); its bulk form when available."""
    from catalogue import validation

    bulk: BulkValidator | None = getattr(validation, "validate_records", None)
    return validation.validate_record, bulk


def default_assessor() -> Assessor:
    from catalogue.quality import assess

    return assess


def open_node(
    data_dir: Path,
    config: CatalogueConfig | None = None,
    *,
    validate: Validator | None = None,
    validate_many: BulkValidator | None = None,
    assess: Assessor | None = None,
    key_for: KeyLookup | None = None,
) -> CatalogueNode:
    """Open (creating if needed) a node's embedded storage in ``data_dir``."""
    settings = config or CatalogueConfig()
    data_dir.mkdir(parents=True, exist_ok=True)
    if validate is None:
        validate, default_bulk = default_validator()
        validate_many = validate_many or default_bulk
    store, index = open_storage(settings, data_dir / STORE_DIR, data_dir / INDEX_FILE)
    if isinstance(store, OxigraphStore) and isinstance(index, SearchIndex):
        # Embedded: this process is the only writer, so what a crash left half-written is undone
        # before anything reads (a shared store recovers its own dead writers' batches).
        reconcile(store, index)
    tokens = TokenStore(data_dir / TOKENS_FILE)
    signer = RecordSigner(load_node_key(data_dir), key_file=data_dir / NODE_KEY_FILE)
    trusted = key_for or TrustedKeys({signer.verification_method: signer.public_key})
    publisher = CataloguePublisher(
        store,
        index,
        validate=validate,
        validate_many=validate_many,
        assess=assess or default_assessor(),
        signer=signer,
        key_for=trusted,
        dataset_base=f"{settings.base}/catalogue/datasets",
        max_bytes=settings.max_body_bytes,
    )
    sparql = open_sparql(store, data_dir / SNAPSHOTS_DIR, settings)
    pipeline = IngestPipeline(publisher)
    return CatalogueNode(settings, store, index, tokens, publisher, sparql, trusted, pipeline)


# ---- content negotiation ------------------------------------------------------------------------
def _negotiate(accept: str | None) -> str:
    """The RDF media type to answer with: the client's best supported choice, Turtle by default."""
    media_type = choose_media_type(
        accept, RDF_MEDIA_TYPES, {"application/json": JSON_LD, "application/xml": RDF_XML}
    )
    if media_type is None:
        raise _problem(
            406,
            "not-acceptable",
            "Not acceptable",
            f"cannot answer with {accept!r}; available: {', '.join(RDF_MEDIA_TYPES)}",
            [("Accept", f"none of {accept!r} is available")],
        )
    return media_type


def _rdf_response(graph: Graph, media_type: str, headers: dict[str, str] | None = None) -> Response:
    bind_prefixes(graph)
    context = DCAT_AP_CONTEXT if media_type == JSON_LD else None
    body = serialize(graph, media_type, context) if context else serialize(graph, media_type)
    return Response(body, media_type=media_type, headers={"Vary": "Accept", **(headers or {})})


def _split_suffix(name: str) -> tuple[str, str | None]:
    for suffix, media_type in MEDIA_TYPE_BY_SUFFIX.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], media_type
    return name, None


# ---- request helpers ------------------------------------------------------------------------------
async def _read_body(request: Request, limit: int) -> bytes:
    try:
        return await read_body_bytes(request, limit, drain_bytes=limit * (_DRAIN_FACTOR - 1))
    except BodyError as error:
        if error.status != 413:
            raise _problem(
                400, "bad-length", "Invalid Content-Length", error.reason, [(error.field, "not a number")]
            ) from None
        raise _problem(
            413,
            "document-too-large",
            "Document too large",
            f"the body is larger than the limit of {limit} bytes",
            [("body", f"larger than {limit} bytes")],
            {"limit": limit},
        ) from None


def _bearer(request: Request) -> str:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise _problem(
            401,
            "unauthorized",
            "Publisher token required",
            "writing to the catalogue needs a publisher token: Authorization: Bearer <token>",
            [("Authorization", "missing or not a Bearer token")],
        )
    return token


def _media_type_of(request: Request) -> str:
    content_type = request.headers.get("content-type")
    if not content_type:
        raise _problem(
            415,
            "unsupported-media-type",
            "Content-Type required",
            f"send the record as one of {', '.join(RDF_MEDIA_TYPES)}",
            [("Content-Type", "missing")],
        )
    return content_type


def _parse_time(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _problem(
            400,
            "invalid-parameter",
            "Invalid date-time",
            f"{field} must be an ISO 8601 date-time",
            [(field, f"{value!r} is not an ISO 8601 date-time")],
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


class _StrictDeclaredJson(StrictJsonBodies):
    """The strict JSON reading for bodies that declare a JSON media type.

    A body without ``Content-Type`` is left to the route, which refuses it with 415 naming the
    header (the catalogue takes Turtle and RDF/XML too, so no type is not a sign of JSON).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(key.lower() == b"content-type" for key, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_catalogue_app(
    data_dir: Path,
    config: CatalogueConfig | None = None,
    *,
    validate: Validator | None = None,
    validate_many: BulkValidator | None = None,
    assess: Assessor | None = None,
    key_for: KeyLookup | None = None,
    node: CatalogueNode | None = None,
) -> FastAPI:
    """The catalogue node app over embedded storage in ``data_dir`` (opened now, closed on shutdown)."""
    catalogue = node or open_node(
        data_dir, config, validate=validate, validate_many=validate_many, assess=assess, key_for=key_for
    )
    settings = catalogue.config
    base = settings.base

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        federation.close()
        if node is None:
            catalogue.close()

    app = FastAPI(title="Sluis catalogue", version="1", lifespan=lifespan)
    install_problem_handlers(app, unavailable=_store_unavailable)
    # ids and filters reach the index, which may be PostgreSQL (no U+0000 in text)
    app.add_middleware(RefuseUnstorableUrls, answer=_url_refusal)
    # JSON / JSON-LD bodies get the connector's strict reading: no key given twice, no NaN, no lone
    # surrogate or NUL (they would be stored, then fail when rendered elsewhere)
    app.add_middleware(
        _StrictDeclaredJson,
        prefixes=("/catalogue/datasets", "/catalogue/sources"),
        max_bytes=settings.max_body_bytes,
        max_depth=MAX_JSON_DEPTH,
    )
    registry = install_operations(
        app,
        {
            "store": lambda: catalogue.store.query("ASK { ?s ?p ?o }"),
            "index": catalogue.index.count,
            "signing_key": lambda: catalogue.signer.sign(Graph(), "urn:sluis:readiness"),
        },
        server="catalogue",
    )
    app.state.catalogue = catalogue
    renderer = RecordRenderer(catalogue.publisher.quality_graph)
    app.state.record_renderer = renderer
    federation = install_federation(app, catalogue.publisher, data_dir, base)
    registry.register(harvest_collector(catalogue, federation))

    def owner_of(request: Request) -> str:
        publisher = catalogue.tokens.publisher_for(_bearer(request))
        if publisher is None:
            raise _problem(
                401,
                "unauthorized",
                "Invalid publisher token",
                "the token is unknown or revoked",
                [("Authorization", "unknown or revoked token")],
            )
        return publisher

    async def run(work: Callable[[], Any]) -> Any:
        try:
            return await run_in_threadpool(work)
        except PublishError as error:
            raise _from_publish_error(error) from None
        except StoreError as error:
            # A concurrent write to the same record got there first; nothing of this one was kept.
            status = 409 if error.code == "stale-version" else 503
            raise _problem(
                status,
                error.code,
                "The store did not take the record",
                error.message,
                [("id", error.message)],
            ) from None

    def check_id(record_id: str) -> None:
        if not _RECORD_ID.fullmatch(record_id):
            raise _problem(
                404,
                "unknown-record",
                "No such record",
                "record ids are letters, digits, - and _",
                [("id", "not a record id")],
            )

    def dataset_url(record_id: str) -> str:
        return f"{base}/catalogue/datasets/{record_id}"

    def current_or_problem(record_id: str) -> RecordVersion:
        check_id(record_id)
        record = catalogue.store.current(record_id)
        if record is None:
            raise _problem(
                404,
                "unknown-record",
                "No such record",
                f"no record {record_id!r}",
                [("id", "no record with this id")],
            )
        if record.deleted:
            raise _problem(
                410,
                "record-deleted",
                "Record deleted",
                f"record {record_id} was retracted (version {record.version}); earlier versions stay "
                f"at {dataset_url(record_id)}/versions",
                [("id", "the record was deleted")],
                {"version": record.version},
            )
        return record

    def record_headers(record: RecordVersion) -> dict[str, str]:
        return {
            "ETag": f'"{record.record_id}-v{record.version}"',
            "Link": f'<{dataset_url(record.record_id)}/versions>; rel="version-history"',
            "Sluis-Record-Version": str(record.version),
        }

    def record_response(record: RecordVersion, media_type: str) -> Response:
        """The stored version rendered once per syntax by :mod:`catalogue.render`, then cached."""
        try:
            body = renderer.body(record, media_type)
        except NotXmlError as error:
            raise _problem(
                406,
                "not-acceptable",
                "Not acceptable",
                f"{error}; ask for {TURTLE} or {N_TRIPLES}",
                [("Accept", f"{RDF_XML} cannot carry this record")],
            ) from None
        headers = {"Vary": "Accept", **record_headers(record)}
        return Response(body, media_type=media_type, headers=headers)

    # ---- writes ---------------------------------------------------------------------------
    @app.post("/catalogue/datasets", status_code=201)
    async def publish_record(request: Request) -> JSONResponse:
        owner = owner_of(request)
        media_type = _media_type_of(request)
        body = await _read_body(request, settings.max_body_bytes)
        chosen = catalogue.tokens.strict_for(_bearer(request))  # the token's mode, else the node's
        strict = settings.strict_publishing if chosen is None else chosen
        results = await run(
            lambda: catalogue.pipeline.publish_document(body, media_type, owner=owner, strict=strict)
        )
        if len(results) == 1:
            outcome = results[0].outcome()
            location = dataset_url(outcome.record_id)
            return JSONResponse(
                {**outcome.to_json(), "href": location}, status_code=201, headers={"Location": location}
            )
        # A catalogue dump: one entry per dataset (status stored / quarantined / rejected).
        records = [
            {**result.to_json(), "href": dataset_url(result.record_id) if result.record_id else None}
            for result in results
        ]
        first = next(entry["href"] for entry in records if entry["href"])
        return JSONResponse({"records": records}, status_code=201, headers={"Location": first})

    @app.put("/catalogue/datasets/{record_id}")
    async def replace_record(record_id: str, request: Request) -> JSONResponse:
        owner = owner_of(request)
        check_id(record_id)
        media_type = _media_type_of(request)
        body = await _read_body(request, settings.max_body_bytes)
        chosen = catalogue.tokens.strict_for(_bearer(request))
        strict = settings.strict_publishing if chosen is None else chosen
        outcome = await run(
            lambda: catalogue.publisher.publish(
                body, media_type, owner=owner, record_id=record_id, strict=strict
            )
        )
        return JSONResponse(
            {**outcome.to_json(), "href": dataset_url(record_id)},
            headers={"Location": dataset_url(record_id)},
        )

    @app.delete("/catalogue/datasets/{record_id}")
    async def retract_record(record_id: str, request: Request) -> JSONResponse:
        owner = owner_of(request)
        check_id(record_id)
        outcome = await run(lambda: catalogue.publisher.retract(record_id, owner=owner))
        return JSONResponse({**outcome.to_json(), "href": dataset_url(record_id)})

    # ---- record reads ---------------------------------------------------------------------
    # One path template with PUT and DELETE (two names for the same URLs are not valid OpenAPI):
    # the id may end in a suffix choosing the syntax (.ttl, .jsonld, .rdf, .nt).
    @app.get("/catalogue/datasets/{record_id}")
    def read_record(record_id: str, request: Request) -> Response:
        record_id, suffix_type = _split_suffix(record_id)
        media_type = suffix_type or _negotiate(request.headers.get("accept"))
        record = current_or_problem(record_id)
        return record_response(record, media_type)

    @app.get("/catalogue/datasets/{record_id}/versions")
    def list_versions(record_id: str) -> dict[str, Any]:
        check_id(record_id)
        versions = catalogue.store.versions(record_id)
        if not versions:
            raise _problem(
                404,
                "unknown-record",
                "No such record",
                f"no record {record_id!r}",
                [("id", "no record with this id")],
            )
        return {
            "id": record_id,
            "versions": [
                {
                    "version": info.version,
                    "modified": timestamp(info.modified),
                    "deleted": info.deleted,
                    "href": f"{dataset_url(record_id)}/versions/{info.version}",
                }
                for info in versions
            ],
        }

    @app.get("/catalogue/datasets/{record_id}/versions/{name}")
    def read_version(record_id: str, name: str, request: Request) -> Response:
        number_text, suffix_type = _split_suffix(name)
        if not re.fullmatch(r"[0-9]{1,9}", number_text):
            raise _problem(
                400,
                "invalid-parameter",
                "Invalid version",
                "the version is a positive number",
                [("version", f"{number_text!r} is not a number")],
            )
        media_type = suffix_type or _negotiate(request.headers.get("accept"))
        check_id(record_id)
        record = catalogue.store.version(record_id, int(number_text))
        if record is None:
            raise _problem(
                404,
                "unknown-version",
                "No such version",
                f"record {record_id!r} has no version {number_text}",
                [("version", "no such version")],
            )
        if record.deleted:
            raise _problem(
                410,
                "record-deleted",
                "Tombstone",
                f"version {record.version} retracted the record",
                [("version", "this version is a tombstone")],
            )
        return record_response(record, media_type)

    @app.get("/catalogue/datasets/{record_id}/proof")
    def read_proof(record_id: str) -> Response:
        record = current_or_problem(record_id)

        def signed() -> bytes:
            graph = record_graph_of(record, with_quality=False)
            document = catalogue.signer.signed_document(graph, record.dataset, record.proof)
            return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

        # made once per version, like the RDF answers (its JSON-LD compaction is as costly)
        return Response(renderer.cached(record, "proof", signed), media_type="application/json")

    @app.get("/catalogue/node")
    def node_identity() -> dict[str, Any]:
        return {
            "verification_method": catalogue.signer.verification_method,
            "public_key_multibase": catalogue.signer.public_multibase,
            "records": catalogue.index.count(),
        }

    # ---- the catalogue listing (Hydra paging) ---------------------------------------------------
    @app.get("/catalogue/catalog")
    def read_catalog(
        request: Request,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_CATALOG_PAGE_SIZE)] = DEFAULT_CATALOG_PAGE_SIZE,
        modified_since: str | None = None,
    ) -> Response:
        media_type = _negotiate(request.headers.get("accept"))
        since = timestamp(_parse_time(modified_since, "modified_since")) if modified_since else None
        total, rows = catalogue.index.changes(
            modified_since=since, offset=(page - 1) * page_size, limit=page_size
        )
        last_page = max(1, -(-total // page_size))
        if page > last_page:
            raise _problem(
                400,
                "page-out-of-range",
                "Page past the end",
                f"page {page} is past the last page ({last_page}) of {total} records",
                [("page", f"must be at most {last_page}")],
                {"last_page": last_page},
            )
        graph = Graph()
        catalog = URIRef(f"{base}/catalogue/catalog")
        graph.add((catalog, RDF.type, DCAT.Catalog))
        graph.add((catalog, RDF.type, HYDRA.Collection))
        graph.add((catalog, DCT.title, Literal(settings.title, lang="en")))
        graph.add((catalog, DCT.description, Literal(settings.description, lang="en")))
        node_publisher = URIRef(settings.publisher)
        graph.add((catalog, DCT.publisher, node_publisher))
        graph.add((node_publisher, RDF.type, FOAF.Agent))
        graph.add((node_publisher, FOAF.name, Literal(settings.publisher_name)))
        graph.add((catalog, HYDRA.totalItems, Literal(total, datatype=XSD.nonNegativeInteger)))
        # Harvesters ask for N-Triples: records then go out as their stored text, which costs a
        # string join instead of an rdflib parse and serialisation per record.
        contents: list[str] = []
        inline: list[tuple[URIRef, RecordVersion]] = []
        for row in rows:
            record_node = URIRef(f"{base}/catalogue/records/{row.record_id}")
            dataset = URIRef(row.dataset)
            graph.add((catalog, DCAT.record, record_node))
            graph.add((record_node, RDF.type, DCAT.CatalogRecord))
            graph.add((record_node, FOAF.primaryTopic, dataset))
            graph.add(
                (
                    record_node,
                    DCT.modified,
                    Literal(row.record_modified.replace("Z", "+00:00"), datatype=XSD.dateTime),
                )
            )
            if row.deleted:
                graph.add((record_node, ADMS.status, URIRef(CHANGE_DELETED)))
                continue
            record = catalogue.store.current(row.record_id)
            if record is None or record.deleted:
                continue
            graph.add((catalog, DCAT.dataset, dataset))
            if record.proof is not None:  # harvesters check it against the node's key
                graph.add((record_node, SLUIS.proof, Literal(json.dumps(record.proof, sort_keys=True))))
            if media_type == N_TRIPLES:
                contents.append(record.content)  # stored as N-Triples: served as stored, unparsed
            else:
                inline.append((record_node, record))

        def page_url(number: int) -> URIRef:
            query: dict[str, Any] = {"page": number, "page_size": page_size}
            if modified_since:
                query["modified_since"] = modified_since
            return URIRef(f"{base}/catalogue/catalog?{urlencode(query)}")

        view = page_url(page)
        graph.add((catalog, HYDRA.view, view))
        graph.add((view, RDF.type, HYDRA.PartialCollectionView))
        graph.add((view, HYDRA.first, page_url(1)))
        graph.add((view, HYDRA.last, page_url(last_page)))
        if page < last_page:
            graph.add((view, HYDRA.next, page_url(page + 1)))
        if page > 1:
            graph.add((view, HYDRA.previous, page_url(page - 1)))
        if media_type == N_TRIPLES:
            body = serialize(graph, N_TRIPLES) + b"\n" + "\n".join(contents).encode("utf-8") + b"\n"
            return Response(body, media_type=N_TRIPLES, headers={"Vary": "Accept"})
        # Other syntaxes are parsed and written, so a page holds at most MAX_PAGE_STATEMENTS:
        # records are inlined in page order while they fit, the rest point to their own document.
        budget = MAX_PAGE_STATEMENTS - len(graph) - len(inline)
        for record_node, record in inline:
            size = statements_in(record.content)
            if size <= budget and (media_type != RDF_XML or fits_as_xml(record.content)):
                contents.append(record.content)
                budget -= size
            else:
                graph.add((record_node, RDFS.seeAlso, URIRef(f"{dataset_url(record.record_id)}.nt")))
        body = write_page(graph, contents, media_type)
        return Response(body, media_type=media_type, headers={"Vary": "Accept"})

    # ---- search ---------------------------------------------------------------------------------
    @app.get("/catalogue/search")
    def search(
        request: Request,
        q: str = "",
        sort: str = "relevance",
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_SEARCH_PAGE_SIZE)] = DEFAULT_SEARCH_PAGE_SIZE,
    ) -> dict[str, Any]:
        known = {"q", "sort", "page", "page_size", "lang", *FACETS}
        unknown = sorted(set(request.query_params.keys()) - known)
        if unknown:
            raise _problem(
                400,
                "invalid-parameter",
                "Unknown search parameter",
                f"unknown parameter {unknown[0]!r}; facets are {', '.join(FACETS)}",
                [(name, "unknown parameter") for name in unknown],
            )
        filters = {
            name: request.query_params.getlist(name) for name in FACETS if name in request.query_params
        }
        languages = accepted_languages(
            request.query_params.get("lang"), request.headers.get("accept-language")
        )
        try:
            result = catalogue.index.search(SearchQuery(q, filters, sort, page, page_size, languages))
        except SearchError as error:
            raise _problem(
                400, "invalid-parameter", "Invalid search", str(error), [(error.field, error.reason)]
            ) from None
        body = result.to_json()
        label_facets(body["facets"], languages)
        origins = federation.origins([hit["id"] for hit in body["hits"]])
        for hit in body["hits"]:
            hit["href"] = dataset_url(hit["id"])
            hit["origins"] = origins[hit["id"]]
        return body

    # ---- SPARQL ---------------------------------------------------------------------------------
    def answer_query(query: str, accept: str | None) -> Response:
        try:
            result = catalogue.sparql.run(query)
        except QueryRefused as error:
            headers = {"Retry-After": "1"} if error.status == 429 else None
            problem = _problem(
                error.status,
                "sparql-refused",
                "SPARQL query refused",
                error.reason,
                [(error.field, error.reason)],
            )
            if headers:
                problem.extra["retry_after_seconds"] = 1
            raise problem from None
        except QueryTimeout as error:
            raise _problem(
                422,
                "sparql-timeout",
                "SPARQL query past its time limit",
                str(error),
                [("query", str(error))],
                {"time_limit_seconds": error.seconds},
            ) from None
        except OSError as error:
            raise _problem(
                400, "sparql-failed", "SPARQL query failed", str(error), [("query", str(error))]
            ) from None
        if choose_media_type(accept, [result.media_type]) is None:
            # one result format per query form: a client that accepts none of it is told which
            # one there is, rather than sent a body it said it cannot read
            raise _problem(
                406,
                "not-acceptable",
                "No acceptable result format",
                f"this query's results are available as {result.media_type} only",
                [("Accept", f"{(accept or '')[:200]} does not admit {result.media_type}")],
            )
        headers = {
            "Sluis-Results-Truncated": "true" if result.truncated else "false",
            "Sluis-Results-Count": str(result.count),
            "Vary": "Accept",
        }
        return Response(result.body, media_type=result.media_type, headers=headers)

    @app.get("/catalogue/sparql")
    async def sparql_get(request: Request) -> Response:
        if "update" in request.query_params:
            raise _problem(
                403,
                "sparql-refused",
                "SPARQL updates refused",
                "this endpoint is read-only",
                [("update", "updates are refused")],
            )
        query = request.query_params.get("query")
        if query is None:
            raise _problem(
                400,
                "invalid-parameter",
                "Query required",
                "pass the SPARQL query as ?query=",
                [("query", "missing")],
            )
        return await run_in_threadpool(answer_query, query, request.headers.get("accept"))

    @app.post("/catalogue/sparql")
    async def sparql_post(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        body = await _read_body(request, MAX_SPARQL_QUERY_CHARS * 4)
        if content_type == "application/sparql-update":
            raise _problem(
                403,
                "sparql-refused",
                "SPARQL updates refused",
                "this endpoint is read-only",
                [("update", "updates are refused")],
            )
        if content_type == "application/sparql-query":
            query = body.decode("utf-8", errors="replace")
        elif content_type == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8", errors="replace"))
            if "update" in form:
                raise _problem(
                    403,
                    "sparql-refused",
                    "SPARQL updates refused",
                    "this endpoint is read-only",
                    [("update", "updates are refused")],
                )
            values = form.get("query")
            if not values:
                raise _problem(
                    400,
                    "invalid-parameter",
                    "Query required",
                    "the form has no query field",
                    [("query", "missing")],
                )
            query = values[0]
        else:
            raise _problem(
                415,
                "unsupported-media-type",
                "Unsupported Content-Type",
                "send application/sparql-query or an application/x-www-form-urlencoded form",
                [("Content-Type", f"{content_type or 'missing'} is not supported")],
            )
        return await run_in_threadpool(answer_query, query, request.headers.get("accept"))

    install_catalogue_pages(app, catalogue)
    describe_catalogue(app)

    @app.exception_handler(VocabError)
    async def _vocab_error(_: Request, error: VocabError) -> JSONResponse:
        problem = _problem(400, error.code, "Invalid document", str(error), [("body", str(error))])
        return JSONResponse(
            {
                "type": problem.code,
                "title": problem.title,
                "status": 400,
                "detail": problem.detail,
                "errors": [item.as_json() for item in problem.errors],
            },
            status_code=400,
            media_type="application/problem+json",
        )

    return app


def _store_unavailable(error: BaseException) -> bool:
    """The remote SPARQL store did not answer: a 503 on any route, reads included."""
    return isinstance(error, StoreError) and error.code == "store-unavailable"
