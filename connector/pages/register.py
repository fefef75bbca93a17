"""The public transparency register: the agreements a provider concluded on the offers it chose
to list — consumer, dataset, purpose, period, state — as a page, as JSON-LD (DCAT and ODRL
terms, with the context inline so no reader has to fetch one) and as CSV.

No login: this is what a health-data access body publishes about the permits it grants. Only
agreements where this connector is the provider, on contract definitions the provider opted in
(:mod:`connector.pages.register_store`), are listed; nothing else about them is shown.
"""

from __future__ import annotations

import csv
from io import StringIO
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from connector.pages.context import ConnectorPages
from connector.pages.facts import gather
from connector.pages.negotiate import prefers_html
from connector.pages.web import PAGES

# The register lists the most recent agreements first, at most this many per answer.
MAX_REGISTER_ROWS: Final = 5000
CSV_COLUMNS: Final = ("agreement", "consumer", "dataset", "purpose", "concluded", "ends", "state")
JSON_LD_CONTEXT: Final = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "dpv": "https://w3id.org/dpv#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "assigner": {"@id": "odrl:assigner", "@type": "@id"},
    "assignee": {"@id": "odrl:assignee", "@type": "@id"},
    "target": {"@id": "odrl:target", "@type": "@id"},
    "purpose": {"@id": "dpv:hasPurpose", "@type": "@id"},
    "concluded": {"@id": "dct:issued", "@type": "xsd:dateTime"},
    "ends": {"@id": "dct:valid", "@type": "xsd:dateTime"},
    "state": "dct:status",
}


def register_router(pages: ConnectorPages) -> APIRouter:
    router = APIRouter(prefix=PAGES, include_in_schema=False)
    service = pages.service
    store = service.store

    def rows() -> list[dict[str, Any]]:
        listed = pages.register.listed()
        if not listed:
            return []
        found: list[dict[str, Any]] = []
        for record in reversed(store.list_agreements()):
            if record.provider_id != pages.participant:
                continue
            facts = gather(record, pages.participant, store, None)
            offer = pages.catalog.find_offer(facts.offer_id) if facts.offer_id else None
            if offer is None or offer[1].id not in listed:
                continue
            found.append(
                {
                    "agreement": facts.id,
                    "consumer": facts.consumer_id,
                    "dataset": facts.dataset,
                    "purpose": facts.purpose or "",
                    "concluded": facts.signed_at or "",
                    "ends": facts.ends or "",
                    "state": facts.state,
                }
            )
            if len(found) >= MAX_REGISTER_ROWS:
                break
        return found

    def as_json_ld(items: list[dict[str, Any]], base: str) -> dict[str, Any]:
        return {
            "@context": JSON_LD_CONTEXT,
            "@id": f"{base}{PAGES}/register",
            "@type": "dcat:Dataset",
            "dct:title": "Transparency register of concluded data-use agreements",
            "dct:publisher": {"@id": pages.participant},
            "dcat:distribution": {
                "@type": "dcat:Distribution",
                "dcat:mediaType": "text/csv",
                "dcat:downloadURL": {"@id": f"{base}{PAGES}/register.csv"},
            },
            "@graph": [
                {
                    "@id": item["agreement"],
                    "@type": "odrl:Agreement",
                    "assigner": pages.participant,
                    "assignee": item["consumer"],
                    "target": item["dataset"],
                    **({"purpose": item["purpose"]} if item["purpose"] else {}),
                    **({"concluded": item["concluded"]} if item["concluded"] else {}),
                    **({"ends": item["ends"]} if item["ends"] else {}),
                    "state": item["state"],
                }
                for item in items
            ],
        }

    @router.get("/register")
    async def register(request: Request) -> Response:
        items = await run_in_threadpool(rows)
        if prefers_html(request.headers.get("accept")):
            return pages.kit.render(
                request,
                "register.html",
                {"title": "Transparency register", "rows": items, "participant": pages.participant},
            )
        return JSONResponse(as_json_ld(items, service.public_url), media_type="application/ld+json")

    @router.get("/register.jsonld")
    async def register_json_ld() -> Response:
        items = await run_in_threadpool(rows)
        return JSONResponse(as_json_ld(items, service.public_url), media_type="application/ld+json")

    @router.get("/register.csv")
    async def register_csv() -> Response:
        items = await run_in_threadpool(rows)
        out = StringIO()
        writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for item in items:
            writer.writerow({key: _cell(str(value)) for key, value in item.items()})
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="register.csv"'},
        )

    return router


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (identifiers never start with these)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
