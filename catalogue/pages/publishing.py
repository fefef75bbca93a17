"""Pages for data providers on a catalogue node: publish a record, and see one's own datasets.

Publishing goes through the node's one pipeline (:meth:`CataloguePublisher.publish`): the same
parse limits, SHACL profiles, quality score, signature and all-or-nothing store as the API. A
record typed into the form is built as an RDF graph (never by pasting strings into Turtle), so
a quote in a title cannot change the record's meaning. When the pipeline refuses the record,
each violation is shown next to the form field whose property it concerns; a violation of a
property the form has no field for is listed above the form, named by its property.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from catalogue.index import SearchQuery
from catalogue.pages.labels import label, terms_under
from catalogue.pages.record import raise_quality
from catalogue.publish import PublishError
from connector.pages.web import PAGES, PageKit
from vocab.namespaces import DCAT, DCT, FOAF, RDF, VCARD
from vocab.rdfio import JSON_LD, N_TRIPLES, RDF_XML, TURTLE

if TYPE_CHECKING:
    from catalogue.api import CatalogueNode

EU = "http://publications.europa.eu/resource/authority/"
# Form field -> the property its value becomes; a violation on the property is shown at the field.
FIELD_OF_PROPERTY: Final = {
    str(DCT.title): "title",
    str(DCT.description): "description",
    str(DCAT.keyword): "keyword",
    str(DCAT.theme): "theme",
    str(DCT.accessRights): "access_rights",
    str(DCT.spatial): "spatial",
    str(DCT.license): "license",
    str(DCT["format"]): "format",
    str(DCAT.accessURL): "access_url",
    str(DCAT.downloadURL): "download_url",
    str(DCAT.contactPoint): "contact_email",
    str(FOAF.name): "publisher_name",
}
TEXT_FIELDS: Final = (
    "title",
    "description",
    "keyword",
    "publisher_name",
    "contact_email",
    "language",
    "access_url",
    "download_url",
    "spatial",
    "theme",
    "access_rights",
    "license",
    "format",
)
MAX_FIELD_CHARS: Final = 20_000
MAX_KEYWORDS: Final = 50
MEDIA_TYPE_BY_NAME: Final = {
    ".ttl": TURTLE,
    ".jsonld": JSON_LD,
    ".json": JSON_LD,
    ".rdf": RDF_XML,
    ".xml": RDF_XML,
    ".nt": N_TRIPLES,
}
PAGE_OF_MINE: Final = 50


def _choices(scheme: str) -> list[tuple[str, str]]:
    return terms_under(EU + scheme + "/")


def _iri(value: str, field: str, errors: dict[str, list[str]]) -> URIRef | None:
    if not value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https", "mailto")
        or any(c in value for c in ' <>"{}|\\^`')
    ):
        errors.setdefault(field, []).append("must be an absolute http(s) address without spaces")
        return None
    return URIRef(value)


def record_from_form(values: Mapping[str, str], publisher: str) -> tuple[Graph, dict[str, list[str]]]:
    """The DCAT-AP record the form describes (blank dataset node: the node mints its IRI)."""
    errors: dict[str, list[str]] = {}
    graph = Graph()
    dataset = BNode()
    language = values.get("language") or "en"
    if not (len(language) == 2 and language.isalpha()):
        errors.setdefault("language", []).append("a two-letter language code, e.g. en or nl")
        language = "en"
    graph.add((dataset, RDF.type, DCAT.Dataset))
    for field, predicate in (("title", DCT.title), ("description", DCT.description)):
        if values.get(field, "").strip():
            graph.add((dataset, predicate, Literal(values[field].strip(), lang=language)))
    keywords = [word.strip() for word in values.get("keyword", "").split(",") if word.strip()]
    if len(keywords) > MAX_KEYWORDS:
        errors.setdefault("keyword", []).append(f"at most {MAX_KEYWORDS} keywords")
    for word in keywords[:MAX_KEYWORDS]:
        graph.add((dataset, DCAT.keyword, Literal(word, lang=language)))
    owner = URIRef(publisher)
    graph.add((dataset, DCT.publisher, owner))
    graph.add((owner, RDF.type, FOAF.Agent))
    if values.get("publisher_name", "").strip():
        graph.add((owner, FOAF.name, Literal(values["publisher_name"].strip(), lang=language)))
    for field, predicate in (
        ("theme", DCAT.theme),
        ("access_rights", DCT.accessRights),
        ("spatial", DCT.spatial),
    ):
        iri = _iri(values.get(field, "").strip(), field, errors)
        if iri is not None:
            graph.add((dataset, predicate, iri))
    email = values.get("contact_email", "").strip()
    if email:
        if "@" not in email or any(c in email for c in ' <>"'):
            errors.setdefault("contact_email", []).append("an e-mail address, e.g. data@example.org")
        else:
            contact = BNode()
            graph.add((dataset, DCAT.contactPoint, contact))
            graph.add((contact, RDF.type, VCARD.Organization))
            graph.add((contact, VCARD.fn, Literal(values.get("publisher_name", "").strip() or email)))
            graph.add((contact, VCARD.hasEmail, URIRef(f"mailto:{email}")))
    distribution: Node = BNode()
    fields = {
        field: values.get(field, "").strip() for field in ("access_url", "download_url", "license", "format")
    }
    if any(fields.values()):
        graph.add((dataset, DCAT.distribution, distribution))
        graph.add((distribution, RDF.type, DCAT.Distribution))
        for field, predicate in (
            ("access_url", DCAT.accessURL),
            ("download_url", DCAT.downloadURL),
            ("license", DCT.license),
            ("format", DCT["format"]),
        ):
            iri = _iri(fields[field], field, errors)
            if iri is not None:
                graph.add((distribution, predicate, iri))
    return graph, errors


def errors_by_field(error: PublishError) -> tuple[dict[str, list[str]], list[str]]:
    """The refusal's violations by form field, and those the form has no field for."""
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    violations = error.extra.get("violations") if isinstance(error.extra.get("violations"), list) else None
    if violations:
        for item in violations:
            if not isinstance(item, dict):
                continue
            path, message = str(item.get("path") or ""), str(item.get("message") or "")
            field = FIELD_OF_PROPERTY.get(path)
            if field is not None:
                by_field.setdefault(field, []).append(message)
            else:
                general.append(f"{label(path) if path else 'the record'}: {message}")
        return by_field, general
    for name, reason in error.errors:
        field = FIELD_OF_PROPERTY.get(name)
        if field is not None:
            by_field.setdefault(field, []).append(reason)
        else:
            general.append(f"{label(name) if name.startswith('http') else name}: {reason}")
    return by_field, general or [error.detail]


def publishing_router(kit: PageKit, node: CatalogueNode) -> APIRouter:
    router = APIRouter(prefix=f"{PAGES}/catalogue", include_in_schema=False)

    def page(
        request: Request,
        values: Mapping[str, Any],
        errors: Mapping[str, list[str]],
        general: list[str],
        status: int = 200,
    ) -> Response:
        return kit.render(
            request,
            "publish.html",
            {
                "title": "Publish a dataset",
                "values": values,
                "errors": errors,
                "general": general,
                "themes": _choices("data-theme"),
                "access_rights": _choices("access-right"),
                "licences": _choices("licence"),
                "formats": _choices("file-type"),
            },
            status,
        )

    @router.get("/publish")
    def publish_form(request: Request) -> Response:
        if (session := kit.session(request)) is None:
            return kit.login_redirect(request)
        return page(request, {"language": "en", "publisher": session.principal}, {}, [])

    @router.post("/publish")
    async def publish(request: Request) -> Response:
        if (session := kit.session(request)) is None:
            return kit.login_redirect(request)
        form = await kit.form(request)
        if not kit.csrf_ok(request, form):
            return kit.form_expired(request)
        values = {name: str(form.get(name) or "")[:MAX_FIELD_CHARS] for name in TEXT_FIELDS}
        upload = form.get("file")
        if isinstance(upload, UploadFile) and upload.filename:
            suffix = "." + upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
            media_type = MEDIA_TYPE_BY_NAME.get(suffix)
            if media_type is None:
                return page(
                    request,
                    values,
                    {"file": [f"name the file .ttl, .jsonld, .rdf or .nt (not {upload.filename})"]},
                    [],
                    415,
                )
            data = await upload.read(node.config.max_body_bytes + 1)
            if len(data) > node.config.max_body_bytes:
                return page(
                    request, values, {"file": [f"larger than {node.config.max_body_bytes} bytes"]}, [], 413
                )
            field_for_errors = "file"
        else:
            graph, errors = record_from_form(values, session.principal)
            if errors:
                return page(request, values, errors, [], 400)
            data = graph.serialize(format="turtle").encode()
            media_type = TURTLE
            field_for_errors = ""
        # the token's publishing mode, else the node's: the same rule as the API's
        chosen = node.tokens.strict_for(session.token) if session.token else None
        strict = node.config.strict_publishing if chosen is None else chosen
        try:
            outcome = await run_in_threadpool(
                lambda: node.publisher.publish(data, media_type, owner=session.principal, strict=strict)
            )
        except PublishError as error:
            by_field, general = errors_by_field(error)
            if field_for_errors:
                messages = [*(m for ms in by_field.values() for m in ms), *general]
                by_field, general = {field_for_errors: messages}, []
            return page(request, values, by_field, general, error.status)
        return RedirectResponse(f"{PAGES}/catalogue/datasets/{outcome.record_id}", status_code=303)

    @router.get("/mine")
    async def mine(request: Request) -> Response:
        if (session := kit.session(request)) is None:
            return kit.login_redirect(request)

        def listing() -> list[dict[str, Any]]:
            result = node.index.search(
                SearchQuery("", {"publisher": [session.principal]}, "modified", 1, PAGE_OF_MINE)
            )
            shown = []
            for hit in result.hits:
                record = node.store.current(hit.id)
                quality = (
                    record.quality.get("quality", record.quality)
                    if record and isinstance(record.quality, dict)
                    else {}
                )
                shown.append(
                    {
                        "id": hit.id,
                        "title": hit.title,
                        "quality": hit.quality or {},
                        "raise": raise_quality(quality if isinstance(quality, dict) else {})[:3],
                    }
                )
            return shown

        items = await run_in_threadpool(listing)
        return kit.render(request, "mine.html", {"title": "My datasets", "datasets": items})

    return router
