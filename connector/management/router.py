"""The management API: what the participant's own people and tools use (bearer-token protected).

Provider side: assets, policy definitions, contract definitions, offering a negotiation to a
participant. Consumer side: fetch a counter-party's catalog or one dataset, start / inspect /
accept / counter-offer / terminate negotiations, list and terminate agreements, start and steer
transfers. Every body is a typed model (documented in the OpenAPI
description); bad input is a 400 problem naming the field.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from connector import policy_gate
from connector.control import ConnectorService, PushDestination, ServiceError
from connector.dsp_client import DspClientError
from connector.http import FieldError, ProblemError, bearer_token
from connector.management._limits import check_depth
from connector.management.listings import PageQuery, paged
from connector.store import AssetRecord, ContractDefinition, ProcessRecord

#: Longest identifier accepted for assets, policies and definitions.
MAX_ID_CHARS = 512
#: Most assets one contract definition may name.
MAX_ASSETS_PER_DEFINITION = 1000

_ID = Field(min_length=1, max_length=MAX_ID_CHARS)


class AssetData(BaseModel):
    kind: Literal["parquet", "csv", "duckdb"]
    path: str = Field(min_length=1, max_length=4096, description="relative to the data root")
    table: str | None = Field(default=None, max_length=256)


class AssetIn(BaseModel):
    id: str = _ID
    title: str = Field(min_length=1, max_length=2000)
    dataset: dict[str, Any] = Field(default_factory=dict, description="DCAT JSON-LD of the dataset")
    data: AssetData

    _dataset_depth = field_validator("dataset")(check_depth)


class PolicyIn(BaseModel):
    id: str = _ID
    policy: dict[str, Any] = Field(description="ODRL JSON-LD")

    _policy_depth = field_validator("policy")(check_depth)


class ContractDefinitionIn(BaseModel):
    id: str = _ID
    access_policy_id: str = _ID
    contract_policy_id: str = _ID
    asset_ids: list[str] = Field(min_length=1, max_length=MAX_ASSETS_PER_DEFINITION)


def _http_address(value: str) -> str:
    """A counter-party's DSP base URL must be an absolute http(s) URL with a host and a valid port.

    Checked here so that a typo is a 400 naming the field, not a background failure or a 5xx.
    """
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL with a host, e.g. https://provider.example/dsp")
    if port == 0:
        raise ValueError("port 0 is not a port a peer listens on")
    return value


_ADDRESS = Field(min_length=1, max_length=2048, description="the peer's DSP base URL")


class CatalogRequestIn(BaseModel):
    counterparty_address: str = _ADDRESS
    _address = field_validator("counterparty_address")(_http_address)
    counterparty_id: str | None = Field(default=None, max_length=MAX_ID_CHARS, description="the peer's DID")


class DatasetRequestIn(CatalogRequestIn):
    dataset_id: str = _ID


class OfferOut(BaseModel):
    counterparty_address: str = _ADDRESS
    _address = field_validator("counterparty_address")(_http_address)
    counterparty_id: str = _ID
    offer_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="one of our catalog offers' @id")


class CounterOfferIn(BaseModel):
    offer: dict[str, Any] = Field(description="the DSP Offer we ask for instead (its @id names the offer)")
    _offer_depth = field_validator("offer")(check_depth)


class NegotiationIn(BaseModel):
    counterparty_address: str = _ADDRESS
    _address = field_validator("counterparty_address")(_http_address)
    counterparty_id: str = _ID
    dataset_id: str = _ID
    offer: dict[str, Any] = Field(description="the DSP Offer from the peer's catalog")
    _offer_depth = field_validator("offer")(check_depth)
    purpose: str | None = Field(
        default=None, max_length=MAX_ID_CHARS, description="purpose IRI declared to the provider"
    )
    compute_site: str | None = Field(
        default=None, max_length=MAX_ID_CHARS, description="place IRI where the data will be processed"
    )
    auto_accept: bool = Field(default=False, description="accept a counter-offer without asking")


class TerminateIn(BaseModel):
    reason: str = Field(default="terminated by the user", max_length=1000)


class JobIn(BaseModel):
    id: str = _ID
    purpose: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    compute_site: str | None = Field(default=None, max_length=MAX_ID_CHARS)


class PushDestinationIn(BaseModel):
    """Where an HTTP push goes, with the credentials the provider writes with."""

    endpoint: str = _ADDRESS
    _endpoint = field_validator("endpoint")(_http_address)
    authorization: str | None = Field(default=None, max_length=4096, pattern=r"^[^\r\n\x00]*$")
    auth_type: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
    media_type: Literal["application/vnd.apache.arrow.stream", "application/vnd.apache.parquet"] = (
        "application/vnd.apache.arrow.stream"
    )


class TransferIn(BaseModel):
    agreement_id: str = _ID
    counterparty_address: str = _ADDRESS
    _address = field_validator("counterparty_address")(_http_address)
    format: str = Field(default="HttpData-PULL", max_length=128)
    job: JobIn | None = None
    destination: PushDestinationIn | None = Field(
        default=None,
        description="HttpData-PUSH only: where the provider writes the data (default: our /push endpoint)",
    )


def _negotiation_json(record: ProcessRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "role": record.role,
        "state": record.state,
        "counterparty_id": record.counterparty_id,
        "dataset_id": record.details.get("dataset_id"),
        "provider_pid": record.provider_pid,
        "consumer_pid": record.consumer_pid,
    }
    if record.agreement_id:
        body["agreement_id"] = record.agreement_id
    if record.error:
        body["error"] = record.error
    if record.details.get("offer"):
        body["offer"] = record.details["offer"]
    return body


def _transfer_json(record: ProcessRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "role": record.role,
        "state": record.state,
        "agreement_id": record.agreement_id,
        "counterparty_id": record.counterparty_id,
        "provider_pid": record.provider_pid,
        "consumer_pid": record.consumer_pid,
        "job_id": record.details.get("job_id"),
        "format": record.details.get("format"),
    }
    if record.details.get("data_address"):
        body["data_address"] = record.details["data_address"]
    if record.details.get("push_endpoint"):
        body["push_destination"] = record.details["push_endpoint"]
    if record.details.get("received"):
        body["received"] = record.details["received"]
    if record.error:
        body["error"] = record.error
    return body


def _asset_json(asset: AssetRecord) -> dict[str, Any]:
    return {
        "id": asset.id,
        "title": asset.title,
        "dataset": asset.dataset,
        "data": {"kind": asset.data_kind, "path": asset.data_path, "table": asset.data_table},
    }


def _definition_json(definition: ContractDefinition) -> dict[str, Any]:
    return {
        "id": definition.id,
        "access_policy_id": definition.access_policy_id,
        "contract_policy_id": definition.contract_policy_id,
        "asset_ids": list(definition.asset_ids),
    }


#: A listing filter's value: an identifier, bounded like every other.
Filter = Annotated[str | None, Query(min_length=1, max_length=MAX_ID_CHARS)]
NegotiationStateName = Literal[
    "REQUESTED", "OFFERED", "ACCEPTED", "AGREED", "VERIFIED", "FINALIZED", "TERMINATED"
]
TransferStateName = Literal["REQUESTED", "STARTED", "SUSPENDED", "COMPLETED", "TERMINATED"]
RoleName = Literal["provider", "consumer"]


def _where(**filters: str | None) -> dict[str, Any]:
    """The filters given (``None`` means "any")."""
    return {column: value for column, value in filters.items() if value is not None}


def _problem(error: ServiceError) -> ProblemError:
    errors = [FieldError(error.field, error.reason)] if error.field else []
    return ProblemError(error.status, error.code, error.reason, code=error.code, errors=errors)


class _ServiceErrorsAsProblems(APIRoute):
    """The router's one exception mapping: a ``ServiceError`` from any route is a problem."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def mapped(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as error:
                raise _problem(error) from None

        return mapped


def management_router(service: ConnectorService, token: str) -> APIRouter:
    expected = token.encode()

    # async: a comparison with no I/O, answered on the event loop rather than in a thread of
    # its own before every management request
    async def require_token(request: Request) -> None:
        given = bearer_token(request.headers.get("authorization"))
        if not given or not hmac.compare_digest(given.encode(), expected):
            raise ProblemError(
                401, "Unauthorized", "a valid management bearer token is required", code="unauthorized"
            )

    router = APIRouter(
        prefix="/management",
        tags=["management"],
        dependencies=[Depends(require_token)],
        route_class=_ServiceErrorsAsProblems,
    )
    store = service.store

    @router.post("/assets", status_code=201, summary="Register an asset: a dataset and where its data is")
    def put_asset(asset: AssetIn) -> dict[str, str]:
        if ".." in asset.data.path.split("/") or asset.data.path.startswith("/"):
            raise ProblemError(
                400,
                "Invalid asset",
                "data.path must stay inside the data root",
                errors=[FieldError("data.path", "must be relative, without ..")],
            )
        store.put_asset(
            AssetRecord(
                asset.id, asset.title, asset.dataset, asset.data.kind, asset.data.path, asset.data.table
            )
        )
        return {"id": asset.id}

    @router.get("/assets", summary="Assets, paged (X-Total-Count, Link); q matches id or title")
    def list_assets(request: Request, response: Response, page: PageQuery) -> list[dict[str, Any]]:
        found, total = store.page_assets(page.limit, page.offset, page.q)
        return paged([_asset_json(a) for a in found], total, page, request, response)

    @router.get("/assets/{asset_id}", summary="One asset: its dataset record and where its data is")
    def get_asset(asset_id: str) -> dict[str, Any]:
        asset = store.get_asset(asset_id)
        if asset is None:
            raise ProblemError(404, "Unknown asset", f"no asset {asset_id}", code="unknown-asset")
        return _asset_json(asset)

    @router.get("/policies", summary="Policy definitions, paged (X-Total-Count, Link); q matches the id")
    def list_policies(request: Request, response: Response, page: PageQuery) -> list[dict[str, Any]]:
        found, total = store.page_policies(page.limit, page.offset, page.q)
        shown = [{"id": pid, "policy": policy} for pid, policy in found]
        return paged(shown, total, page, request, response)

    @router.get("/policies/{policy_id}", summary="One policy definition (ODRL)")
    def get_policy(policy_id: str) -> dict[str, Any]:
        policy = store.get_policy(policy_id)
        if policy is None:
            raise ProblemError(404, "Unknown policy", f"no policy {policy_id}", code="unknown-policy")
        return {"id": policy_id, "policy": policy}

    @router.get("/contract-definitions", summary="Contract definitions (offers), paged; q matches the id")
    def list_definitions(
        request: Request, response: Response, page: PageQuery
    ) -> list[dict[str, Any]]:
        every = [d for d in store.contract_definitions() if not page.q or page.q in d.id]
        chosen = every[page.offset : page.offset + page.limit]
        return paged([_definition_json(d) for d in chosen], len(every), page, request, response)

    @router.post("/policies", status_code=201, summary="Register a policy definition (ODRL)")
    def put_policy(body: PolicyIn) -> dict[str, str]:
        try:
            policy_gate.offer_for_catalog(body.policy, "urn:check")
        except Exception as error:
            raise ProblemError(
                400, "Invalid policy", str(error), errors=[FieldError("policy", str(error))]
            ) from None
        store.put_policy(body.id, body.policy)
        return {"id": body.id}

    @router.post(
        "/contract-definitions", status_code=201, summary="Offer assets under an access and a contract policy"
    )
    def put_definition(body: ContractDefinitionIn) -> dict[str, str]:
        for name in ("access_policy_id", "contract_policy_id"):
            if store.get_policy(getattr(body, name)) is None:
                raise ProblemError(
                    400,
                    "Unknown policy",
                    f"no policy {getattr(body, name)}",
                    errors=[FieldError(name, "no such policy")],
                )
        for index, asset_id in enumerate(body.asset_ids):
            if store.get_asset(asset_id) is None:
                raise ProblemError(
                    400,
                    "Unknown asset",
                    f"no asset {asset_id}",
                    errors=[FieldError(f"asset_ids.{index}", "no such asset")],
                )
        store.put_contract_definition(
            ContractDefinition(body.id, body.access_policy_id, body.contract_policy_id, tuple(body.asset_ids))
        )
        return {"id": body.id}

    @router.post("/catalog/request", summary="Fetch a counter-party's DSP catalog")
    async def catalog_request(body: CatalogRequestIn) -> dict[str, Any]:
        audience = body.counterparty_id or _did_for_address(body.counterparty_address)
        await run_in_threadpool(service.check_endpoint, body.counterparty_address, audience)
        try:
            response = await run_in_threadpool(service.client.catalog, body.counterparty_address, audience)
        except DspClientError as error:
            raise ProblemError(502, "Counter-party unreachable", str(error), code="unreachable") from None
        if response.status != 200 or response.body is None:
            raise ProblemError(
                502,
                "Catalog refused",
                f"the counter-party answered HTTP {response.status}",
                code="catalog-refused",
                extra={"counterparty_error": response.body},
            )
        return response.body

    @router.post("/catalog/dataset", summary="Fetch one dataset of a counter-party's DSP catalog")
    async def dataset_request(body: DatasetRequestIn) -> dict[str, Any]:
        audience = body.counterparty_id or _did_for_address(body.counterparty_address)
        await run_in_threadpool(service.check_endpoint, body.counterparty_address, audience)
        url = f"{body.counterparty_address.rstrip('/')}/catalog/datasets/{quote(body.dataset_id, safe=':')}"
        try:
            response = await run_in_threadpool(service.client.get, url, audience)
        except DspClientError as error:
            raise ProblemError(502, "Counter-party unreachable", str(error), code="unreachable") from None
        if response.status != 200 or response.body is None:
            raise ProblemError(
                502 if response.status != 404 else 404,
                "Dataset refused",
                f"the counter-party answered HTTP {response.status}",
                code="dataset-refused",
                extra={"counterparty_error": response.body},
            )
        return response.body

    @router.post(
        "/negotiations/offers",
        status_code=201,
        summary="Start a contract negotiation as provider, with an offer",
    )
    def offer_negotiation(body: OfferOut) -> dict[str, str]:
        record = service.offer_negotiation(body.counterparty_address, body.counterparty_id, body.offer_id)
        return {"id": record.id}

    @router.post("/negotiations/{negotiation_id}/request", summary="Counter-offer: ask for another offer")
    def counter_offer(negotiation_id: str, body: CounterOfferIn) -> dict[str, Any]:
        return _negotiation_json(service.counter_offer(negotiation_id, body.offer))

    @router.post("/negotiations", status_code=201, summary="Start a contract negotiation as consumer")
    async def start_negotiation(body: NegotiationIn) -> dict[str, str]:
        # async, with the blocking part in one thread hop: a sync route would also hop to a
        # thread to check its answer against the response model (the hottest management call)
        record = await run_in_threadpool(
            functools.partial(
                service.start_negotiation,
                body.counterparty_address,
                body.counterparty_id,
                body.dataset_id,
                body.offer,
                purpose=body.purpose,
                compute_site=body.compute_site,
                auto_accept=body.auto_accept,
            )
        )
        return {"id": record.id}

    @router.get("/negotiations", summary="Negotiations, paged (X-Total-Count, Link) and filtered")
    def list_negotiations(
        request: Request,
        response: Response,
        page: PageQuery,
        state: NegotiationStateName | None = None,
        role: RoleName | None = None,
        counterparty_id: Filter = None,
        agreement_id: Filter = None,
    ) -> list[dict[str, Any]]:
        where = _where(state=state, role=role, counterparty_id=counterparty_id, agreement_id=agreement_id)
        found, total = store.page_processes("negotiation", where, page.limit, page.offset, page.q)
        return paged([_negotiation_json(r) for r in found], total, page, request, response)

    @router.get("/negotiations/{negotiation_id}", summary="One negotiation: state, agreement id, error")
    def get_negotiation(negotiation_id: str) -> dict[str, Any]:
        record = store.get_process(negotiation_id, "negotiation")
        if record is None:
            raise ProblemError(
                404, "Unknown negotiation", f"no negotiation {negotiation_id}", code="unknown-negotiation"
            )
        return _negotiation_json(record)

    @router.post("/negotiations/{negotiation_id}/accept", summary="Accept the provider's current offer")
    def accept(negotiation_id: str) -> dict[str, Any]:
        return _negotiation_json(service.accept_offer(negotiation_id))

    @router.post("/negotiations/{negotiation_id}/terminate", summary="Terminate a negotiation")
    def terminate_negotiation(negotiation_id: str, body: TerminateIn | None = None) -> dict[str, Any]:
        return _negotiation_json(
            service.terminate_negotiation(negotiation_id, (body or TerminateIn()).reason)
        )

    @router.get("/agreements", summary="Agreements, paged (X-Total-Count, Link) and filtered")
    def list_agreements(
        request: Request,
        response: Response,
        page: PageQuery,
        asset_id: Filter = None,
        consumer_id: Filter = None,
        provider_id: Filter = None,
        terminated: bool | None = None,
    ) -> list[dict[str, Any]]:
        where = _where(asset_id=asset_id, consumer_id=consumer_id, provider_id=provider_id)
        if terminated is not None:
            where["terminated"] = int(terminated)
        found, total = store.page_agreements(where, page.limit, page.offset, page.q)
        return paged([
            {
                "id": a.id,
                "provider_id": a.provider_id,
                "consumer_id": a.consumer_id,
                "asset_id": a.asset_id,
                "terminated": a.terminated,
            }
            for a in found
        ], total, page, request, response)

    @router.get("/agreements/{agreement_id}", summary="One agreement, as signed (and counter-signed)")
    def get_agreement(agreement_id: str) -> dict[str, Any]:
        record = store.get_agreement(agreement_id)
        if record is None:
            raise ProblemError(
                404, "Unknown agreement", f"no agreement {agreement_id}", code="unknown-agreement"
            )
        return record.agreement

    @router.post("/agreements/{agreement_id}/terminate", summary="Revoke an agreement and end its transfers")
    def terminate_agreement(agreement_id: str, body: TerminateIn | None = None) -> dict[str, Any]:
        ended = service.terminate_agreement(
            agreement_id, (body or TerminateIn(reason="agreement terminated")).reason
        )
        return {"id": agreement_id, "terminated": True, "transfers_terminated": [r.id for r in ended]}

    @router.post("/transfers", status_code=201, summary="Start a transfer under an agreement, bound to a job")
    def start_transfer(body: TransferIn) -> dict[str, str]:
        record = service.start_transfer(
            body.agreement_id,
            body.counterparty_address,
            body.format,
            body.job.model_dump() if body.job else None,
            PushDestination(**body.destination.model_dump()) if body.destination else None,
        )
        return {"id": record.id}

    @router.get("/transfers", summary="Transfers, paged (X-Total-Count, Link) and filtered")
    def list_transfers(
        request: Request,
        response: Response,
        page: PageQuery,
        state: TransferStateName | None = None,
        role: RoleName | None = None,
        counterparty_id: Filter = None,
        agreement_id: Filter = None,
    ) -> list[dict[str, Any]]:
        where = _where(state=state, role=role, counterparty_id=counterparty_id, agreement_id=agreement_id)
        found, total = store.page_processes("transfer", where, page.limit, page.offset, page.q)
        return paged([_transfer_json(r) for r in found], total, page, request, response)

    @router.get("/transfers/{transfer_id}", summary="One transfer: state and, once started, its data address")
    def get_transfer(transfer_id: str) -> dict[str, Any]:
        record = store.get_process(transfer_id, "transfer")
        if record is None:
            raise ProblemError(404, "Unknown transfer", f"no transfer {transfer_id}", code="unknown-transfer")
        return _transfer_json(record)

    @router.post(
        "/transfers/{transfer_id}/{command}", summary="suspend, resume, complete or terminate a transfer"
    )
    def transfer_command(
        transfer_id: str,
        command: Literal["suspend", "resume", "complete", "terminate"],
        body: TerminateIn | None = None,
    ) -> dict[str, Any]:
        reason = body.reason if body else ""
        return _transfer_json(service.transfer_command(transfer_id, command, reason))

    return router


def _did_for_address(address: str) -> str:
    """The did:web of a DSP base URL's host, for when the caller did not name the peer's DID."""
    parts = urlsplit(address)
    host = parts.hostname or ""
    return f"did:web:{quote(f'{host}:{parts.port}', safe='') if parts.port else host}"
