"""A small data space for tests: an authority, participants with real keys, DIDs, credentials and
config files, and connectors running as real HTTP servers (in a thread or as a subprocess)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from connector.app import create_app
from connector.config import load_config
from connector.identity import KeyPair, did_web_for, issue_credential
from sluis.servers import free_port, serve_in_thread

REPO_ROOT = Path(__file__).resolve().parents[2]
RESEARCH = "https://w3id.org/sluis/purpose/scientific-research"
AI_TRAINING = "https://w3id.org/sluis/purpose/ai-training"
WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Authority:
    key: KeyPair
    did: str


def make_authority() -> Authority:
    return Authority(KeyPair.generate(), did_web_for("127.0.0.1", free_port()))


@dataclass
class Party:
    name: str
    root: Path
    config_path: Path
    did: str
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dsp(self) -> str:
        return f"{self.url}/dsp"

    def management(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/management", headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


def make_party(
    root: Path,
    name: str,
    authority: Authority,
    storage_url: str,
    *,
    allow_list: tuple[str, ...] = (),
) -> Party:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    port = free_port()
    did = did_web_for("127.0.0.1", port)
    key = KeyPair.generate()
    key.save(folder / "participant-key.pem")
    now = datetime.now(UTC)
    credential = issue_credential(
        authority.key,
        authority.did,
        did,
        "MembershipCredential",
        {"memberOf": "sluis-test-space"},
        now - timedelta(minutes=5),
        now + timedelta(days=1),
    )
    (folder / "credentials").mkdir(exist_ok=True)
    (folder / "credentials" / "membership.json").write_text(json.dumps(credential))
    token = secrets.token_urlsafe(32)
    allow = ", ".join(json.dumps(a) for a in allow_list)
    config = f"""
[participant]
id = "{did}"
key_file = "participant-key.pem"
credentials = ["credentials/membership.json"]

[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"

[storage]
url = "{storage_url}"

[authority]
did = "{authority.did}"
public_key_multibase = "{authority.key.public_multibase}"

[management]
token = "{token}"

[dataplane]
data_root = "data"

[security]
callback_allow_list = [{allow}]
did_hosts = ["127.0.0.1"]
allow_loopback = true
"""
    path = folder / "connector.toml"
    path.write_text(config)
    os.chmod(path, 0o600)
    return Party(name, folder, path, did, port, token)


@dataclass
class Recorder:
    """Keeps every DSP message a connector received, sent or answered with."""

    messages: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, direction: str, path: str, body: Mapping[str, Any]) -> None:
        with self.lock:
            self.messages.append((direction, path, json.loads(json.dumps(body))))


@contextmanager
def running(party: Party, recorder: Recorder | None = None) -> Iterator[str]:
    """The party's connector served on its own port in this process."""
    app = create_app(load_config(party.config_path), recorder=recorder)
    with serve_in_thread(app, port=party.port) as url:
        yield url


#: Attempts to start a party on a fresh port: another process may take the port we picked
#: between picking it and binding it (the DID names the port, so the party is made anew).
START_ATTEMPTS = 4


@contextmanager
def running_party(
    root: Path,
    name: str,
    authority: Authority,
    storage_url: str,
    recorder: Recorder | None = None,
    **options: Any,
) -> Iterator[Party]:
    for attempt in range(START_ATTEMPTS):
        party = make_party(root / f"try-{attempt}", name, authority, storage_url, **options)
        app = create_app(load_config(party.config_path), recorder=recorder)
        try:
            server = serve_in_thread(app, port=party.port)
            server.__enter__()
        except RuntimeError:
            continue
        try:
            yield party
        finally:
            server.__exit__(None, None, None)
        return
    raise RuntimeError(f"could not start {name} on a free port")


class ConnectorProcess:
    """``sluis connector serve`` as a real subprocess, for kill-and-restart tests."""

    def __init__(self, party: Party) -> None:
        self.party = party
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.party.root / "server.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sluis.cli",
                "connector",
                "serve",
                "--config",
                str(self.party.config_path),
            ],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._ready, "connector subprocess to answer")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError((self.party.root / "server.log").read_text()[-3000:])
        try:
            return httpx.get(f"{self.party.url}/.well-known/dspace-version", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll ``check`` until it returns something truthy (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def research_offer(uid: str = "urn:sluis:policy:research") -> dict[str, Any]:
    return {
        "@id": uid,
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [{"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH}],
            }
        ],
    }


def members_only(uid: str = "urn:sluis:policy:members") -> dict[str, Any]:
    return {
        "@id": uid,
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "sluis:credential",
                        "operator": "hasPart",
                        "rightOperand": "MembershipCredential",
                    }
                ],
            }
        ],
    }


def publish_dataset(
    provider: Party,
    dataset_id: str = "urn:sluis:dataset:cohort",
    contract_policy: dict[str, Any] | None = None,
    access_policy: dict[str, Any] | None = None,
) -> str:
    """Register a CSV asset with an access and a contract policy through the management API."""
    (provider.root / "data" / "cohort.csv").write_text("age,region\n34,NL-NH\n51,NL-UT\n")
    with provider.management() as api:
        api.post(
            "/assets",
            json={
                "id": dataset_id,
                "title": "Synthetic cohort",
                "data": {"kind": "csv", "path": "cohort.csv"},
            },
        ).raise_for_status()
        api.post(
            "/policies", json={"id": "access", "policy": access_policy or members_only()}
        ).raise_for_status()
        api.post(
            "/policies", json={"id": "contract", "policy": contract_policy or research_offer()}
        ).raise_for_status()
        api.post(
            "/contract-definitions",
            json={
                "id": "cd-1",
                "access_policy_id": "access",
                "contract_policy_id": "contract",
                "asset_ids": [dataset_id],
            },
        ).raise_for_status()
    return dataset_id


def fetch_offer(consumer: Party, provider: Party, dataset_id: str) -> dict[str, Any]:
    with consumer.management() as api:
        response = api.post(
            "/catalog/request", json={"counterparty_address": provider.dsp, "counterparty_id": provider.did}
        )
        response.raise_for_status()
        catalog = response.json()
    for dataset in catalog.get("dataset", []):
        if dataset["@id"] == dataset_id:
            return dict(dataset["hasPolicy"][0])
    raise AssertionError(f"{dataset_id} not in the catalog: {catalog}")


def negotiation_state(party: Party, negotiation_id: str) -> dict[str, Any]:
    with party.management() as api:
        response = api.get(f"/negotiations/{negotiation_id}")
        response.raise_for_status()
        return dict(response.json())


def wait_for_state(party: Party, kind: str, process_id: str, *states: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        with party.management() as api:
            body = api.get(f"/{kind}/{process_id}").json()
        return body if body.get("state") in states else None

    return dict(wait_until(check, f"{kind} {process_id} to reach {states}"))


def negotiate(
    consumer: Party,
    provider: Party,
    dataset_id: str,
    offer: dict[str, Any],
    purpose: str | None = RESEARCH,
    **extra: Any,
) -> str:
    with consumer.management() as api:
        response = api.post(
            "/negotiations",
            json={
                "counterparty_address": provider.dsp,
                "counterparty_id": provider.did,
                "dataset_id": dataset_id,
                "offer": offer,
                "purpose": purpose,
                **extra,
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def finalized_agreement(consumer: Party, provider: Party, dataset_id: str) -> dict[str, Any]:
    """Negotiate ``dataset_id``'s offer to FINALIZED on both sides; the consumer's negotiation
    (its ``agreement_id`` names the agreement)."""
    offer = fetch_offer(consumer, provider, dataset_id)
    negotiation_id = negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH)
    done = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED", "TERMINATED")
    assert done["state"] == "FINALIZED", done
    wait_for_state(provider, "negotiations", done["provider_pid"], "FINALIZED")
    return done
