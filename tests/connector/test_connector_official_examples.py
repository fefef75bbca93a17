"""Every official DSP 2025-1 example message, posted to its endpoint, gets a protocol answer.

The examples name processes and callback hosts that do not exist here, so the correct answers
are DSP errors: 404 for a process we do not know, 400 for a callback address the sender does
not control, and the catalog itself for a catalog request. None may be a 500, and every answer
must be valid against the official schemas.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.dsp_client import DspClient
from connector.identity import KeyPair
from tests.connector.conftest import OfficialSchemas
from tests.connector.dsp_world import Authority, Party, publish_dataset, running_party

PROVIDER_PID = "urn:uuid:a343fcbf-99fc-4ce8-8e9b-148c97605aab"
CONSUMER_PID = "urn:uuid:32541fe6-c580-409e-85a8-8a9a32fbe833"

# example file -> (method, path under /dsp, expected status, expected answer @type)
REQUEST_EXAMPLES: dict[str, tuple[str, str, int, str]] = {
    "catalog/catalog-request-message.json": ("POST", "/catalog/request", 200, "Catalog"),
    "catalog/dataset-request-message.json": (
        "GET",
        "/catalog/datasets/urn:uuid:3afeadd8-ed2d-569e-d634-8394a8836d57",
        404,
        "CatalogError",
    ),
    "negotiation/contract-request-message_initial.json": (
        "POST",
        "/negotiations/request",
        400,
        "ContractNegotiationError",
    ),
    "negotiation/contract-request-message.json": (
        "POST",
        f"/negotiations/{PROVIDER_PID}/request",
        404,
        "ContractNegotiationError",
    ),
    "negotiation/contract-offer-message_initial.json": (
        "POST",
        "/negotiations/offers",
        400,
        "ContractNegotiationError",
    ),
    "negotiation/contract-offer-message.json": (
        "POST",
        f"/negotiations/{CONSUMER_PID}/offers",
        404,
        "ContractNegotiationError",
    ),
    "negotiation/contract-agreement-message.json": (
        "POST",
        f"/negotiations/{CONSUMER_PID}/agreement",
        404,
        "ContractNegotiationError",
    ),
    "negotiation/contract-agreement-message-full.json": (
        "POST",
        f"/negotiations/{CONSUMER_PID}/agreement",
        404,
        "ContractNegotiationError",
    ),
    "negotiation/contract-agreement-verification-message.json": (
        "POST",
        f"/negotiations/{PROVIDER_PID}/agreement/verification",
        404,
        "ContractNegotiationError",
    ),
    "negotiation/contract-negotiation-event-message.json": (
        "POST",
        f"/negotiations/{PROVIDER_PID}/events",
        404,
        "ContractNegotiationError",
    ),
    "negotiation/contract-negotiation-termination-message.json": (
        "POST",
        f"/negotiations/{PROVIDER_PID}/termination",
        404,
        "ContractNegotiationError",
    ),
    "transfer/transfer-request-message.json": ("POST", "/transfers/request", 400, "TransferError"),
    "transfer/transfer-start-message.json": (
        "POST",
        f"/transfers/{CONSUMER_PID}/start",
        404,
        "TransferError",
    ),
    "transfer/transfer-completion-message.json": (
        "POST",
        f"/transfers/{PROVIDER_PID}/completion",
        404,
        "TransferError",
    ),
    "transfer/transfer-suspension-message.json": (
        "POST",
        f"/transfers/{PROVIDER_PID}/suspension",
        404,
        "TransferError",
    ),
    "transfer/transfer-termination-message.json": (
        "POST",
        f"/transfers/{PROVIDER_PID}/termination",
        404,
        "TransferError",
    ),
}

# answers and errors are not requests: posted where a request is expected they are refused (400)
NOT_REQUESTS: dict[str, tuple[str, str]] = {
    "catalog/catalog.json": ("/catalog/request", "CatalogError"),
    "catalog/catalog-error.json": ("/catalog/request", "CatalogError"),
    "negotiation/contract-negotiation.json": ("/negotiations/request", "ContractNegotiationError"),
    "negotiation/contract-negotiation-error.json": ("/negotiations/request", "ContractNegotiationError"),
    "transfer/transfer-process.json": ("/transfers/request", "TransferError"),
    "transfer/transfer-error.json": ("/transfers/request", "TransferError"),
}


@pytest.fixture(scope="module")
def provider_and_caller(
    tmp_path_factory: pytest.TempPathFactory, authority: Authority, module_storage_urls: Callable[[str], str]
) -> Iterator[tuple[Party, DspClient]]:
    tmp_path = tmp_path_factory.mktemp("parties")
    storage_urls = module_storage_urls
    # the caller's DID must resolve for its tokens to verify, so it runs too
    with (
        running_party(tmp_path, "provider", authority, storage_urls("provider")) as provider,
        running_party(tmp_path, "caller", authority, storage_urls("caller")) as caller,
    ):
        credentials = [json.loads((caller.root / "credentials" / "membership.json").read_text())]
        client = DspClient(caller.did, KeyPair.load(caller.root / "participant-key.pem"), credentials)
        yield provider, client
        client.close()


def _call(client: DspClient, provider: Party, method: str, path: str, body: dict[str, Any] | None) -> Any:
    if method == "GET":
        return client.get(f"{provider.dsp}{path}", provider.did)
    assert body is not None
    return client.post(f"{provider.dsp}{path}", provider.did, body)


def test_every_official_request_example_gets_a_protocol_answer(
    provider_and_caller: tuple[Party, DspClient], dsp_examples: Path, official_schemas: OfficialSchemas
) -> None:
    provider, client = provider_and_caller
    publish_dataset(provider)
    for name, (method, path, status, answer_type) in REQUEST_EXAMPLES.items():
        example = json.loads((dsp_examples / name).read_text())
        response = _call(client, provider, method, path, example)
        assert response.status == status, f"{name}: HTTP {response.status} {response.body}"
        assert response.body is not None, name
        assert response.body["@type"] == answer_type, name
        assert not official_schemas.errors(response.body), (name, official_schemas.errors(response.body))
    official = {str(p.relative_to(dsp_examples)) for p in dsp_examples.rglob("*.json")}
    covered = (
        set(REQUEST_EXAMPLES)
        | set(NOT_REQUESTS)
        | {
            "catalog/dataset.json",
            "catalog/nested-catalog.json",  # answers: checked by our schema test
            "common/protocol-version.json",
            "common/dataservice-did-service.json",
            "common/catalogservice-did-service.json",
        }
    )
    assert official <= covered, f"examples without a test: {sorted(official - covered)}"


def test_answers_posted_as_requests_are_refused_with_dsp_errors(
    provider_and_caller: tuple[Party, DspClient], dsp_examples: Path, official_schemas: OfficialSchemas
) -> None:
    provider, client = provider_and_caller
    for name, (path, answer_type) in NOT_REQUESTS.items():
        example = json.loads((dsp_examples / name).read_text())
        response = client.post(f"{provider.dsp}{path}", provider.did, example)
        assert response.status == 400, name
        assert response.body is not None
        assert response.body["@type"] == answer_type
        assert "@type" in response.body["reason"][0]
        assert not official_schemas.errors(response.body)


def test_dspace_version_is_public_and_schema_valid(
    provider_and_caller: tuple[Party, DspClient], conformance_dir: Path
) -> None:
    provider, _ = provider_and_caller
    from jsonschema import Draft201909Validator

    response = httpx.get(f"{provider.url}/.well-known/dspace-version")
    assert response.status_code == 200
    schema = json.loads(
        (conformance_dir / "dsp/2025-1/schemas/common/protocol-version-schema.json").read_text()
    )
    Draft201909Validator(schema).validate(response.json())
    assert response.json()["protocolVersions"][0]["version"] == "2025-1"


def test_requests_without_a_token_are_refused_not_crashed(
    provider_and_caller: tuple[Party, DspClient],
) -> None:
    provider, _ = provider_and_caller
    response = httpx.post(f"{provider.dsp}/negotiations/request", json={"@type": "ContractRequestMessage"})
    assert response.status_code == 401
    assert response.json()["@type"] == "ContractNegotiationError"


def test_oversized_and_deeply_nested_bodies_are_refused(provider_and_caller: tuple[Party, DspClient]) -> None:
    provider, client = provider_and_caller
    huge = {
        "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
        "@type": "CatalogRequestMessage",
        "filter": ["x" * 1024] * 400,
    }
    response = client.post(f"{provider.dsp}/catalog/request", provider.did, huge)
    assert response.status == 413
    assert response.body is not None
    assert "limit" in response.body["reason"][0]
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    nested = {
        "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
        "@type": "CatalogRequestMessage",
        "filter": deep,
    }
    response = client.post(f"{provider.dsp}/catalog/request", provider.did, nested)
    assert response.status == 400
    assert response.body is not None
    assert "deeper" in response.body["reason"][0]
