"""Search and dataset pages of a catalogue node (public, as the catalogue's reads are).

Search: full text, facet filters with their counts, removable chips for the filters in force,
paging, each hit with its quality band, trust badges and the node it came from. Dataset: the
record's metadata, distributions, quality breakdown (what each dimension means and what would
raise it), conformance issues found now, provenance, the offers it carries read out as
sentences, and a way to ask one's own connector for access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from catalogue.index import FACETS, SORTS, SearchError, SearchQuery
from catalogue.pages.bounded import bounded_record
from catalogue.pages.labels import label
from catalogue.pages.record import title_in, view
from catalogue.store import LOCAL_SOURCE
from connector.pages.web import PAGES, PageKit

if TYPE_CHECKING:
    from catalogue.api import CatalogueNode

PAGE_SIZE: Final = 10
FACET_TITLES: Final = {
    "theme": "Theme",
    "publisher": "Publisher",
    "format": "Format",
    "license": "Licence",
    "access_rights": "Access rights",
    "spatial": "Place",
    "health_category": "Health category",
    "quality_band": "Quality",
}
# Facet values listed per facet before the list is cut (the index returns at most 50).
FACET_VALUES_SHOWN: Final = 12
MAX_PARAMETER_CHARS: Final = 1000
MAX_FILTER_VALUES: Final = 20


def language_of(request: Request) -> str:
    """The reader's first language from ``Accept-Language`` (two letters), English by default."""
    header = request.headers.get("accept-language", "")[:200]
    first = header.split(",", 1)[0].split(";", 1)[0].strip().lower()
    code = first.split("-", 1)[0]
    return code if len(code) == 2 and code.isalpha() else "en"


def _publisher_names(hits: list[dict[str, Any]]) -> dict[str, str]:
    return {
        str(hit["publisher"]): str(hit.get("publisher_name") or "") for hit in hits if hit.get("publisher")
    }


def browse_router(kit: PageKit, node: CatalogueNode) -> APIRouter:
    router = APIRouter(prefix=f"{PAGES}/catalogue", include_in_schema=False)

    @router.get("/search")
    async def search(request: Request) -> Response:
        params = request.query_params
        q = params.get("q", "")[:MAX_PARAMETER_CHARS]
        sort = params.get("sort", "relevance")
        filters = {
            name: [v[:MAX_PARAMETER_CHARS] for v in params.getlist(name)[:MAX_FILTER_VALUES]]
            for name in FACETS
            if params.getlist(name)
        }
        errors: dict[str, list[str]] = {}
        page_text = params.get("page", "1")
        page = int(page_text) if page_text.isdigit() and 0 < int(page_text) < 100_000 else 0
        if page == 0:
            errors["page"] = ["the page is a whole number from 1"]
            page = 1
        if sort not in SORTS:
            errors["sort"] = [f"sort by one of {', '.join(SORTS)}"]
            sort = "relevance"
        try:
            result = await run_in_threadpool(
                node.index.search, SearchQuery(q, filters, sort, page, PAGE_SIZE)
            )
        except SearchError as error:
            errors.setdefault(error.field, []).append(error.reason)
            result = await run_in_threadpool(
                node.index.search, SearchQuery("", filters, "relevance", 1, PAGE_SIZE)
            )
        body = result.to_json()
        hits = body["hits"]
        language = language_of(request)
        for hit in hits:
            record = node.store.current(hit["id"])
            if record is not None and not record.deleted and language != "en":
                title, lang = title_in(record, language)
                if title and lang == language:
                    hit["title"], hit["lang"] = title, lang
            quality = (
                record.quality.get("quality", record.quality)
                if record and isinstance(record.quality, dict)
                else {}
            )
            trust = quality.get("trust", {}) if isinstance(quality, dict) else {}
            hit["trust"] = {key: bool(value) for key, value in (trust or {}).items()}
            source = record.source if record else LOCAL_SOURCE
            hit["source"] = "this node" if source == LOCAL_SOURCE else (urlsplit(source).netloc or source)
        names = _publisher_names(hits)

        def link(**changes: Any) -> str:
            query: list[tuple[str, str]] = []
            state = {"q": q, "sort": sort, **{name: list(values) for name, values in filters.items()}}
            state.update(changes)
            for key, value in state.items():
                if key == "page" or value in ("", None, []):
                    continue
                if key == "sort" and value == "relevance":
                    continue
                for item in value if isinstance(value, list) else [value]:
                    query.append((key, str(item)))
            if changes.get("page", 1) != 1:
                query.append(("page", str(changes["page"])))
            return f"{PAGES}/catalogue/search" + (f"?{urlencode(query)}" if query else "")

        facets = []
        for name in FACETS:
            values = body["facets"].get(name, [])[:FACET_VALUES_SHOWN]
            if not values:
                continue
            chosen = set(filters.get(name, []))
            items = []
            for value in values:
                selected = value["code"] in chosen or value["value"] in chosen
                others = [v for v in filters.get(name, []) if v not in (value["code"], value["value"])]
                items.append(
                    {
                        "label": names.get(value["value"]) or label(value["value"]),
                        "count": value["count"],
                        "selected": selected,
                        "href": link(
                            **{name: others if selected else [*filters.get(name, []), value["code"]]}
                        ),
                    }
                )
            facets.append({"name": name, "title": FACET_TITLES.get(name, name), "options": items})
        full = {(name, v["code"]): v["value"] for name, values in body["facets"].items() for v in values}
        chips = [
            {
                "facet": FACET_TITLES.get(name, name),
                "label": names.get(full.get((name, value), value)) or label(full.get((name, value), value)),
                "href": link(**{name: [v for v in values if v != value]}),
            }
            for name, values in filters.items()
            for value in values
        ]
        last_page = max(1, -(-result.total // PAGE_SIZE))
        paging = {
            "page": result.page,
            "last": last_page,
            "previous": link(page=result.page - 1) if result.page > 1 else None,
            "next": link(page=result.page + 1) if result.page < last_page else None,
        }
        status = 400 if errors else 200
        return kit.render(
            request,
            "search.html",
            {
                "title": f"Search: {q}" if q else "Search the catalogue",
                "q": q,
                "sort": sort,
                "sorts": SORTS,
                "result": body,
                "hits": hits,
                "facets": facets,
                "chips": chips,
                "paging": paging,
                "errors": errors,
                "exact": result.facets_exact,
            },
            status,
        )

    @router.get("/datasets/{record_id}")
    async def dataset(request: Request, record_id: str) -> Response:
        if not record_id.replace("-", "").replace("_", "").isalnum() or len(record_id) > 64:
            return kit.error(request, 404, "No such dataset", "Record ids are letters, digits, - and _.")
        record = node.store.current(record_id)
        if record is None:
            return kit.error(request, 404, "No such dataset", f"This catalogue has no record {record_id}.")
        if record.deleted:
            return kit.error(
                request, 410, "Dataset withdrawn", f"Record {record_id} was retracted by its publisher."
            )
        language = language_of(request)

        def build() -> Any:
            from catalogue import validation

            # The page validates what it shows: a bounded part of the record, however large.
            shown = bounded_record(record, language)
            return view(record, validation.validate_record(shown.graph), language, shown)

        shown = await run_in_threadpool(build)
        return kit.render(
            request, "dataset.html", {"title": shown.title, "record": shown, "language": language}
        )

    @router.get("/request-access")
    async def request_access(
        request: Request, dataset: str = "", dsp: str = "", title: str = "", connector: str = ""
    ) -> Response:
        values = {
            "dataset": dataset[:MAX_PARAMETER_CHARS],
            "dsp": dsp[:MAX_PARAMETER_CHARS],
            "title": title[:MAX_PARAMETER_CHARS],
            "connector": connector[:MAX_PARAMETER_CHARS],
        }
        errors: dict[str, list[str]] = {}
        target = None
        try:
            parts = urlsplit(values["connector"])
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
        except ValueError:
            ok = False
        if not ok:
            errors["connector"] = ["give your connector's address, e.g. https://connector.example"]
        else:
            query = urlencode({"dataset": values["dataset"], "dsp": values["dsp"], "title": values["title"]})
            target = f"{values['connector'].rstrip('/')}{PAGES}/request?{query}"
        return kit.render(
            request,
            "request_access.html",
            {"title": "Request access", "values": values, "errors": errors, "target": target},
            400 if errors else 200,
        )

    return router
