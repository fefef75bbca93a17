"""Fixtures for the connector tests: an authority, participants, running connectors, schemas."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft201909Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT201909

from tests.connector.dsp_world import Authority, make_authority

#: Official schema file for each message ``@type`` (2025-1).
OFFICIAL_SCHEMA_FILES = {
    "CatalogRequestMessage": "catalog/catalog-request-message-schema.json",
    "DatasetRequestMessage": "catalog/dataset-request-message-schema.json",
    "Catalog": "catalog/catalog-schema.json",
    "Dataset": "catalog/dataset-schema.json",
    "CatalogError": "catalog/catalog-error-schema.json",
    "ContractRequestMessage": "negotiation/contract-request-message-schema.json",
    "ContractOfferMessage": "negotiation/contract-offer-message-schema.json",
    "ContractAgreementMessage": "negotiation/contract-agreement-message-schema.json",
    "ContractAgreementVerificationMessage": "negotiation/contract-agreement-verification-message-schema.json",
    "ContractNegotiationEventMessage": "negotiation/contract-negotiation-event-message-schema.json",
    "ContractNegotiationTerminationMessage": (
        "negotiation/contract-negotiation-termination-message-schema.json"
    ),
    "ContractNegotiation": "negotiation/contract-negotiation-schema.json",
    "ContractNegotiationError": "negotiation/contract-negotiation-error-schema.json",
    "TransferRequestMessage": "transfer/transfer-request-message-schema.json",
    "TransferStartMessage": "transfer/transfer-start-message-schema.json",
    "TransferSuspensionMessage": "transfer/transfer-suspension-message-schema.json",
    "TransferCompletionMessage": "transfer/transfer-completion-message-schema.json",
    "TransferTerminationMessage": "transfer/transfer-termination-message-schema.json",
    "TransferProcess": "transfer/transfer-process-schema.json",
    "TransferError": "transfer/transfer-error-schema.json",
}


class OfficialSchemas:
    """The official DSP 2025-1 JSON Schemas in one offline registry (draft 2019-09)."""

    def __init__(self, schema_root: Path) -> None:
        registry: Registry[Any] = Registry()
        by_path: dict[str, dict[str, Any]] = {}
        for file in sorted(schema_root.rglob("*.json")):
            # the upstream defect: '#definitions/...' lacks the slash after '#'
            text = file.read_text(encoding="utf-8").replace("#definitions/", "#/definitions/")
            schema = json.loads(text)
            by_path[str(file.relative_to(schema_root))] = schema
            registry = registry.with_resource(schema["$id"], Resource.from_contents(schema, DRAFT201909))
        self.registry = registry.crawl()
        self.validators = {
            type_name: Draft201909Validator(by_path[path], registry=self.registry)
            for type_name, path in OFFICIAL_SCHEMA_FILES.items()
        }

    def errors(self, message: dict[str, Any]) -> list[str]:
        validator = self.validators.get(str(message.get("@type")))
        if validator is None:
            return [f"no official schema for @type {message.get('@type')!r}"]
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(message)]


@pytest.fixture(scope="session")
def official_schemas(conformance_dir: Path) -> OfficialSchemas:
    return OfficialSchemas(conformance_dir / "dsp" / "2025-1" / "schemas")


@pytest.fixture(scope="session")
def dsp_examples(conformance_dir: Path) -> Path:
    return conformance_dir / "dsp" / "2025-1" / "examples"


@pytest.fixture(scope="session")
def authority() -> Authority:
    return make_authority()


def _fresh_postgres_database(server_url: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    name = f"c_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


@pytest.fixture(params=["sqlite", "postgres"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not os.environ.get("SLUIS_TEST_POSTGRES_URL"):
        pytest.skip("no PostgreSQL: run the suite with ./dev test, which starts one")
    return str(request.param)


@pytest.fixture
def storage_urls(storage_kind: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A factory of fresh, empty databases of the parametrized kind, one per name."""
    cleanups: list[Callable[[], None]] = []

    def make(name: str) -> str:
        if storage_kind == "sqlite":
            return f"sqlite:///{tmp_path / name / 'connector.db'}"
        url, drop = _fresh_postgres_database(os.environ["SLUIS_TEST_POSTGRES_URL"])
        cleanups.append(drop)
        return url

    yield make
    for cleanup in cleanups:
        cleanup()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_storage_urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], str]]:
    """Like ``storage_urls`` but shared by the tests of one module (connectors started once)."""
    if request.param == "postgres" and not os.environ.get("SLUIS_TEST_POSTGRES_URL"):
        pytest.skip("no PostgreSQL: run the suite with ./dev test, which starts one")
    root = tmp_path_factory.mktemp("stores")
    cleanups: list[Callable[[], None]] = []

    def make(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{root / name / 'connector.db'}"
        url, drop = _fresh_postgres_database(os.environ["SLUIS_TEST_POSTGRES_URL"])
        cleanups.append(drop)
        return url

    yield make
    for cleanup in cleanups:
        cleanup()
