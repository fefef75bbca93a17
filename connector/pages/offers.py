"""A provider's offers: what it offers under which policy, built from the governance templates.

The list shows each contract definition with its usage policy read out as sentences, the
agreements made on it, and whether the provider lists those agreements in the public register.
The builder combines templates (``policies.templates``) into one offer, shows it as sentences
before anything is saved ("Preview"), and saves it through the same store calls the management
API makes, after the same check (the offer must be one the catalog can publish).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from connector import policy_gate
from connector.catalog import offer_id
from connector.pages.context import ConnectorPages
from connector.pages.web import PAGES
from connector.store import ContractDefinition
from policies import Policy, PolicyError, templates, to_dsp_json
from policies.sentences import policy_sentences
from vocab.hierarchy import purposes

_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,200}")
MAX_READS: Final = 1_000_000_000
MAX_DAYS: Final = 36_500
MAX_GROUP: Final = 1_000_000
OPEN_ACCESS_POLICY: Final = "sluis-pages-anyone"


def _number(form: FormData, name: str, low: int, high: int, errors: dict[str, list[str]]) -> int | None:
    text = str(form.get(name) or "").strip()
    if not text:
        errors.setdefault(name, []).append("give a number")
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        errors.setdefault(name, []).append(f"a whole number from {low} to {high}")
        return None
    return int(text)


def _date(form: FormData, name: str, errors: dict[str, list[str]]) -> datetime | None:
    text = str(form.get(name) or "").strip()
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        errors.setdefault(name, []).append("a date, YYYY-MM-DD")
        return None
    return day


def build_offer(form: FormData, uid: str) -> tuple[Policy | None, dict[str, list[str]]]:
    """The offer the builder's form describes, or the errors by field."""
    errors: dict[str, list[str]] = {}
    parts: list[Policy] = []
    chosen = set(form.getlist("template"))
    if "research-only" in chosen:
        purpose = str(form.get("purpose") or "")
        if purpose not in purposes():
            errors.setdefault("purpose", []).append("choose a purpose")
        else:
            parts.append(templates.research_only(f"{uid}:purpose", purpose))
    if "eu-only-processing" in chosen:
        parts.append(templates.eu_only_processing(f"{uid}:eu"))
    if "time-boxed" in chosen:
        start, end = _date(form, "start", errors), _date(form, "end", errors)
        if start and end and end <= start:
            errors.setdefault("end", []).append("must be after the start")
        elif start and end:
            parts.append(templates.time_boxed(f"{uid}:time", start, end))
    if "max-reads" in chosen and (reads := _number(form, "reads", 1, MAX_READS, errors)) is not None:
        parts.append(templates.max_reads(f"{uid}:reads", reads))
    if "aggregate-only" in chosen and (group := _number(form, "group", 1, MAX_GROUP, errors)) is not None:
        parts.append(templates.aggregate_only(f"{uid}:aggregate", group))
    if "no-commercial-use" in chosen:
        parts.append(templates.no_commercial_use(f"{uid}:nc"))
    if "delete-after" in chosen and (days := _number(form, "days", 1, MAX_DAYS, errors)) is not None:
        parts.append(templates.delete_after(f"{uid}:delete", days))
    if not chosen:
        errors.setdefault("template", []).append("choose at least one template")
    if errors:
        return None, errors
    return templates.combine(uid, *parts), {}


def offers_router(pages: ConnectorPages) -> APIRouter:
    router = APIRouter(prefix=PAGES, include_in_schema=False)
    store = pages.service.store

    def listing() -> list[dict[str, Any]]:
        listed = pages.register.listed()
        agreements = store.list_agreements()
        offers: list[dict[str, Any]] = []
        for definition in store.contract_definitions():
            contract = store.get_policy(definition.contract_policy_id)
            try:
                sentences = policy_sentences(policy_gate.parsed_policy(contract)) if contract else ()
            except (PolicyError, ValueError, TypeError):
                sentences = ()
            offer_ids = {offer_id(definition.id, asset) for asset in definition.asset_ids}
            made = [a for a in agreements if a.asset_id in definition.asset_ids and _offer_of(a) in offer_ids]
            offers.append(
                {
                    "id": definition.id,
                    "assets": list(definition.asset_ids),
                    "policy": definition.contract_policy_id,
                    "access_policy": definition.access_policy_id,
                    "sentences": sentences,
                    "agreements": [
                        {"id": a.id, "consumer": a.consumer_id, "terminated": a.terminated} for a in made
                    ],
                    "listed": definition.id in listed,
                }
            )
        return offers

    def _offer_of(agreement: Any) -> str | None:
        negotiation = store.get_process(agreement.negotiation_id, "negotiation")
        offer = negotiation.details.get("offer") if negotiation else None
        return str(offer.get("@id")) if isinstance(offer, dict) else None

    def _access_policies() -> list[str]:
        return sorted({d.access_policy_id for d in store.contract_definitions()} - {OPEN_ACCESS_POLICY})

    def page(
        request: Request,
        values: dict[str, Any],
        errors: dict[str, list[str]],
        preview: Any,
        status: int = 200,
        saved: str = "",
    ) -> Response:
        offers = listing()
        return pages.kit.render(
            request,
            "offers.html",
            {
                "title": "My offers",
                "offers": offers,
                "values": values,
                "errors": errors,
                "preview": preview,
                "purposes": sorted(
                    ((t, purposes().label(t) or t) for t in purposes().terms()), key=lambda p: p[1]
                ),
                "saved": saved,
                "access_policies": _access_policies(),
                "open_access": OPEN_ACCESS_POLICY,
            },
            status,
        )

    @router.get("/offers")
    async def offers(request: Request, saved: str = "") -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        if not pages.wants_page(request):
            from fastapi.responses import JSONResponse

            items = await run_in_threadpool(listing)
            return JSONResponse(
                [{**item, "sentences": [s.text for s in item["sentences"]]} for item in items]
            )
        return page(request, {"template": []}, {}, None, saved=saved[:200])

    @router.post("/offers")
    async def build(request: Request) -> Response:
        form = await pages.posted(request)
        if isinstance(form, Response):
            return form
        values: dict[str, Any] = {
            name: str(form.get(name) or "")
            for name in ("id", "asset", "access", "purpose", "start", "end", "reads", "group", "days")
        }
        values["template"] = list(form.getlist("template"))
        errors: dict[str, list[str]] = {}
        identifier = values["id"].strip()
        if not _ID.fullmatch(identifier):
            errors["id"] = ["letters, digits, '.', '_', ':' and '-', at most 200"]
        elif any(d.id == identifier for d in store.contract_definitions()):
            errors["id"] = ["an offer with this name exists"]
        if store.get_asset(values["asset"].strip()) is None:
            errors["asset"] = ["no asset with this id on this connector"]
        access = values["access"] or OPEN_ACCESS_POLICY
        if access != OPEN_ACCESS_POLICY and access not in _access_policies():
            errors["access"] = ["choose who may see the offer"]
        policy, template_errors = build_offer(form, f"urn:sluis:offer-policy:{identifier or 'draft'}")
        errors.update(template_errors)
        preview = policy_sentences(policy) if policy else None
        if errors or form.get("action") != "save" or policy is None:
            return page(request, values, errors, preview, 400 if errors else 200)
        document = dict(to_dsp_json(policy))
        try:
            policy_gate.offer_for_catalog(document, "urn:check")
        except (PolicyError, ValueError) as error:
            return page(request, values, {"template": [str(error)]}, preview, 400)
        if store.get_policy(OPEN_ACCESS_POLICY) is None:
            store.put_policy(
                OPEN_ACCESS_POLICY,
                {
                    "@id": f"urn:sluis:{OPEN_ACCESS_POLICY}",
                    "@type": "Offer",
                    "permission": [{"action": "use"}],
                },
            )
        store.put_policy(f"{identifier}-policy", document)
        store.put_contract_definition(
            ContractDefinition(identifier, access, f"{identifier}-policy", (values["asset"].strip(),))
        )
        pages.register.choose(identifier, form.get("listed") == "yes")
        return RedirectResponse(f"{PAGES}/offers?saved={identifier}", status_code=303)

    @router.post("/offers/{definition_id}/register")
    async def choose(request: Request, definition_id: str) -> Response:
        form = await pages.posted(request)
        if isinstance(form, Response):
            return form
        if not any(d.id == definition_id for d in store.contract_definitions()):
            return pages.kit.error(
                request, 404, "No such offer", f"This connector has no offer {definition_id}."
            )
        pages.register.choose(definition_id, form.get("listed") == "yes")
        return RedirectResponse(f"{PAGES}/offers", status_code=303)

    return router
