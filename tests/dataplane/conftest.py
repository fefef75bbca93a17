"""Fixtures for the data plane: a real contract store, real files, real servers on loopback.

``SqliteContractState`` is a small, real implementation of the data plane's ``ContractState``
(transfers, agreements and assets in a SQLite file), so these tests do not depend on the
connector's own store; ``test_end_to_end`` runs the same reads through two real connectors.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI

from connector.dataplane import AgreementView, AssetData, DataPlane, DataPlaneLimits, TransferView
from connector.dataplane.routes import build_router
from connector.http import install_problem_handlers
from connector.identity import KeyPair, TrustedAuthority, did_document, did_web_for
from connector.jobs.data import Address, TransferReader
from sluis.servers import free_port, serve_in_thread

PURPOSE = "https://w3id.org/sluis/purpose/"
PLACE_NLD = "http://publications.europa.eu/resource/authority/country/NLD"
PLACE_USA = "http://publications.europa.eu/resource/authority/country/USA"
ASSET_ID = "urn:sluis:asset:patients"
PATIENT_ROWS = 1_000


class SqliteContractState:
    """Transfers, agreements and assets in SQLite: read fresh at every call, like the real store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS transfers (id TEXT PRIMARY KEY, state TEXT, agreement_id TEXT,
                    consumer_id TEXT, provider_id TEXT, asset_id TEXT, job_id TEXT, purpose TEXT,
                    compute_site TEXT);
                CREATE TABLE IF NOT EXISTS agreements (id TEXT PRIMARY KEY, policy TEXT, terminated INTEGER,
                    consumer_id TEXT, provider_id TEXT, asset_id TEXT);
                CREATE TABLE IF NOT EXISTS assets (id TEXT PRIMARY KEY, kind TEXT, path TEXT, tbl TEXT);
                """
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def transfer(self, transfer_id: str) -> TransferView | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM transfers WHERE id = ?", (transfer_id,)).fetchone()
        return TransferView(*row) if row else None

    def agreement(self, agreement_id: str) -> AgreementView | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM agreements WHERE id = ?", (agreement_id,)).fetchone()
        if row is None:
            return None
        return AgreementView(row[0], json.loads(row[1]), bool(row[2]), row[3], row[4], row[5])

    def asset_data(self, asset_id: str) -> AssetData | None:
        with self._connect() as db:
            row = db.execute("SELECT kind, path, tbl FROM assets WHERE id = ?", (asset_id,)).fetchone()
        return AssetData(*row) if row else None

    # --- what the control plane would do -------------------------------------------------------
    def put_asset(self, asset_id: str, kind: str, path: Path, table: str | None = None) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO assets VALUES (?, ?, ?, ?)", (asset_id, kind, str(path), table)
            )

    def put_agreement(self, agreement: AgreementView) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO agreements VALUES (?, ?, ?, ?, ?, ?)",
                (agreement.id, json.dumps(agreement.policy), int(agreement.terminated), agreement.consumer_id,
                 agreement.provider_id, agreement.asset_id),
            )

    def put_transfer(self, transfer: TransferView) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO transfers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (transfer.id, transfer.state, transfer.agreement_id, transfer.consumer_id,
                 transfer.provider_id, transfer.asset_id, transfer.job_id, transfer.purpose,
                 transfer.compute_site),
            )

    def terminate_agreement(self, agreement_id: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE agreements SET terminated = 1 WHERE id = ?", (agreement_id,))

    def set_transfer_state(self, transfer_id: str, state: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE transfers SET state = ? WHERE id = ?", (state, transfer_id))


def agreement_policy(uid: str, assigner: str, assignee: str, permission: dict[str, Any],
                     **extra: Any) -> dict[str, Any]:
    """An ODRL agreement in the DSP compact form (what the connector stores)."""
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"@id": uid, "@type": "Agreement", "assigner": assigner, "assignee": assignee,
            "target": ASSET_ID, "timestamp": {"@value": stamp, "@type": "xsd:dateTime"},
            "permission": [{"target": ASSET_ID, **permission}], **extra}


def research_permission(*constraints: dict[str, Any], action: str = "use") -> dict[str, Any]:
    return {
        "action": action,
        "constraint": [
            {"leftOperand": "purpose", "operator": "isA", "rightOperand": PURPOSE + "scientific-research"},
            *constraints,
        ],
    }


def write_patients(folder: Path, rows: int = PATIENT_ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "patient_id": pa.array(range(rows), pa.int64()),
        "age": pa.array([20 + (i * 7) % 60 for i in range(rows)], pa.int64()),
        "region": pa.array([["NH", "ZH", "UT", "GR"][i % 4] for i in range(rows)]),
        "diagnosis": pa.array([["E11", "I10", "J45"][i % 3] for i in range(rows)]),
        "ssn": pa.array([f"SSN-{i:06d}" for i in range(rows)]),
    })
    path = folder / "patients.parquet"
    pq.write_table(table, path)
    return path


@dataclass
class Consumer:
    did: str
    key: KeyPair


@dataclass
class DataSpace:
    """A provider data plane on loopback, its contract state, and consumers with DID documents."""

    plane: DataPlane
    state: SqliteContractState
    base_url: str
    provider_id: str
    data_path: Path
    consumers: dict[str, Consumer]
    management_token: str
    authority: KeyPair
    authority_did: str
    _readers: list[TransferReader] = field(default_factory=list)

    def agreement(self, permission: dict[str, Any], consumer: str = "alice", **extra: Any) -> str:
        agreement_id = f"urn:uuid:{uuid.uuid4()}"
        did = self.consumers[consumer].did
        policy = agreement_policy(agreement_id, self.provider_id, did, permission, **extra)
        self.state.put_agreement(AgreementView(agreement_id, policy, False, did, self.provider_id, ASSET_ID))
        return agreement_id

    def transfer(self, agreement_id: str, consumer: str = "alice", purpose: str = "scientific-research",
                 site: str = PLACE_NLD, job_id: str = "job-1", state: str = "STARTED") -> TransferView:
        view = TransferView(str(uuid.uuid4()), state, agreement_id, self.consumers[consumer].did,
                            self.provider_id, ASSET_ID, job_id, PURPOSE + purpose, site)
        self.state.put_transfer(view)
        return view

    def reader(self, transfer: TransferView, consumer: str = "alice", key: KeyPair | None = None,
               credentials: list[dict[str, Any]] | None = None, **issue: Any) -> TransferReader:
        address = self.plane.issue_access(transfer, **issue)
        reader = TransferReader(Address.from_json(address.to_json()), key or self.consumers[consumer].key,
                                transfer.id, consumer_id=self.consumers[consumer].did,
                                credentials=credentials or [])
        self._readers.append(reader)
        return reader

    def close(self) -> None:
        for reader in self._readers:
            reader.close()


def _did_app(consumers: dict[str, Consumer]) -> FastAPI:
    app = FastAPI()
    documents = {name: did_document(c.did, c.key) for name, c in consumers.items()}

    @app.get("/consumers/{name}/did.json")
    def document(name: str) -> dict[str, Any]:
        return documents[name]

    return app


@pytest.fixture(scope="session")
def did_host() -> Iterator[dict[str, Consumer]]:
    """Consumers alice and bob, whose DID documents are served over HTTP on loopback."""
    port = free_port()
    consumers = {
        name: Consumer(did_web_for("127.0.0.1", port, ["consumers", name]), KeyPair.generate())
        for name in ("alice", "bob")
    }
    with serve_in_thread(_did_app(consumers), port=port):
        yield consumers


@pytest.fixture
def make_space(tmp_path: Path, did_host: dict[str, Consumer]) -> Iterator[Callable[..., DataSpace]]:
    spaces: list[tuple[DataSpace, Any]] = []

    def build(storage_url: str | None = None, limits: DataPlaneLimits | None = None) -> DataSpace:
        data_root = tmp_path / "data"
        data_path = write_patients(data_root / "patients")
        state = SqliteContractState(tmp_path / "contracts.db")
        state.put_asset(ASSET_ID, "parquet", data_path)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        provider_id = did_web_for("127.0.0.1", port)
        token = uuid.uuid4().hex
        authority = KeyPair.generate()
        authority_did = did_web_for("127.0.0.1", free_port())
        plane = DataPlane(
            None, state, KeyPair.generate(), storage_url or f"sqlite:///{tmp_path / 'connector.db'}",
            provider_id=provider_id, public_url=base, data_root=data_root, management_token=token,
            limits=limits, trusted=TrustedAuthority(authority_did, authority.public_multibase),
        )
        app = FastAPI()
        install_problem_handlers(app)
        app.include_router(build_router(plane))
        server = serve_in_thread(app, port=port)
        server.__enter__()
        space = DataSpace(plane, state, base, provider_id, data_path, did_host, token, authority,
                          authority_did)
        spaces.append((space, server))
        return space

    yield build
    for space, server in spaces:
        space.close()
        server.__exit__(None, None, None)
        space.plane.close()


@pytest.fixture
def space(make_space: Callable[..., DataSpace]) -> DataSpace:
    return make_space()
