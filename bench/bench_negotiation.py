"""Benchmark: complete DSP negotiations between two connector processes, and message reading.

Prints (1) complete negotiations per second and p50/p99 latency (request posted to FINALIZED
on the consumer, from the consumer's own store; both sides persisted, agreement signed by both)
between two ``sluis connector serve`` processes on loopback - closed loop: one client at a time
(latency alone), then C clients each starting its next negotiation when its last one ended -
with the CPU time both servers spent per negotiation (the figure that holds on a shared, loaded
machine). Each is run twice in the same run: with the fast paths, and as the per-message
baseline (``[tuning] fast_paths = false``: a new connection per message, the peer's DID
document fetched for every message, each token's id written in a transaction of its own, outbox
messages left to the worker), on SQLite and - when
``SLUIS_TEST_POSTGRES_URL`` or ``--postgres`` names a server - on PostgreSQL (two fresh
databases, dropped afterwards).
(2) messages/s for reading one DSP message on the fast path (known compact form + schema check)
vs the naive path (full JSON-LD expansion and compaction + schema check), with and without
verifying the sender's token.

    python bench/bench_negotiation.py [--quick] [--negotiations N] [--concurrency C] [--postgres URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from connector.identity import (
    InMemoryReplayGuard,
    KeyPair,
    StaticDidResolver,
    TrustedAuthority,
    did_document,
    did_web_for,
    issue_credential,
    issue_token,
    verify_token,
)
from sluis.servers import free_port
from vocab import dsp

REPO = Path(__file__).resolve().parents[1]
RESEARCH = "https://w3id.org/sluis/purpose/scientific-research"
#: Negotiations run before measuring, so one-time costs do not count.
WARM_UP_NEGOTIATIONS = 5
#: How often the bench looks into the consumer's store for ended negotiations.
WATCH_INTERVAL_SECONDS = 0.002
#: A negotiation not ended by then is reported as a failure of the run.
NEGOTIATION_TIMEOUT_SECONDS = 30


class Participant:
    def __init__(
        self, root: Path, name: str, authority: KeyPair, authority_did: str, storage_url: str, fast: bool
    ) -> None:
        self.root = root / name
        (self.root / "data").mkdir(parents=True)
        (self.root / "credentials").mkdir()
        self.port = free_port()
        self.did = did_web_for("127.0.0.1", self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(32)
        KeyPair.generate().save(self.root / "key.pem")
        now = datetime.now(UTC)
        credential = issue_credential(
            authority,
            authority_did,
            self.did,
            "MembershipCredential",
            {"memberOf": "bench"},
            now - timedelta(minutes=1),
            now + timedelta(days=1),
        )
        (self.root / "credentials" / "member.json").write_text(json.dumps(credential))
        self.storage_url = storage_url
        config = self.root / "connector.toml"
        config.write_text(
            f'[participant]\nid = "{self.did}"\nkey_file = "key.pem"\n'
            f'credentials = ["credentials/member.json"]\n'
            f'[server]\nhost = "127.0.0.1"\nport = {self.port}\npublic_url = "{self.url}"\n'
            f'[storage]\nurl = "{storage_url}"\n'
            f'[authority]\ndid = "{authority_did}"\npublic_key_multibase = "{authority.public_multibase}"\n'
            f'[management]\ntoken = "{self.token}"\n[dataplane]\ndata_root = "data"\n'
            # two processes on one machine: loopback peers and DIDs are allowed explicitly
            '[security]\nallow_loopback = true\ndid_hosts = ["127.0.0.1"]\n'
            f"[tuning]\nfast_paths = {'true' if fast else 'false'}\n"
        )
        os.chmod(config, 0o600)
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sluis.cli", "connector", "serve", "--config", str(self.config)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/.well-known/dspace-version", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError((self.root / "server.log").read_text()[-2000:])

    def cpu_seconds(self) -> float:
        """CPU time the server process used so far (Linux /proc; 0 where unavailable)."""
        try:
            assert self.process is not None
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AssertionError, IndexError, ValueError):
            return 0.0

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/management", headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _Reader:
    """Read-only queries on one connector's database (SQLite file or PostgreSQL), ``?`` placeholders."""

    def __init__(self, storage_url: str) -> None:
        self._postgres = not storage_url.startswith("sqlite:")
        if self._postgres:
            import psycopg

            self._connection: Any = psycopg.connect(storage_url, autocommit=True)
        else:
            path = storage_url.removeprefix("sqlite:///")
            self._connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self._postgres:
            sql = sql.replace("?", "%s")
        return list(self._connection.execute(sql, tuple(params)).fetchall())

    def close(self) -> None:
        self._connection.close()


class _Databases:
    """Where the two connectors keep their state: two SQLite files, or two fresh PostgreSQL
    databases on one server (created here, dropped afterwards)."""

    def __init__(self, folder: Path, postgres: str | None) -> None:
        self._postgres = postgres
        self._created: list[str] = []
        self._folder = folder

    def url(self, name: str) -> str:
        if self._postgres is None:
            return f"sqlite:///{self._folder / name / 'connector.db'}"
        import psycopg

        database = f"sluis_bench_{name}_{secrets.token_hex(4)}"
        with psycopg.connect(self._postgres, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        self._created.append(database)
        parts = urlsplit(self._postgres)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def drop(self) -> None:
        if not self._created:
            return
        import psycopg

        with psycopg.connect(self._postgres or "", autocommit=True) as admin:
            for database in self._created:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def bench_negotiations(
    rounds: list[tuple[int, int]], *, fast: bool, postgres: str | None = None
) -> list[dict[str, float]]:
    """Set up a provider and a consumer, then run each ``(negotiations, concurrency)`` round."""
    authority = KeyPair.generate()
    authority_did = did_web_for("127.0.0.1", free_port())
    with tempfile.TemporaryDirectory() as folder:
        databases = _Databases(Path(folder), postgres)
        provider = consumer = None
        try:
            provider = Participant(
                Path(folder), "provider", authority, authority_did, databases.url("provider"), fast
            )
            consumer = Participant(
                Path(folder), "consumer", authority, authority_did, databases.url("consumer"), fast
            )
            provider.start()
            consumer.start()
            (provider.root / "data" / "d.csv").write_text("a\n1\n")
            offer = {
                "@id": "urn:p",
                "@type": "Offer",
                "permission": [
                    {
                        "action": "use",
                        "constraint": [
                            {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH}
                        ],
                    }
                ],
            }
            with provider.api() as api:
                api.post(
                    "/assets", json={"id": "urn:ds", "title": "d", "data": {"kind": "csv", "path": "d.csv"}}
                )
                api.post("/policies", json={"id": "p", "policy": offer}).raise_for_status()
                everyone = {"@id": "urn:a", "@type": "Offer", "permission": [{"action": "use"}]}
                api.post("/policies", json={"id": "a", "policy": everyone}).raise_for_status()
                api.post(
                    "/contract-definitions",
                    json={
                        "id": "cd",
                        "access_policy_id": "a",
                        "contract_policy_id": "p",
                        "asset_ids": ["urn:ds"],
                    },
                ).raise_for_status()
            with consumer.api() as api:
                catalog = api.post(
                    "/catalog/request",
                    json={"counterparty_address": f"{provider.url}/dsp", "counterparty_id": provider.did},
                ).json()
            if "dataset" not in catalog:
                raise RuntimeError(f"the provider offers nothing: {catalog}")
            catalog_offer = catalog["dataset"][0]["hasPolicy"][0]
            body = {
                "counterparty_address": f"{provider.url}/dsp",
                "counterparty_id": provider.did,
                "dataset_id": "urn:ds",
                "offer": catalog_offer,
                "purpose": RESEARCH,
            }
            # warm up (first DID resolutions, lazy imports, connection pools); not reported
            _closed_loop(consumer, provider, body, WARM_UP_NEGOTIATIONS, 1)
            results = [
                _closed_loop(consumer, provider, body, count, concurrency)
                for count, concurrency in rounds
            ]
        except Exception:
            for participant in (consumer, provider):  # what the servers said, before it is deleted
                if participant is not None and (participant.root / "server.log").exists():
                    tail = (participant.root / "server.log").read_text(errors="replace")[-3000:]
                    print(f"--- {participant.root.name} server log (end) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            for participant in (consumer, provider):
                if participant is not None:
                    participant.stop()
            databases.drop()
    return results


class _Watcher:
    """Watches the consumer's own store for the negotiations in flight to end (read-only reads
    by primary key, so the bench's own CPU stays small beside the servers')."""

    def __init__(self, storage_url: str) -> None:
        self._reader = _Reader(storage_url)
        self._watched: set[str] = set()
        self._ended: set[str] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                watched = sorted(self._watched)
            if watched:
                rows = self._reader.rows(
                    f"SELECT id FROM processes WHERE id IN ({','.join('?' * len(watched))}) "
                    "AND state IN ('FINALIZED', 'TERMINATED')",
                    watched,
                )
                if rows:
                    with self._changed:
                        ended = {pid for (pid,) in rows}
                        self._ended.update(ended)
                        self._watched.difference_update(ended)
                        self._changed.notify_all()
            time.sleep(WATCH_INTERVAL_SECONDS)
        self._reader.close()

    def watch(self, pid: str) -> None:
        with self._lock:
            if pid not in self._ended:
                self._watched.add(pid)

    def wait(self, pid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while pid not in self._ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _post(
    connection: http.client.HTTPConnection, path: str, payload: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """POST on a kept-alive connection; one the server closed while it sat idle (a client that
    waited longer than the server's keep-alive for its last negotiation) is opened again once."""
    for attempt in (1, 2):
        try:
            connection.request("POST", path, body=payload, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            connection.close()
            if attempt == 2:
                raise
    raise AssertionError("not reached")


def _closed_loop(
    consumer: Participant, provider: Participant, body: dict[str, Any], count: int, concurrency: int
) -> dict[str, float]:
    """``concurrency`` clients, each starting its next negotiation when its last one ended."""
    watcher = _Watcher(consumer.storage_url)
    started: list[str] = []
    lock = threading.Lock()
    remaining = [count]

    payload = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {consumer.token}", "Content-Type": "application/json"}

    def client(_: int) -> None:
        # one keep-alive connection per client, with the standard library's client: the bench
        # shares the two cores with the servers, so its own CPU per request should be small
        connection = http.client.HTTPConnection("127.0.0.1", consumer.port, timeout=60)
        try:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                status, answer = _post(connection, "/management/negotiations", payload, headers)
                if status != 201:
                    raise RuntimeError(f"POST /management/negotiations: {status} {answer[:500]!r}")
                pid = json.loads(answer)["id"]
                with lock:
                    started.append(pid)
                watcher.watch(pid)
                if not watcher.wait(pid, NEGOTIATION_TIMEOUT_SECONDS):
                    raise RuntimeError(
                        f"negotiation {pid} did not end within {NEGOTIATION_TIMEOUT_SECONDS} s"
                    )
        finally:
            connection.close()

    cpu_before = provider.cpu_seconds(), consumer.cpu_seconds()
    client_before = time.process_time()
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(client, range(concurrency)))
    finally:
        watcher.close()
    cpu_provider = provider.cpu_seconds() - cpu_before[0]
    cpu_consumer = consumer.cpu_seconds() - cpu_before[1]
    cpu_client = time.process_time() - client_before
    load = os.getloadavg()[0]
    reader = _Reader(consumer.storage_url)
    try:
        marks = ",".join("?" * len(started))
        rows = reader.rows(
            f"SELECT state, created_at, updated_at FROM processes WHERE id IN ({marks})", started
        )
    finally:
        reader.close()
    finished = [(created, updated) for state, created, updated in rows if state == "FINALIZED"]
    if not finished:
        raise RuntimeError("no negotiation finished")
    latencies = [(updated - created) * 1000 for created, updated in finished]
    span = max(u for _, u in finished) - min(c for c, _ in finished)
    cpu_ms = (cpu_provider + cpu_consumer) * 1000 / len(finished)
    return {
        "concurrency": concurrency,
        "negotiations": len(finished),
        "failed": count - len(finished),
        "per_second": len(finished) / span if span > 0 else float("inf"),
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "cpu_ms_per_negotiation": cpu_ms,
        "cpu_ms_provider": cpu_provider * 1000 / len(finished),
        "cpu_ms_consumer": cpu_consumer * 1000 / len(finished),
        # this process: the clients posting and the watcher reading the consumer's store
        "cpu_ms_client": cpu_client * 1000 / len(finished),
        "load": load,
        # what the two server processes could finish per second on two otherwise idle cores
        "cpu_bound_per_second": 2000 / cpu_ms if cpu_ms > 0 else float("inf"),
    }


def bench_messages(iterations: int) -> dict[str, float]:
    key = KeyPair.generate()
    did = did_web_for("127.0.0.1", 9)
    authority = KeyPair.generate()
    trusted = TrustedAuthority("did:web:127.0.0.1%3A8", authority.public_multibase)
    resolver = StaticDidResolver([did_document(did, key)])
    message = dsp.contract_request_message(
        "urn:uuid:c-1",
        {
            "@id": "urn:offer:1",
            "@type": "Offer",
            "target": "urn:ds",
            "permission": [
                {
                    "action": "use",
                    "constraint": [{"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH}],
                }
            ],
        },
        callback_address="http://127.0.0.1:9/dsp",
    )
    tokens = [issue_token(key, did, "did:web:aud") for _ in range(iterations)]

    def rate(read: Any, with_token: bool, n: int) -> float:
        guard = InMemoryReplayGuard()
        start = time.perf_counter()
        for index in range(n):
            if with_token:
                verify_token(tokens[index], "did:web:aud", resolver, guard, trusted)
            read(message)
        return n / (time.perf_counter() - start)

    naive_n = max(20, iterations // 5)
    return {
        "fast": rate(dsp.read_message, False, iterations),
        "naive": rate(dsp.read_message_naive, False, naive_n),
        "fast_with_token": rate(dsp.read_message, True, iterations),
        "naive_with_token": rate(dsp.read_message_naive, True, naive_n),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (< 60 s)")
    parser.add_argument("--negotiations", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=16, help="negotiations in flight")
    parser.add_argument(
        "--postgres", default=None, help="PostgreSQL server URL (else SLUIS_TEST_POSTGRES_URL)"
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--fast-only", action="store_true", help="skip the per-message baseline (e.g. to profile the servers)"
    )
    args = parser.parse_args()
    count = args.negotiations or (60 if args.quick else 400)
    messages = bench_messages(200 if args.quick else 3000)
    print("DSP message reading (ContractRequestMessage), messages/s on one core:")
    print(f"  fast path (compact form + schema check)     {messages['fast']:10.0f}")
    print(f"  naive path (JSON-LD expand + compact)       {messages['naive']:10.0f}")
    print(f"  ratio fast/naive                            {messages['fast'] / messages['naive']:10.1f}x")
    print(f"  fast path + token verification              {messages['fast_with_token']:10.0f}")
    print(f"  naive path + token verification             {messages['naive_with_token']:10.0f}")
    with_token = messages["fast_with_token"] / messages["naive_with_token"]
    print(f"  ratio with token                            {with_token:10.1f}x")
    rounds = [(max(10, count // 6), 1), (count, args.concurrency)]
    postgres = args.postgres or os.environ.get("SLUIS_TEST_POSTGRES_URL")
    backends: list[tuple[str, str | None]] = [("SQLite", None)]
    if postgres and not args.sqlite_only:
        backends.append(("PostgreSQL", postgres))
    print(
        "Complete negotiations, two connector processes on loopback, closed loop "
        "(request -> FINALIZED, both sides persisted, agreement signed by both).\n"
        "naive = [tuning] fast_paths = false (a new connection, a DID document fetch and a write "
        "of the token id of its own per message; outbox left to the worker).\n"
        "CPU = both servers' CPU-seconds per negotiation; bench CPU = this process's (clients and "
        "the watcher of the consumer's store); load = 1-min load average at the end of the round; "
        "wall-clock figures on a shared machine are pessimistic."
    )
    header = (
        f"  {'backend':10s} {'path':6s} {'in flight':>9s} {'done':>5s} {'fail':>4s} {'neg/s':>7s} "
        f"{'p50 ms':>7s} {'p99 ms':>7s} {'CPU ms':>7s} {'(prov/cons)':>12s} {'CPU-bound/s':>11s} "
        f"{'bench CPU ms':>12s} {'load':>5s}"
    )
    print(header)
    for backend, url in backends:
        modes = ("fast",) if args.fast_only else ("naive", "fast")
        measured = {mode: bench_negotiations(rounds, fast=mode == "fast", postgres=url) for mode in modes}
        for mode, results in measured.items():
            for result in results:
                print(
                    f"  {backend:10s} {mode:6s} {result['concurrency']:9.0f} {result['negotiations']:5.0f} "
                    f"{result['failed']:4.0f} {result['per_second']:7.1f} {result['p50_ms']:7.1f} "
                    f"{result['p99_ms']:7.1f} {result['cpu_ms_per_negotiation']:7.1f} "
                    f"{result['cpu_ms_provider']:5.1f}/{result['cpu_ms_consumer']:<5.1f} "
                    f"{result['cpu_bound_per_second']:11.1f} {result['cpu_ms_client']:12.1f} "
                    f"{result['load']:5.1f}"
                )
        for naive, fast in zip(measured.get("naive", []), measured["fast"], strict=False):
            cpu_ratio = naive["cpu_ms_per_negotiation"] / fast["cpu_ms_per_negotiation"]
            print(
                f"  {backend:10s} fast/naive at {fast['concurrency']:.0f} in flight: "
                f"throughput {fast['per_second'] / naive['per_second']:.2f}x, "
                f"p99 {naive['p99_ms'] / fast['p99_ms']:.2f}x lower, "
                f"CPU per negotiation {cpu_ratio:.2f}x lower"
            )
    print("  targets: >= 200 negotiations/s and p99 <= 100 ms at 16 in flight")
    print(f"  machine load average (1 min)   {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
