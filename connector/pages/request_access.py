"""Request access: from a catalogue record to a negotiation started by the team's own connector.

The catalogue's dataset page links here with the dataset IRI and the provider's DSP endpoint. This
connector asks the provider for its catalog (signed with our identity, so the provider shows only
what we may see), reads each offer out as sentences, and — when the person chooses one, with the
purpose and the place of processing they declare — starts the negotiation exactly as the
management API does. The offer is fetched again on submit: what the browser sends is only its id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from connector import policy_gate
from connector.addresses import AddressPolicy, AddressRefused
from connector.control import ServiceError
from connector.dsp_client import DspClientError
from connector.pages.context import ConnectorPages
from connector.pages.web import PAGES
from connector.protocol.discovery import DSP_VERSION, participant_of, version_url
from policies import PolicyError
from policies.sentences import Sentence, policy_sentences
from vocab.hierarchy import places, purposes

# Discovery of the provider's participant id: one small JSON document.
DISCOVERY_TIMEOUT_SECONDS: Final = 10.0
MAX_DISCOVERY_BYTES: Final = 64 * 1024
MAX_PARAMETER_CHARS: Final = 2048
# Offers of one dataset shown on the page; a catalog listing more is cut with a note.
MAX_OFFERS: Final = 20


class AccessError(Exception):
    """The request cannot go on; ``field`` names the form field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class OfferView:
    id: str
    sentences: tuple[Sentence, ...]
    document: dict[str, Any]


def _address(value: str, addresses: AddressPolicy) -> str:
    """The provider's DSP endpoint, if this connector may contact it (the record named it, not us)."""
    if not value or len(value) > MAX_PARAMETER_CHARS:
        raise AccessError("dsp", "give the provider's DSP endpoint (from the dataset's record)")
    try:
        addresses.check_url(value.rstrip("/"), what="the DSP endpoint")
    except AddressRefused as refusal:
        raise AccessError("dsp", str(refusal)) from None
    return value.rstrip("/")


def discover_provider(dsp: str, addresses: AddressPolicy | None = None) -> str:
    """The participant that serves ``dsp``, from its ``/.well-known/dspace-version`` document.

    With ``addresses``, the document's URL is checked and the request goes to the checked
    address (a second resolution of the name could answer with an internal one)."""
    # The address comes from a catalogue record, which anyone may publish: the answer is read
    # up to the limit only, never whole into memory.
    url = version_url(dsp)
    headers: dict[str, str] = {}
    extensions: dict[str, str] = {}
    if addresses is not None:
        try:
            checked = addresses.check_url(url, what="the DSP endpoint")
        except AddressRefused as refusal:
            raise AccessError("dsp", str(refusal)) from None
        url, headers, extensions = checked.pinned()
    body = bytearray()
    try:
        with (
            httpx.Client(timeout=DISCOVERY_TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream("GET", url, headers=headers, extensions=extensions) as response,
        ):
            status = response.status_code
            if status == 200:
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_DISCOVERY_BYTES:
                        break
    except httpx.HTTPError as error:
        raise AccessError("dsp", f"the provider's connector did not answer: {error}") from None
    if status != 200:
        raise AccessError("dsp", f"the provider's connector answered HTTP {status}")
    if len(body) > MAX_DISCOVERY_BYTES:
        raise AccessError("dsp", f"the provider's version document passes {MAX_DISCOVERY_BYTES} bytes")
    try:
        participant = participant_of(json.loads(body))
    except (ValueError, RecursionError):
        participant = None
    if participant is None:
        raise AccessError("dsp", f"the connector does not say which participant serves DSP {DSP_VERSION}")
    return participant


def _offers_of(catalog: Mapping[str, Any], dataset: str) -> list[dict[str, Any]]:
    datasets = catalog.get("dataset") or catalog.get("dcat:dataset") or []
    for item in datasets if isinstance(datasets, list) else [datasets]:
        if isinstance(item, dict) and item.get("@id") == dataset:
            offers = item.get("hasPolicy") or item.get("odrl:hasPolicy") or []
            listed = offers if isinstance(offers, list) else [offers]
            return [dict(offer) for offer in listed if isinstance(offer, dict)][:MAX_OFFERS]
    return []


def _view(offer: dict[str, Any]) -> OfferView:
    try:
        sentences = policy_sentences(policy_gate.parsed_policy(offer))
    except (PolicyError, ValueError, TypeError) as error:
        sentences = (
            Sentence(
                "permission", str(offer.get("@id")), f"This offer could not be read ({error}).", ("offer",)
            ),
        )
    return OfferView(str(offer.get("@id", "")), sentences, offer)


def _choices(hierarchy_terms: frozenset[str], label: Any) -> list[tuple[str, str]]:
    return sorted(((term, label(term) or term) for term in hierarchy_terms), key=lambda pair: pair[1])


def request_router(pages: ConnectorPages) -> APIRouter:
    router = APIRouter(prefix=PAGES, include_in_schema=False)
    service = pages.service

    def fetch(dataset: str, dsp: str, provider: str) -> tuple[str, list[OfferView]]:
        provider_id = provider or discover_provider(dsp, pages.addresses)
        try:
            service.check_endpoint(dsp, provider_id)
        except ServiceError as refused:
            raise AccessError("dsp", refused.reason) from None
        try:
            response = service.client.catalog(dsp, provider_id)
        except DspClientError as error:
            raise AccessError("dsp", f"the provider's connector did not answer: {error}") from None
        if response.status != 200 or not isinstance(response.body, dict):
            raise AccessError("dsp", f"the provider refused the catalog request (HTTP {response.status})")
        return provider_id, [_view(offer) for offer in _offers_of(response.body, dataset)]

    def page(
        request: Request,
        values: dict[str, str],
        errors: dict[str, list[str]],
        offers: list[OfferView],
        status: int = 200,
    ) -> Response:
        return pages.kit.render(
            request,
            "request.html",
            {
                "title": "Request access",
                "values": values,
                "errors": errors,
                "offers": offers,
                "purposes": _choices(purposes().terms(), purposes().label),
                "places": _choices(places().terms(), places().label),
            },
            status,
        )

    @router.get("/request")
    async def request_form(request: Request, dataset: str = "", dsp: str = "", title: str = "") -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        values = {
            "dataset": dataset[:MAX_PARAMETER_CHARS],
            "dsp": dsp[:MAX_PARAMETER_CHARS],
            "title": title[:MAX_PARAMETER_CHARS],
            "provider": "",
        }
        if not dataset and not dsp:
            return page(request, values, {}, [])
        try:
            address = _address(dsp, pages.addresses)
            if not dataset:
                raise AccessError("dataset", "give the dataset's IRI")
            provider_id, offers = await run_in_threadpool(fetch, dataset, address, "")
        except AccessError as error:
            return page(request, values, {error.field: [error.reason]}, [], 400)
        values["provider"] = provider_id
        errors = (
            {} if offers else {"dataset": ["the provider offers nothing for this dataset to this connector"]}
        )
        return page(request, values, errors, offers)

    @router.post("/request")
    async def request_access(request: Request) -> Response:
        form = await pages.posted(request)
        if isinstance(form, Response):
            return form
        values = {
            name: str(form.get(name) or "")[:MAX_PARAMETER_CHARS]
            for name in ("dataset", "dsp", "provider", "offer", "purpose", "compute_site", "title")
        }
        errors: dict[str, list[str]] = {}
        if values["purpose"] not in purposes():
            errors.setdefault("purpose", []).append("choose the purpose you will use the data for")
        if values["compute_site"] not in places():
            errors.setdefault("compute_site", []).append("choose where the data will be processed")
        try:
            address = _address(values["dsp"], pages.addresses)
            provider_id, offers = await run_in_threadpool(
                fetch, values["dataset"], address, values["provider"]
            )
        except AccessError as error:
            return page(request, values, {error.field: [error.reason]}, [], 400)
        chosen = next((offer for offer in offers if offer.id == values["offer"]), None)
        if chosen is None:
            errors.setdefault("offer", []).append("choose one of the offers listed")
        if errors or chosen is None:
            return page(request, {**values, "provider": provider_id}, errors, offers, 400)
        try:
            record = await run_in_threadpool(
                lambda: service.start_negotiation(
                    address,
                    provider_id,
                    values["dataset"],
                    chosen.document,
                    purpose=values["purpose"],
                    compute_site=values["compute_site"],
                    auto_accept=True,
                )
            )
        except ServiceError as error:
            return page(request, values, {error.field or "offer": [error.reason]}, offers, error.status)
        return RedirectResponse(f"{PAGES}/negotiations/{record.id}", status_code=303)

    return router
