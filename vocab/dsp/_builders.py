"""Build DSP 2025-1 messages in the known compact form (``"@context": [DSP context]``).

One function per message type, named after it; optional members are left out when not given
(never sent as ``null``). ``extensions`` adds members keyed by absolute IRIs, which every
JSON-LD processor keeps and every DSP schema allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vocab.dsp._schemas import DSP_CONTEXT_URL

#: The endpoint type DSP examples use for HTTP data addresses.
HTTP_ENDPOINT_TYPE = "https://w3id.org/idsa/v4.1/HTTP"


def _message(
    type_name: str, members: Mapping[str, Any], extensions: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"@context": [DSP_CONTEXT_URL], "@type": type_name}
    body.update({key: value for key, value in members.items() if value is not None})
    if extensions:
        bad = [key for key in extensions if "://" not in key]
        if bad:
            raise ValueError(f"extension members must be absolute IRIs: {bad}")
        body.update(extensions)
    return body


def _reasons(reasons: Sequence[str]) -> list[str] | None:
    return list(reasons) or None


def catalog_request_message(filters: Sequence[Any] = ()) -> dict[str, Any]:
    return _message("CatalogRequestMessage", {"filter": list(filters)})


def dataset_request_message(dataset_id: str) -> dict[str, Any]:
    return _message("DatasetRequestMessage", {"dataset": dataset_id})


def catalog_error(code: str, reasons: Sequence[str]) -> dict[str, Any]:
    return _message("CatalogError", {"code": code, "reason": _reasons(reasons)})


def contract_request_message(
    consumer_pid: str,
    offer: Mapping[str, Any],
    *,
    provider_pid: str | None = None,
    callback_address: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return _message(
        "ContractRequestMessage",
        {
            "consumerPid": consumer_pid,
            "providerPid": provider_pid,
            "offer": dict(offer),
            "callbackAddress": callback_address,
        },
        extensions,
    )


def contract_offer_message(
    provider_pid: str,
    offer: Mapping[str, Any],
    *,
    consumer_pid: str | None = None,
    callback_address: str | None = None,
) -> dict[str, Any]:
    return _message(
        "ContractOfferMessage",
        {
            "providerPid": provider_pid,
            "consumerPid": consumer_pid,
            "offer": dict(offer),
            "callbackAddress": callback_address,
        },
    )


def contract_agreement_message(
    provider_pid: str, consumer_pid: str, agreement: Mapping[str, Any]
) -> dict[str, Any]:
    return _message(
        "ContractAgreementMessage",
        {"providerPid": provider_pid, "consumerPid": consumer_pid, "agreement": dict(agreement)},
    )


def agreement_verification_message(
    provider_pid: str, consumer_pid: str, extensions: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return _message(
        "ContractAgreementVerificationMessage",
        {"providerPid": provider_pid, "consumerPid": consumer_pid},
        extensions,
    )


def negotiation_event_message(provider_pid: str, consumer_pid: str, event_type: str) -> dict[str, Any]:
    return _message(
        "ContractNegotiationEventMessage",
        {"providerPid": provider_pid, "consumerPid": consumer_pid, "eventType": event_type},
    )


def negotiation_termination_message(
    provider_pid: str, consumer_pid: str, code: str | None = None, reasons: Sequence[str] = ()
) -> dict[str, Any]:
    return _message(
        "ContractNegotiationTerminationMessage",
        {"providerPid": provider_pid, "consumerPid": consumer_pid, "code": code, "reason": _reasons(reasons)},
    )


def contract_negotiation(provider_pid: str, consumer_pid: str, state: str) -> dict[str, Any]:
    return _message(
        "ContractNegotiation", {"providerPid": provider_pid, "consumerPid": consumer_pid, "state": state}
    )


def negotiation_error(
    provider_pid: str, consumer_pid: str, code: str, reasons: Sequence[str]
) -> dict[str, Any]:
    return _message(
        "ContractNegotiationError",
        {"providerPid": provider_pid, "consumerPid": consumer_pid, "code": code, "reason": _reasons(reasons)},
    )


def data_address(
    endpoint: str, properties: Mapping[str, str], endpoint_type: str = HTTP_ENDPOINT_TYPE
) -> dict[str, Any]:
    """A ``DataAddress``; ``properties`` become ``EndpointProperty`` entries (string values)."""
    address: dict[str, Any] = {"@type": "DataAddress", "endpointType": endpoint_type, "endpoint": endpoint}
    if properties:
        address["endpointProperties"] = [
            {"@type": "EndpointProperty", "name": name, "value": value} for name, value in properties.items()
        ]
    return address


def data_address_properties(address: Mapping[str, Any]) -> dict[str, str]:
    """The ``EndpointProperty`` entries of a ``DataAddress`` as a name -> value mapping."""
    found: dict[str, str] = {}
    for entry in address.get("endpointProperties", []) or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            found[str(entry["name"])] = str(entry.get("value", ""))
    return found


def transfer_request_message(
    consumer_pid: str,
    agreement_id: str,
    format_: str,
    callback_address: str,
    *,
    address: Mapping[str, Any] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return _message(
        "TransferRequestMessage",
        {
            "consumerPid": consumer_pid,
            "agreementId": agreement_id,
            "format": format_,
            "callbackAddress": callback_address,
            "dataAddress": dict(address) if address else None,
        },
        extensions,
    )


def transfer_start_message(
    provider_pid: str, consumer_pid: str, address: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return _message(
        "TransferStartMessage",
        {
            "providerPid": provider_pid,
            "consumerPid": consumer_pid,
            "dataAddress": dict(address) if address else None,
        },
    )


def transfer_suspension_message(
    provider_pid: str, consumer_pid: str, code: str | None = None, reasons: Sequence[str] = ()
) -> dict[str, Any]:
    return _message(
        "TransferSuspensionMessage",
        {"providerPid": provider_pid, "consumerPid": consumer_pid, "code": code, "reason": _reasons(reasons)},
    )


def transfer_completion_message(provider_pid: str, consumer_pid: str) -> dict[str, Any]:
    return _message("TransferCompletionMessage", {"providerPid": provider_pid, "consumerPid": consumer_pid})


def transfer_termination_message(
    provider_pid: str, consumer_pid: str, code: str | None = None, reasons: Sequence[str] = ()
) -> dict[str, Any]:
    return _message(
        "TransferTerminationMessage",
        {"providerPid": provider_pid, "consumerPid": consumer_pid, "code": code, "reason": _reasons(reasons)},
    )


def transfer_process(provider_pid: str, consumer_pid: str, state: str) -> dict[str, Any]:
    return _message(
        "TransferProcess", {"providerPid": provider_pid, "consumerPid": consumer_pid, "state": state}
    )


def transfer_error(provider_pid: str, consumer_pid: str, code: str, reasons: Sequence[str]) -> dict[str, Any]:
    return _message(
        "TransferError",
        {"providerPid": provider_pid, "consumerPid": consumer_pid, "code": code, "reason": _reasons(reasons)},
    )


def catalog(
    catalog_id: str,
    participant_id: str,
    datasets: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """A root ``Catalog``; empty lists are left out (the schema wants at least one item if present)."""
    return _message(
        "Catalog",
        {
            "@id": catalog_id,
            "participantId": participant_id,
            "dataset": [dict(d) for d in datasets] or None,
            "service": [dict(s) for s in services] or None,
        },
    )


def dataset(
    dataset_id: str,
    offers: Sequence[Mapping[str, Any]],
    distributions: Sequence[Mapping[str, Any]],
    description: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A root ``Dataset`` (with the DSP context). ``description`` adds absolute-IRI or DCAT members."""
    members: dict[str, Any] = dict(description or {})
    members.update(
        {
            "@id": dataset_id,
            "hasPolicy": [dict(o) for o in offers],
            "distribution": [dict(d) for d in distributions],
        }
    )
    return _message("Dataset", members)
