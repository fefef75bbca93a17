"""The public transparency register: the agreements a provider concluded on the offers it chose
to list — consumer, dataset, purpose, period, state — as a page, as JSON-LD (DCAT and ODRL
terms, with the context inline so no reader has to fetch one) and as CSV.

No login: this is what a health-data access body publishes about the permits it grants. Only
agreements where this connector is the provider, on contract definitions the provider opted in
(:mod:`connector.pages.register_store`), are listed; nothing else about them is shown.

Cost: anyone may ask, as often as they like, and a provider concludes agreements by the
thousand. So the rows are built at most once per :data:`REFRESH_SECONDS` whatever the traffic
(concurrent requests wait for the one build in progress). A change of which offers are listed,
and an agreement concluded, changed or terminated by this process
(:attr:`~connector.store.Store.agreement_changes`), rebuild at the next request: a terminated
agreement is never shown in force once its termination is committed here (a replica that did
not terminate it catches up within :data:`REFRESH_SECONDS`). Only the agreement writes of the
connector itself rebuild, so a caller cannot force builds by asking more often. Agreements on
offers that are not listed are skipped without reading their policies, and the offer an
agreement came from (fixed once it is concluded) is remembered instead of being read again at
every build.
"""

from __future__ import annotations

import csv
import threading
import time
from io import StringIO
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from connector.catalog import offer_parts
from connector.pages.context import ConnectorPages
from connector.pages.facts import gather
from connector.pages.negotiate import prefers_html
from connector.pages.web import PAGES

# The register lists the most recent agreements first, at most this many per answer.
MAX_REGISTER_ROWS: Final = 5000
# How long one build of the rows is served before the next request builds them again.
REFRESH_SECONDS: Final = 5.0
# Agreements whose offer is remembered (beyond this, the oldest are read again when needed).
MAX_REMEMBERED_OFFERS: Final = 200_000
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

    offers_of_agreements: dict[str, str | None] = {}
    built: list[tuple[float, tuple[frozenset[str], int], list[dict[str, Any]]]] = []
    build_lock = threading.Lock()

    def offer_of(agreement_id: str, negotiation_id: str) -> str | None:
        if agreement_id in offers_of_agreements:
            return offers_of_agreements[agreement_id]
        negotiation = store.get_process(negotiation_id, "negotiation")
        offer = negotiation.details.get("offer") if negotiation else None
        found = str(offer["@id"]) if isinstance(offer, dict) and offer.get("@id") else None
        if len(offers_of_agreements) >= MAX_REMEMBERED_OFFERS:
            offers_of_agreements.pop(next(iter(offers_of_agreements)))
        offers_of_agreements[agreement_id] = found
        return found

    def listed_offers(listed: frozenset[str]) -> set[str]:
        """Offer ids of the listed definitions whose asset and usage policy still exist."""
        offers: set[str] = set()
        for definition in store.contract_definitions():
            if definition.id not in listed or store.get_policy(definition.contract_policy_id) is None:
                continue
            for asset_id in definition.asset_ids:
                if store.get_asset(asset_id) is not None:
                    offers.add(f"{definition.id}\x00{asset_id}")
        return offers

    def build(listed: frozenset[str]) -> list[dict[str, Any]]:
        shown = listed_offers(listed)
        if not shown:
            return []
        found: list[dict[str, Any]] = []
        for record in reversed(store.list_agreements()):
            if record.provider_id != pages.participant:
                continue
            offer = offer_of(record.id, record.negotiation_id)
            parts = offer_parts(offer) if offer else None
            if parts is None or f"{parts[0]}\x00{parts[1]}" not in shown:
                continue
            facts = gather(record, pages.participant, store, None)
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

    def rows() -> list[dict[str, Any]]:
        # the provider's choice is read at every request (one small query): withdrawing an offer
        # from the register takes effect at once, on every replica
        listed = pages.register.listed()
        with build_lock:
            # read before the build: a change committed during it makes the next request rebuild
            version = (listed, store.agreement_changes)
            if built and built[0][1] == version and time.monotonic() - built[0][0] < REFRESH_SECONDS:
                return built[0][2]
            fresh = build(listed)
            built[:] = [(time.monotonic(), version, fresh)]
            return fresh

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
