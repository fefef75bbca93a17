"""Data plane benchmark: the cost of enforcement, and the Arrow stream over loopback.

1. Enforced read vs raw DuckDB on the same Parquet file (10 M rows; 1 M with --quick), both
   returning an Arrow table, same thread count. The enforced read does everything a real read
   does except HTTP: token and proof check, contract state, policy decision and data scope,
   atomic read count, sandboxed DuckDB over the granted view (one column denied), audit entry.
   Target: ratio <= 1.15.
2. Loopback throughput of ``GET /data/{transfer}`` (Arrow IPC stream) through uvicorn and httpx.
   Target: >= 500 MB/s.

Run: ``python bench/bench_dataplane.py [--quick]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import FastAPI

from connector.dataplane import AgreementView, AssetData, DataPlane, TransferView, make_proof
from connector.dataplane.sandbox import SandboxLimits
from connector.identity import KeyPair, StaticDidResolver, did_document, did_web_for
from sluis.servers import free_port, serve_in_thread

RESEARCH = "https://w3id.org/sluis/purpose/scientific-research"
ASSET = "urn:sluis:bench:asset"
ROUNDS = 5


class MemoryState:
    """Contract state in memory (the benchmark measures the data plane, not a store)."""

    def __init__(self) -> None:
        self.transfers: dict[str, TransferView] = {}
        self.agreements: dict[str, AgreementView] = {}
        self.assets: dict[str, AssetData] = {}

    def transfer(self, transfer_id: str) -> TransferView | None:
        return self.transfers.get(transfer_id)

    def agreement(self, agreement_id: str) -> AgreementView | None:
        return self.agreements.get(agreement_id)

    def asset_data(self, asset_id: str) -> AssetData | None:
        return self.assets.get(asset_id)


def write_parquet(path: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    writer = None
    chunk = 1_000_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        table = pa.table(
            {
                "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "age": pa.array(rng.integers(18, 90, n, dtype=np.int64)),
                "value": pa.array(rng.random(n)),
                "region": pa.array(np.array(["NH", "ZH", "UT", "GR"])[rng.integers(0, 4, n)]),
                "ssn": pa.array(rng.integers(10**8, 10**9, n, dtype=np.int64)),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


CLIENT = """
import http.client, json, sys, time
from urllib.parse import urlsplit
url, token, proof, sql = sys.argv[1:5]
parts = urlsplit(url)
connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
started = time.perf_counter()
received = 0
headers = {"Authorization": "DPoP " + token, "DPoP": proof, "Content-Type": "application/json"}
connection.request("POST", parts.path, body=json.dumps({"sql": sql}).encode(), headers=headers)
response = connection.getresponse()
assert response.status == 200, response.read()
while True:
    chunk = response.read(8 * 1024 * 1024)
    if not chunk:
        break
    received += len(chunk)
print(received, time.perf_counter() - started)
"""
# Numeric columns decode from Parquet fast, so the stream, not the scan, is what is measured.
STREAM_SQL = "SELECT id, age, value FROM data"


def loopback_rate(endpoint: str, token: str, key: KeyPair) -> tuple[float, int]:
    """MB/s of one full read over HTTP, received by a separate Python process (no shared GIL),
    reading the way ``connector.jobs`` does (the standard library's HTTP client)."""
    url = endpoint + "/query"
    proof = make_proof(key, "POST", url, token)
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, url, token, proof, STREAM_SQL],
        capture_output=True,
        text=True,
        check=True,
    )
    received, seconds = done.stdout.split()
    return int(received) / float(seconds) / 1e6, int(received)


def in_process_rate(plane: DataPlane, transfer_id: str, endpoint: str, token: str, key: KeyPair) -> float:
    """MB/s of the same read encoded to Arrow IPC bytes without HTTP (what the socket is fed)."""
    url = endpoint + "/query"
    started = time.perf_counter()
    read = plane.prepare_read(
        transfer_id,
        f"DPoP {token}",
        make_proof(key, "POST", url, token),
        "POST",
        f"/data/{transfer_id}/query",
        STREAM_SQL,
        "application/vnd.apache.arrow.stream",
    )
    sent = sum(len(chunk) if isinstance(chunk, bytes) else chunk.nbytes for chunk in plane.stream(read))
    return sent / (time.perf_counter() - started) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 M rows (under a minute)")
    args = parser.parse_args()
    rows = 1_000_000 if args.quick else 10_000_000
    limits = SandboxLimits()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = root / "data" / "bench"
        data.mkdir(parents=True)
        path = data / "table.parquet"
        started = time.perf_counter()
        write_parquet(path, rows)
        print(
            f"generated {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB Parquet) "
            f"in {time.perf_counter() - started:.1f} s"
        )

        consumer_key = KeyPair.generate()
        consumer = did_web_for("127.0.0.1", 9, ["bench", "consumer"])
        port = free_port()
        provider = did_web_for("127.0.0.1", port)
        state = MemoryState()
        state.assets[ASSET] = AssetData("parquet", str(path))
        agreement_id = f"urn:uuid:{uuid.uuid4()}"
        constraints = [
            {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH},
            {"leftOperand": "sluis:columns", "operator": "isNoneOf", "rightOperand": ["ssn"]},
        ]
        permission = {"action": "use", "target": ASSET, "constraint": constraints}
        policy = {
            "@id": agreement_id,
            "@type": "Agreement",
            "assigner": provider,
            "assignee": consumer,
            "target": ASSET,
            "permission": [permission],
        }
        state.agreements[agreement_id] = AgreementView(agreement_id, policy, False, consumer, provider, ASSET)
        transfer = TransferView(
            str(uuid.uuid4()), "STARTED", agreement_id, consumer, provider, ASSET, "bench-job", RESEARCH, None
        )
        state.transfers[transfer.id] = transfer
        plane = DataPlane(
            None,
            state,
            KeyPair.generate(),
            f"sqlite:///{root / 'connector.db'}",
            provider_id=provider,
            public_url=f"http://127.0.0.1:{port}",
            data_root=root / "data",
            management_token="bench",
            key_resolver=StaticDidResolver([did_document(consumer, consumer_key)]),
        )
        address = plane.issue_access(transfer)
        columns = "id, age, value, region"

        baseline = duckdb.connect(":memory:", config={"threads": limits.threads})

        def raw() -> pa.Table:
            """Plain DuckDB, already connected: what a job with the file in hand would do."""
            return baseline.sql(f"SELECT {columns} FROM read_parquet('{path}')").to_arrow_table()

        def enforced() -> pa.Table:
            endpoint = address.endpoint
            proof = make_proof(consumer_key, "GET", endpoint, address.token)
            read = plane.prepare_read(
                transfer.id,
                f"DPoP {address.token}",
                proof,
                "GET",
                f"/data/{transfer.id}",
                None,
                "application/vnd.apache.arrow.stream",
            )
            try:
                table = pa.Table.from_batches(list(read.sandbox.batches(read.reader)), read.reader.schema)
            finally:
                read.sandbox.close()
                body = read.context.audit_body()
                plane.audit.append({**body, "decision": "permit", "rows": table.num_rows})
            return table

        raw_times, enforced_times = [], []
        for _ in range(ROUNDS):
            for run, times in ((raw, raw_times), (enforced, enforced_times)):
                started = time.perf_counter()
                table = run()
                times.append(time.perf_counter() - started)
                assert table.num_rows == rows
                assert "ssn" not in table.column_names
        raw_s, enforced_s = statistics.median(raw_times), statistics.median(enforced_times)
        print(f"raw DuckDB -> Arrow:        {raw_s * 1000:8.1f} ms  ({rows / raw_s / 1e6:.1f} M rows/s)")
        print(
            f"enforced read -> Arrow:     {enforced_s * 1000:8.1f} ms  "
            f"({rows / enforced_s / 1e6:.1f} M rows/s)"
        )
        print(
            f"enforcement ratio:          {enforced_s / raw_s:8.3f}x  "
            f"(target <= 1.15x; median of {ROUNDS}, {limits.threads} threads each)"
        )

        produced = statistics.median(
            in_process_rate(plane, transfer.id, address.endpoint, address.token, consumer_key)
            for _ in range(3)
        )
        app = FastAPI()
        app.include_router(plane.router())
        with serve_in_thread(app, port=port):
            rates = [loopback_rate(address.endpoint, address.token, consumer_key) for _ in range(3)]
        best, median = max(rates), statistics.median(rates)
        print(
            f"Arrow stream, no HTTP:      {produced:8.0f} MB/s median "
            "(checks + scan + encode: what the socket is fed)"
        )
        print(
            f"loopback Arrow stream:      {best[0]:8.0f} MB/s best, {median[0]:.0f} MB/s median "
            f"({best[1] / 1e6:.0f} MB per read, {STREAM_SQL!r}; client in its own process; "
            f"target >= 500 MB/s)"
        )
        plane.close()


if __name__ == "__main__":
    main()
