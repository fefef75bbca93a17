"""The real systems the robustness suite attacks: a catalogue node and two connectors.

Everything is made the way a user makes it: publisher tokens with ``sluis catalogue token
create``, the authority and participants with ``sluis authority init`` and ``sluis participant
init``; the apps are the real factories served on loopback by ``sluis.servers.serve_in_thread``.
The connectors negotiate a real agreement and start a real transfer, so the DSP and data-plane
routes can be attacked *past* authentication, with live process ids and a valid access token.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import FastAPI
from rdflib import Graph, URIRef

from catalogue.api import create_catalogue_app
from catalogue.config import CatalogueConfig
from catalogue.seed import dataset_iri, seed_files
from connector.app import create_app
from connector.config import ConnectorConfig, load_config
from connector.dataplane.tokens import make_proof
from connector.identity import KeyPair, did_web_for, issue_token
from connector.jobs import Job
from connector.jobs.data import TransferReader
from sluis.cli import main as sluis_main
from sluis.servers import free_port, serve_in_thread
from vocab.namespaces import DCT

RESEARCH = "https://w3id.org/sluis/purpose/scientific-research"
PLACE_NLD = "http://publications.europa.eu/resource/authority/country/NLD"
ASSET_ID = "urn:sluis:robustness:asset:readings"
# Attempts to bind a server on a port picked earlier (the DID names the port, so a participant
# whose port was taken meanwhile is made anew).
START_ATTEMPTS = 4
WAIT_SECONDS = 60.0
TABLE_ROWS = 100
# Refresh the job's access token when less than this is left (it lives a few minutes).
TOKEN_MARGIN = timedelta(seconds=90)


def run_cli(*argv: str) -> str:
    """Run ``sluis …`` in-process; its standard output, or an assertion naming the failure."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sluis_main(list(argv))
    assert code == 0, f"sluis {' '.join(argv)} failed ({code}): {err.getvalue()}"
    return out.getvalue()


# ---- catalogue --------------------------------------------------------------------------------
@dataclass
class CatalogueWorld:
    url: str
    app: FastAPI
    token: str
    record_id: str
    client: httpx.Client

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def snapshot(self) -> tuple[Any, ...]:
        """What a rejected write must leave alone: the search total, every stored version, the index."""
        search = self.client.get("/catalogue/search", params={"page_size": 1})
        assert search.status_code == 200, search.text
        node = self.app.state.catalogue
        versions = node.store.versions(self.record_id)
        current = node.store.current(self.record_id)
        return (
            search.json()["total"],
            node.index.count(include_deleted=True),
            tuple(versions),
            None if current is None else (current.version, current.content, current.deleted, current.owner),
        )

    def http_snapshot(self) -> tuple[Any, ...]:
        """The same, as a client sees it (slower: used around whole groups of requests)."""
        record = self.client.get(f"/catalogue/datasets/{self.record_id}", headers={"Accept": "text/turtle"})
        versions = self.client.get(f"/catalogue/datasets/{self.record_id}/versions")
        assert record.status_code == versions.status_code == 200
        return (record.headers.get("etag"), _graph_text(record.content), versions.json())


def _graph_text(turtle: bytes) -> frozenset[str]:
    graph = Graph()
    graph.parse(data=turtle, format="turtle")
    return frozenset(f"{s} {p} {o}" for s, p, o in graph if "proof" not in str(p).lower())


def _publisher_of(path: Path) -> str:
    graph = Graph()
    graph.parse(path, format="turtle")
    publishers = set(graph.objects(URIRef(dataset_iri(path)), DCT.publisher))
    assert len(publishers) == 1, f"{path.name} should name one publisher"
    return str(publishers.pop())


@contextmanager
def catalogue_world(root: Path) -> Iterator[CatalogueWorld]:
    seed = seed_files()[0]
    publisher = _publisher_of(seed)
    for attempt in range(START_ATTEMPTS):
        data = root / f"catalogue-{attempt}"
        token = run_cli("catalogue", "token", "create", "--data", str(data), "--publisher", publisher).strip()
        port = free_port()
        app = create_catalogue_app(data, CatalogueConfig(public_url=f"http://127.0.0.1:{port}"))
        server = serve_in_thread(app, port=port)
        try:
            url = server.__enter__()
        except RuntimeError:  # the port was taken meanwhile: a new node on a new port
            with contextlib.suppress(Exception):  # its lifespan may have closed it already
                app.state.catalogue.close()
            continue
        try:
            # One connection per request: a server rightly closes one after a refused, unread body.
            with httpx.Client(base_url=url, timeout=60, headers={"Connection": "close"}) as client:
                published = client.post(
                    "/catalogue/datasets",
                    content=seed.read_bytes(),
                    headers={"Content-Type": "text/turtle", "Authorization": f"Bearer {token}"},
                )
                assert published.status_code == 201, published.text
                record_id = published.json()["id"]
                yield CatalogueWorld(url, app, token, str(record_id), client)
        finally:
            server.__exit__(None, None, None)
        return
    raise RuntimeError("could not start the catalogue node on a free port")


# ---- connectors -------------------------------------------------------------------------------
@dataclass
class Participant:
    name: str
    config_path: Path
    config: ConnectorConfig
    app: FastAPI
    url: str

    @property
    def did(self) -> str:
        return self.config.participant_id

    @property
    def dsp(self) -> str:
        return f"{self.url}/dsp"

    @property
    def token(self) -> str:
        return self.config.management.token

    def management(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/management", headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )

    def database(self) -> Path:
        url = self.config.storage.url
        assert url.startswith("sqlite:///"), url
        return Path(url.removeprefix("sqlite:///"))


@dataclass
class ConnectorWorld:
    provider: Participant
    consumer: Participant
    agreement_id: str
    consumer_transfer_id: str
    provider_transfer_id: str
    provider_negotiation_pid: str
    consumer_negotiation_pid: str
    data_endpoint: str
    reader: TransferReader
    consumer_key: KeyPair
    consumer_credentials: list[dict[str, Any]]
    provider_key: KeyPair
    provider_credentials: list[dict[str, Any]]
    clients: dict[str, httpx.Client]

    def dsp_token(self, to: str = "provider") -> str:
        """A fresh self-issued token from the other party to ``to`` (each jti is used once)."""
        if to == "provider":
            return issue_token(
                self.consumer_key,
                self.consumer.did,
                self.provider.did,
                self.consumer_credentials,
                ttl_seconds=120,
            )
        return issue_token(
            self.provider_key,
            self.provider.did,
            self.consumer.did,
            self.provider_credentials,
            ttl_seconds=120,
        )

    @property
    def data_token(self) -> str:
        """The job's access token, refreshed (the legitimate way) before it can lapse mid-suite."""
        if self.reader.address.expires_at - datetime.now(UTC) < TOKEN_MARGIN:
            self.reader.refresh()
        return self.reader.address.token

    def dsp_auth(self, to: str = "provider") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.dsp_token(to)}"}

    def party(self, name: str) -> Participant:
        return self.provider if name == "provider" else self.consumer

    def data_auth(self, method: str, url: str) -> dict[str, str]:
        """The access token with a fresh proof of possession for exactly this request."""
        return {
            "Authorization": f"DPoP {self.data_token}",
            "DPoP": make_proof(self.consumer_key, method, url, self.data_token),
        }

    def snapshot(self) -> tuple[Any, ...]:
        """Both sides' contract state, as stored (cheap enough to take around every request)."""
        return tuple(_table_rows(party.database()) for party in (self.provider, self.consumer))

    def http_snapshot(self) -> tuple[Any, ...]:
        """Both sides' management listings over HTTP (used around whole groups of requests)."""
        views: list[Any] = []
        for party in (self.provider, self.consumer):
            api = self.clients[party.name]
            for listing in ("/negotiations", "/agreements", "/transfers"):
                response = api.get(listing)
                assert response.status_code == 200, response.text
                views.append(_without_volatile(response.json()))
        return tuple(views)


def _without_volatile(value: Any) -> Any:
    """Listings minus the data address (its token is re-issued on refresh, by design)."""
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_volatile(item) for key, item in value.items() if key != "data_address"}
    return value


# Rows a rejected request must not touch (message logs, replay guards and audit entries are
# evidence of the attempt and may grow).
STATE_TABLES = (
    "assets",
    "policies",
    "contract_definitions",
    "processes",
    "agreements",
    "sluis_dp_reads",
    "sluis_dp_obligations",
)


def _table_rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as db:
        present = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in STATE_TABLES:
            if table in present:
                rows[table] = sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    return rows


def _make_participant_folder(root: Path, name: str, authority_dir: Path) -> Path:
    port = free_port()
    folder = root / f"{name}-{port}"
    run_cli(
        "participant",
        "init",
        "--id",
        did_web_for("127.0.0.1", port),
        "--dir",
        str(folder),
        "--authority-dir",
        str(authority_dir),
    )
    return folder / "connector.toml"


@contextmanager
def _running(root: Path, name: str, authority_dir: Path) -> Iterator[Participant]:
    for _ in range(START_ATTEMPTS):
        config_path = _make_participant_folder(root, name, authority_dir)
        config = load_config(config_path)
        app = create_app(config)
        server = serve_in_thread(app, port=config.server.port)
        try:
            url = server.__enter__()
        except RuntimeError:
            continue
        try:
            yield Participant(name, config_path, config, app, url)
        finally:
            server.__exit__(None, None, None)
        return
    raise RuntimeError(f"could not start {name} on a free port")


def _write_readings(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "meter": pa.array([f"m{i:03d}" for i in range(TABLE_ROWS)]),
            "region": pa.array([["NH", "ZH", "UT"][i % 3] for i in range(TABLE_ROWS)]),
            "kwh": pa.array([float(i) * 1.5 for i in range(TABLE_ROWS)]),
        }
    )
    pq.write_table(table, folder / "readings.parquet")


def _members_only() -> dict[str, Any]:
    return {
        "@id": "urn:sluis:robustness:policy:members",
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "sluis:credential",
                        "operator": "hasPart",
                        "rightOperand": "MembershipCredential",
                    },
                ],
            }
        ],
    }


def _research_only() -> dict[str, Any]:
    return {
        "@id": "urn:sluis:robustness:policy:research",
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH},
                ],
            }
        ],
    }


def wait_until(check: Callable[[], Any], what: str) -> Any:
    """Poll until ``check`` is truthy (a bounded wait for asynchronous DSP callbacks)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _provider_process(provider: Participant, kind: str) -> dict[str, Any]:
    with provider.management() as api:
        listing = api.get(f"/{kind}")
        assert listing.status_code == 200, listing.text
        items = listing.json()
    assert len(items) == 1, f"the provider should hold one {kind[:-1]}: {items}"
    item: dict[str, Any] = items[0]
    return item


def _settled(party: Participant) -> bool:
    """No DSP message is still waiting in either outbox (so snapshots do not race the worker)."""
    with contextlib.closing(sqlite3.connect(f"file:{party.database()}?mode=ro", uri=True)) as db:
        present = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "outbox" not in present:
            return True
        (pending,) = db.execute(
            "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_reason IS NULL"
        ).fetchone()
    return bool(pending == 0)


@contextmanager
def connector_world(root: Path) -> Iterator[ConnectorWorld]:
    authority_dir = root / "authority"
    run_cli("authority", "init", "--id", did_web_for("127.0.0.1", free_port()), "--dir", str(authority_dir))
    with ExitStack() as stack:
        provider = stack.enter_context(_running(root, "provider", authority_dir))
        consumer = stack.enter_context(_running(root, "consumer", authority_dir))
        _write_readings(provider.config.dataplane.data_root / "readings")
        with provider.management() as api:
            for path, body in (
                (
                    "/assets",
                    {
                        "id": ASSET_ID,
                        "title": "Meter readings",
                        "data": {"kind": "parquet", "path": "readings/readings.parquet"},
                    },
                ),
                ("/policies", {"id": "members", "policy": _members_only()}),
                ("/policies", {"id": "research", "policy": _research_only()}),
                (
                    "/contract-definitions",
                    {
                        "id": "readings",
                        "access_policy_id": "members",
                        "contract_policy_id": "research",
                        "asset_ids": [ASSET_ID],
                    },
                ),
            ):
                created = api.post(path, json=body)
                assert created.status_code == 201, f"{path}: {created.text}"
        job = stack.enter_context(
            Job.from_config(consumer.config_path, "robustness-job", RESEARCH, PLACE_NLD)
        )
        opened = job.dataset(ASSET_ID, provider.dsp, provider.did)
        assert opened.read().num_rows == TABLE_ROWS
        provider_negotiation = _provider_process(provider, "negotiations")
        provider_transfer = _provider_process(provider, "transfers")
        with consumer.management() as api:
            negotiation = api.get("/negotiations").json()[0]
        wait_until(lambda: _settled(provider) and _settled(consumer), "the outboxes to drain")
        address = opened.reader.address
        clients = {party.name: stack.enter_context(party.management()) for party in (provider, consumer)}
        yield ConnectorWorld(
            provider=provider,
            consumer=consumer,
            agreement_id=opened.agreement_id,
            consumer_transfer_id=opened.transfer_id,
            provider_transfer_id=str(provider_transfer["id"]),
            provider_negotiation_pid=str(provider_negotiation["provider_pid"]),
            consumer_negotiation_pid=str(negotiation["consumer_pid"]),
            data_endpoint=address.endpoint,
            reader=opened.reader,
            consumer_key=KeyPair.load(consumer.config.participant.key_file),
            consumer_credentials=_credentials(consumer),
            provider_key=KeyPair.load(provider.config.participant.key_file),
            provider_credentials=_credentials(provider),
            clients=clients,
        )


def _credentials(party: Participant) -> list[dict[str, Any]]:
    return [json.loads(Path(path).read_text()) for path in party.config.participant.credentials]


@contextmanager
def lone_connector(root: Path) -> Iterator[Participant]:
    """A connector with no peer, for requests that, wrongly accepted, would leave work running."""
    authority_dir = root / "authority"
    run_cli("authority", "init", "--id", did_web_for("127.0.0.1", free_port()), "--dir", str(authority_dir))
    with _running(root, "lone", authority_dir) as participant:
        yield participant
