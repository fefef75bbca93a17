"""The connector's operations as it really serves them, for its published OpenAPI document.

One entry per method and path (:func:`connector.http.openapi.describe` refuses to start if a
route has none). DSP endpoints answer errors as DSP error messages (``application/json``, with
``code`` and ``reason``), the management API and the data plane as problems. DSP message bodies
are JSON-LD in the DSP 2025-1 compact form (checked by the binding, so declared here as
JSON objects with their ``@type``).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI

from connector.http.openapi import Operation, body, content, describe
from connector.http.operations import OPERATIONS

JSON: Final = ("application/json",)
_OBJECT: Final[dict[str, Any]] = {"type": "object"}
_DSP_ERROR: Final[dict[str, Any]] = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["@type", "code"],
            "properties": {
                "@context": {},
                "@type": {"type": "string"},
                "code": {"type": "string"},
                "reason": {"type": "array", "items": {"type": "string"}},
                "providerPid": {"type": "string"},
                "consumerPid": {"type": "string"},
            },
        }
    }
}


def _message(kind: str) -> dict[str, Any]:
    """A DSP message body: JSON-LD in the DSP 2025-1 compact form."""
    return body(
        ("application/json", "application/ld+json"),
        {
            "type": "object",
            "description": f"a DSP 2025-1 {kind} (compact JSON-LD, the DSP context)",
            "required": ["@context", "@type"],
            "properties": {"@context": {}, "@type": {"type": "string", "const": kind}},
        },
    )


_DSP_PROBLEMS: Final = (401, 403, 404, 409, 413, 415, 503)
_DSP_STATE: Final = {200: {"content": content(("application/json",), _OBJECT)}}
_DSP_DONE: Final = {200: {"description": "Message accepted"}}


def _dsp(
    ok: dict[int, Any], message: str | None, *, problems: tuple[int, ...] = _DSP_PROBLEMS
) -> Operation:
    return Operation(
        ok,
        problems,
        _message(message) if message else None,
        error_content=_DSP_ERROR,
    )


def _shadowed(route: str) -> Operation:
    """A literal URL that the state route ``route`` also serves (its id is the last segment)."""
    return Operation(
        {},
        (401, 404),
        error_content=_DSP_ERROR,
        summary=f"GET {route} with this last segment as the id (no such process)",
    )


_MANAGEMENT: Final = (401, 404, 409, 413, 415)
_JSON_OK: Final = {200: {"content": content(JSON, _OBJECT)}}
_JSON_CREATED: Final = {201: {"content": content(JSON, _OBJECT)}}
#: A page of a listing: the total and the neighbouring pages in headers.
_JSON_PAGE: Final = {
    200: {
        "content": content(JSON, {"type": "array", "items": _OBJECT}),
        "headers": {
            "X-Total-Count": {"schema": {"type": "integer"}, "description": "items matching in all"},
            "Link": {"schema": {"type": "string"}, "description": 'rel="next" / rel="prev" pages'},
        },
    }
}
_DATA: Final = (
    "application/vnd.apache.arrow.stream",
    "application/vnd.apache.parquet",
    "text/csv",
)
_READ_PROBLEMS: Final = (401, 403, 404, 406, 413, 503)

CONNECTOR_OPERATIONS: Final[dict[tuple[str, str], Operation]] = {
    ("GET", "/.well-known/dspace-version"): Operation(_JSON_OK),
    ("GET", "/.well-known/did.json"): Operation(
        {200: {"content": content(("application/did+json",), _OBJECT)}}
    ),
    # ---- DSP (errors are DSP error messages) --------------------------------------------------
    ("POST", "/dsp/catalog/request"): _dsp(_DSP_STATE, "CatalogRequestMessage"),
    ("GET", "/dsp/catalog/datasets/{dataset_id}"): _dsp(_DSP_STATE, None),
    ("POST", "/dsp/negotiations/request"): _dsp(
        {201: {"content": content(JSON, _OBJECT)}}, "ContractRequestMessage"
    ),
    ("POST", "/dsp/negotiations/offers"): _dsp(
        {201: {"content": content(JSON, _OBJECT)}}, "ContractOfferMessage"
    ),
    ("GET", "/dsp/negotiations/{pid}"): _dsp(_DSP_STATE, None),
    ("POST", "/dsp/negotiations/{pid}/request"): _dsp(_DSP_DONE, "ContractRequestMessage"),
    ("POST", "/dsp/negotiations/{pid}/offers"): _dsp(_DSP_DONE, "ContractOfferMessage"),
    ("POST", "/dsp/negotiations/{pid}/events"): _dsp(_DSP_DONE, "ContractNegotiationEventMessage"),
    ("POST", "/dsp/negotiations/{pid}/agreement"): _dsp(_DSP_DONE, "ContractAgreementMessage"),
    ("POST", "/dsp/negotiations/{pid}/agreement/verification"): _dsp(
        _DSP_DONE, "ContractAgreementVerificationMessage"
    ),
    ("POST", "/dsp/negotiations/{pid}/termination"): _dsp(
        _DSP_DONE, "ContractNegotiationTerminationMessage"
    ),
    ("POST", "/dsp/transfers/request"): _dsp(
        {201: {"content": content(JSON, _OBJECT)}}, "TransferRequestMessage"
    ),
    ("GET", "/dsp/transfers/{pid}"): _dsp(_DSP_STATE, None),
    ("POST", "/dsp/transfers/{pid}/start"): _dsp(_DSP_DONE, "TransferStartMessage"),
    ("POST", "/dsp/transfers/{pid}/suspension"): _dsp(_DSP_DONE, "TransferSuspensionMessage"),
    ("POST", "/dsp/transfers/{pid}/completion"): _dsp(_DSP_DONE, "TransferCompletionMessage"),
    ("POST", "/dsp/transfers/{pid}/termination"): _dsp(_DSP_DONE, "TransferTerminationMessage"),
    ("GET", "/dsp/negotiations/request"): _shadowed("/dsp/negotiations/{pid}"),
    ("GET", "/dsp/negotiations/offers"): _shadowed("/dsp/negotiations/{pid}"),
    ("GET", "/dsp/transfers/request"): _shadowed("/dsp/transfers/{pid}"),
    # ---- management (operator token; problems) ------------------------------------------------
    ("POST", "/management/assets"): Operation(_JSON_CREATED, _MANAGEMENT),
    ("POST", "/management/policies"): Operation(_JSON_CREATED, _MANAGEMENT),
    ("POST", "/management/contract-definitions"): Operation(_JSON_CREATED, _MANAGEMENT),
    ("POST", "/management/catalog/request"): Operation(_JSON_OK, (*_MANAGEMENT, 502)),
    ("POST", "/management/catalog/dataset"): Operation(_JSON_OK, (*_MANAGEMENT, 502)),
    ("POST", "/management/negotiations/offers"): Operation(_JSON_CREATED, (*_MANAGEMENT, 502)),
    ("POST", "/management/negotiations/{negotiation_id}/request"): Operation(
        _JSON_OK, (*_MANAGEMENT, 502)
    ),
    ("GET", "/management/negotiations"): Operation(_JSON_PAGE, (401,)),
    ("POST", "/management/negotiations"): Operation(_JSON_CREATED, (*_MANAGEMENT, 502)),
    ("GET", "/management/negotiations/{negotiation_id}"): Operation(_JSON_OK, (401, 404)),
    ("POST", "/management/negotiations/{negotiation_id}/accept"): Operation(_JSON_OK, _MANAGEMENT),
    ("POST", "/management/negotiations/{negotiation_id}/terminate"): Operation(
        _JSON_OK, _MANAGEMENT
    ),
    ("GET", "/management/agreements"): Operation(_JSON_PAGE, (401,)),
    ("GET", "/management/agreements/{agreement_id}"): Operation(_JSON_OK, (401, 404)),
    ("POST", "/management/agreements/{agreement_id}/terminate"): Operation(_JSON_OK, _MANAGEMENT),
    ("GET", "/management/transfers"): Operation(_JSON_PAGE, (401,)),
    ("POST", "/management/transfers"): Operation(_JSON_CREATED, (*_MANAGEMENT, 502)),
    ("GET", "/management/transfers/{transfer_id}"): Operation(_JSON_OK, (401, 404)),
    ("POST", "/management/transfers/{transfer_id}/{command}"): Operation(_JSON_OK, _MANAGEMENT),
    ("GET", "/management/assets"): Operation(_JSON_PAGE, (401,)),
    ("GET", "/management/assets/{asset_id}"): Operation(_JSON_OK, (401, 404)),
    ("GET", "/management/policies"): Operation(_JSON_PAGE, (401,)),
    ("GET", "/management/policies/{policy_id}"): Operation(_JSON_OK, (401, 404)),
    ("GET", "/management/contract-definitions"): Operation(_JSON_PAGE, (401,)),
    # ---- push receiving endpoint (a one-transfer secret; problems) ----------------------------
    ("PUT", "/push/{transfer_id}"): Operation(
        {**_JSON_OK, **_JSON_CREATED},
        (401, 409, 413, 415, 422),
        body((*_DATA[:2], "application/octet-stream")),
        notes={
            400: "no or a malformed Content-Digest or Idempotency-Key, a digest mismatch, or data that"
            " does not read",
            422: "the Idempotency-Key was used for a delivery with other content",
        },
    ),
    ("GET", "/management/received/{transfer_id}"): Operation(
        {200: {"content": content(_DATA[:2])}},
        (401, 404, 410),
        notes={410: "deleted, by the participant or because the agreement's delete duty fell due"},
    ),
    ("DELETE", "/management/received/{transfer_id}"): Operation(
        {204: {"description": "deleted"}}, (401, 404, 409, 410)
    ),
    # ---- data plane (access token + DPoP; problems) -------------------------------------------
    ("GET", "/data/obligations"): Operation(_JSON_OK, (401,)),
    ("GET", "/data/{transfer_id}"): Operation({200: {"content": content(_DATA)}}, _READ_PROBLEMS),
    ("POST", "/data/{transfer_id}/query"): Operation(
        {200: {"content": content(_DATA)}},
        (*_READ_PROBLEMS, 415),
        body(
            JSON, {"type": "object", "required": ["sql"], "properties": {"sql": {"type": "string"}}}
        ),
    ),
    ("POST", "/data/{transfer_id}/token/refresh"): Operation(_JSON_OK, (401, 403, 404)),
    ("GET", "/data/{transfer_id}/obligations"): Operation(_JSON_OK, (401, 403, 404)),
    ("POST", "/data/{transfer_id}/obligations/{obligation_id}/fulfil"): Operation(
        _JSON_OK, (401, 403, 404, 409, 413, 415), body(JSON, _OBJECT, required=False)
    ),
    ("GET", "/data/{transfer_id}/audit"): Operation(
        {200: {"content": content(("application/jsonl",))}}, (401, 403, 404)
    ),
}


def describe_connector(app: FastAPI) -> None:
    """Publish the connector's document, completed by :data:`CONNECTOR_OPERATIONS` (an
    installation without a data plane describes only the operations it serves)."""
    describe(app, {**CONNECTOR_OPERATIONS, **OPERATIONS})
