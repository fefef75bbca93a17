"""Benchmark: complete DSP negotiations between two connector processes, and message reading.

Prints (1) complete negotiations per second and p50/p99 latency (request posted to FINALIZED
on the consumer, from the consumer's own store) between two ``sluis connector serve``
processes on loopback with SQLite, and (2) messages/s for reading one DSP message on the fast
path (known compact form + schema check) vs the naive path (full JSON-LD expansion and
compaction + schema check), with and without verifying the sender's token.

    python bench/bench_negotiation.py [--quick] [--negotiations N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


class Participant:
    def __init__(self, root: Path, name: str, authority: KeyPair, authority_did: str) -> None:
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
        self.db = self.root / "connector.db"
        config = self.root / "connector.toml"
        config.write_text(
            f'[participant]\nid = "{self.did}"\nkey_file = "key.pem"\n'
            f'credentials = ["credentials/member.json"]\n'
            f'[server]\nhost = "127.0.0.1"\nport = {self.port}\npublic_url = "{self.url}"\n'
            f'[storage]\nurl = "sqlite:///connector.db"\n'
            f'[authority]\ndid = "{authority_did}"\npublic_key_multibase = "{authority.public_multibase}"\n'
            f'[management]\ntoken = "{self.token}"\n[dataplane]\ndata_root = "data"\n'
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


def bench_negotiations(count: int, concurrency: int) -> dict[str, float]:
    authority = KeyPair.generate()
    authority_did = did_web_for("127.0.0.1", free_port())
    with tempfile.TemporaryDirectory() as folder:
        provider = Participant(Path(folder), "provider", authority, authority_did)
        consumer = Participant(Path(folder), "consumer", authority, authority_did)
        provider.start()
        consumer.start()
        try:
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

            def start_one(_: int) -> None:
                with consumer.api() as api:
                    api.post("/negotiations", json=body).raise_for_status()

            cpu_before = provider.cpu_seconds() + consumer.cpu_seconds()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(start_one, range(count)))
            deadline = time.monotonic() + 300
            rows: list[tuple[str, float, float]] = []
            while time.monotonic() < deadline:
                with sqlite3.connect(consumer.db) as db:
                    rows = db.execute(
                        "SELECT state, created_at, updated_at FROM processes WHERE kind = 'negotiation'"
                    ).fetchall()
                if sum(1 for state, _, _ in rows if state in ("FINALIZED", "TERMINATED")) >= count:
                    break
                time.sleep(0.2)
            cpu = provider.cpu_seconds() + consumer.cpu_seconds() - cpu_before
        finally:
            consumer.stop()
            provider.stop()
    finished = [(created, updated) for state, created, updated in rows if state == "FINALIZED"]
    if not finished:
        raise RuntimeError("no negotiation finished")
    latencies = [(updated - created) * 1000 for created, updated in finished]
    span = max(u for _, u in finished) - min(c for c, _ in finished)
    return {
        "negotiations": len(finished),
        "failed": count - len(finished),
        "per_second": len(finished) / span if span > 0 else float("inf"),
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "cpu_ms_per_negotiation": cpu * 1000 / len(finished),
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
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    count = args.negotiations or (30 if args.quick else 400)
    messages = bench_messages(200 if args.quick else 3000)
    print("DSP message reading (ContractRequestMessage), messages/s on one core:")
    print(f"  fast path (compact form + schema check)     {messages['fast']:10.0f}")
    print(f"  naive path (JSON-LD expand + compact)       {messages['naive']:10.0f}")
    print(f"  ratio fast/naive                            {messages['fast'] / messages['naive']:10.1f}x")
    print(f"  fast path + token verification              {messages['fast_with_token']:10.0f}")
    print(f"  naive path + token verification             {messages['naive_with_token']:10.0f}")
    with_token = messages["fast_with_token"] / messages["naive_with_token"]
    print(f"  ratio with token                            {with_token:10.1f}x")
    result = bench_negotiations(count, args.concurrency)
    print(f"Complete negotiations, two connector processes (SQLite, loopback, {args.concurrency} in flight):")
    print(f"  finished {result['negotiations']:.0f} of {count} (failed {result['failed']:.0f})")
    print(f"  negotiations/s                              {result['per_second']:10.1f}   (target >= 200)")
    print(f"  latency p50                                 {result['p50_ms']:10.1f} ms")
    print(f"  latency p99                                 {result['p99_ms']:10.1f} ms (target <= 100)")
    print(f"  server CPU per negotiation (both sides)     {result['cpu_ms_per_negotiation']:10.1f} ms")
    print(f"  machine load average (1 min)                {os.getloadavg()[0]:10.1f}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
