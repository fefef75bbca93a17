"""Pages of a connector's contracts: agreements (with policy sentences, signatures and reads),
transfers, negotiations (with live progress), and terminating an agreement.

Each page is also the JSON of the same facts for a client that asks for JSON. Terminating goes
through :meth:`ConnectorService.terminate_agreement`, the same call as the management API: the
transfers end, the peer is told, and the data plane refuses the next read.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from connector.control import ServiceError
from connector.pages.consumer_reads import reads_from_provider
from connector.pages.context import ConnectorPages
from connector.pages.facts import AgreementFacts, gather
from connector.pages.web import PAGES
from connector.store import ProcessRecord

# Agreements checked for signatures on one list page (each check resolves two DID documents).
MAX_LISTED_AGREEMENTS: Final = 200
MAX_REASON_CHARS: Final = 1000
FINAL_NEGOTIATION_STATES: Final = ("FINALIZED", "TERMINATED")
FINAL_TRANSFER_STATES: Final = ("COMPLETED", "TERMINATED")


def _process_json(record: ProcessRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "role": record.role,
        "state": record.state,
        "counterparty_id": record.counterparty_id,
        "agreement_id": record.agreement_id,
        "dataset_id": record.details.get("dataset_id"),
        "job_id": record.details.get("job_id"),
        "error": record.error,
    }


def contracts_router(pages: ConnectorPages) -> APIRouter:
    router = APIRouter(prefix=PAGES, include_in_schema=False)
    service = pages.service
    store = service.store

    def facts(agreement_id: str, *, signatures: bool) -> AgreementFacts | None:
        record = store.get_agreement(agreement_id)
        if record is None:
            return None
        resolver = pages.resolver if signatures else None
        return gather(record, pages.participant, store, pages.reads, resolver)

    @router.get("/agreements")
    async def agreements(request: Request) -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal

        def listing() -> list[AgreementFacts]:
            records = store.list_agreements()[-MAX_LISTED_AGREEMENTS:]
            return [
                gather(r, pages.participant, store, pages.reads, pages.resolver) for r in reversed(records)
            ]

        items = await run_in_threadpool(listing)
        return pages.answer(
            request,
            "agreements.html",
            {"title": "Agreements", "agreements": items},
            [item.to_json() for item in items],
        )

    @router.get("/agreements/{agreement_id}")
    async def agreement(request: Request, agreement_id: str, terminated: str = "") -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        found = await run_in_threadpool(lambda: facts(agreement_id, signatures=True))
        if found is None:
            return _missing(pages, request, "agreement", agreement_id)
        transfers = [
            _process_json(r) for r in store.processes_for_agreement(agreement_id) if r.kind == "transfer"
        ]
        consumer_reads = None
        if found.role == "consumer":
            consumer_reads = await run_in_threadpool(
                reads_from_provider, agreement_id, store, pages.key, pages.addresses, pages.resolver
            )
        return pages.answer(
            request,
            "agreement.html",
            {
                "title": f"Agreement {agreement_id}",
                "agreement": found,
                "transfers": transfers,
                "just_terminated": bool(terminated),
                "consumer_reads": consumer_reads,
            },
            {
                **found.to_json(),
                "transfers": transfers,
                **({"reads_seen": vars(consumer_reads)} if consumer_reads else {}),
            },
        )

    @router.post("/agreements/{agreement_id}/terminate")
    async def terminate(request: Request, agreement_id: str) -> Response:
        form = await pages.posted(request)
        if isinstance(form, Response):
            return form
        reason = str(form.get("reason") or "terminated on the agreements page")[:MAX_REASON_CHARS]
        try:
            await run_in_threadpool(service.terminate_agreement, agreement_id, reason)
        except ServiceError as error:
            return pages.kit.error(request, error.status, "The agreement was not terminated", error.reason)
        return RedirectResponse(f"{PAGES}/agreements/{agreement_id}?terminated=1", status_code=303)

    @router.get("/transfers")
    async def transfers(request: Request) -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        items = [
            _process_json(r) for r in reversed(store.list_processes("transfer")[-MAX_LISTED_AGREEMENTS:])
        ]
        return pages.answer(request, "transfers.html", {"title": "Transfers", "transfers": items}, items)

    @router.get("/negotiations")
    async def negotiations(request: Request) -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        items = [
            _process_json(r) for r in reversed(store.list_processes("negotiation")[-MAX_LISTED_AGREEMENTS:])
        ]
        return pages.answer(
            request, "negotiations.html", {"title": "Negotiations", "negotiations": items}, items
        )

    @router.get("/negotiations/{negotiation_id}")
    async def negotiation(request: Request, negotiation_id: str) -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        record = store.get_process(negotiation_id, "negotiation")
        if record is None:
            return _missing(pages, request, "negotiation", negotiation_id)
        body = _process_json(record)
        return pages.answer(
            request,
            "negotiation.html",
            {
                "title": f"Negotiation {negotiation_id}",
                "negotiation": body,
                "final_states": " ".join(FINAL_NEGOTIATION_STATES),
            },
            body,
        )

    return router


def _missing(pages: ConnectorPages, request: Request, what: str, identifier: str) -> Response:
    if pages.wants_page(request):
        return pages.kit.error(request, 404, f"No such {what}", f"This connector has no {what} {identifier}.")
    from fastapi.responses import JSONResponse

    return JSONResponse(
        {
            "type": f"https://w3id.org/sluis/problems/unknown-{what}",
            "title": f"Unknown {what}",
            "status": 404,
            "detail": f"no {what} {identifier}",
        },
        status_code=404,
        media_type="application/problem+json",
    )
