"""Data plane benchmark: the cost of enforcement, and the Arrow stream over loopback.

1. Enforced read vs raw DuckDB on the same Parquet file, at 1 M and 10 M rows (1 M only with
   --quick), both returning an Arrow table, same thread count: the whole granted view (one
   column denied), the same as SQL, and a grouped aggregate. The enforced read does everything
   a real read does except HTTP: token and proof check, contract state, policy decision and
   data scope, atomic read count, the granted relation (materialised once, on the first read,
   whose cost is printed separately), the locked-down DuckDB that can open only that file,
   audit entry. Target: ratio <= 1.15.
2. Loopback throughput of ``GET /data/{transfer}`` and of a SQL read (Arrow IPC stream) through
   uvicorn, and of the same two reads over Arrow Flight, received by a separate process.
   Target: >= 500 MB/s.

Run: ``python bench/bench_dataplane.py [--quick]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import FastAPI

from connector.dataplane import AgreementView, AssetData, DataPlane, TransferView, make_proof
from connector.dataplane.flight import DataFlightServer
from connector.dataplane.routes import build_router
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
if sql:
    connection.request("POST", parts.path, body=json.dumps({"sql": sql}).encode(), headers=headers)
else:
    connection.request("GET", parts.path, headers=headers)
response = connection.getresponse()
assert response.status == 200, response.read()
while True:
    chunk = response.read(8 * 1024 * 1024)
    if not chunk:
        break
    received += len(chunk)
print(received, time.perf_counter() - started)
"""
FLIGHT_CLIENT = """
import json, sys, time
import pyarrow.flight as flight
location, transfer, token, proof, sql = sys.argv[1:6]
client = flight.FlightClient(location)
headers = [(b"authorization", ("DPoP " + token).encode()), (b"dpop", proof.encode())]
ticket = {"transfer": transfer, **({"sql": sql} if sql else {})}
started = time.perf_counter()
reader = client.do_get(flight.Ticket(json.dumps(ticket).encode()), flight.FlightCallOptions(headers=headers))
received = 0
for chunk in reader:
    received += chunk.data.nbytes
print(received, time.perf_counter() - started)
"""
# Numeric columns decode from Parquet fast, so the stream, not the scan, is what is measured.
STREAM_SQL = "SELECT id, age, value FROM data"
COLUMNS = "id, age, value, region"
AGGREGATE_SQL = "SELECT region, count(*) AS n, avg(value) AS v FROM data GROUP BY region"


def loopback_rate(endpoint: str, token: str, key: KeyPair, sql: str | None) -> tuple[float, int]:
    """MB/s of one full read over HTTP, received by a separate Python process (no shared GIL),
    reading the way ``connector.jobs`` does (the standard library's HTTP client)."""
    url = endpoint if sql is None else endpoint + "/query"
    proof = make_proof(key, "GET" if sql is None else "POST", url, token)
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, url, token, proof, sql or ""],
        capture_output=True,
        text=True,
        check=True,
    )
    received, seconds = done.stdout.split()
    return int(received) / float(seconds) / 1e6, int(received)


def flight_rate(location: str, transfer_id: str, endpoint: str, token: str, key: KeyPair,
                sql: str | None) -> tuple[float, int]:
    """MB/s (Arrow buffer bytes) of one full Arrow Flight read, received by a separate process."""
    url = endpoint if sql is None else endpoint + "/query"
    proof = make_proof(key, "GET" if sql is None else "POST", url, token)
    done = subprocess.run(
        [sys.executable, "-c", FLIGHT_CLIENT, location, transfer_id, token, proof, sql or ""],
        capture_output=True, text=True, check=True,
    )
    received, seconds = done.stdout.split()
    return int(received) / float(seconds) / 1e6, int(received)


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def measure(rows: int, root: Path, limits: SandboxLimits) -> None:
    """Enforced against raw DuckDB on ``rows`` rows, then the stream over loopback."""
    data = root / "data" / "bench"
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"table-{rows}.parquet"
    started = time.perf_counter()
    write_parquet(path, rows)
    print(
        f"\n== {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB Parquet, generated in "
        f"{time.perf_counter() - started:.1f} s)"
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
    policy = {"@id": agreement_id, "@type": "Agreement", "assigner": provider, "assignee": consumer,
              "target": ASSET, "permission": [permission]}
    state.agreements[agreement_id] = AgreementView(agreement_id, policy, False, consumer, provider, ASSET)
    transfer = TransferView(
        str(uuid.uuid4()), "STARTED", agreement_id, consumer, provider, ASSET, "bench-job", RESEARCH, None
    )
    state.transfers[transfer.id] = transfer
    plane = DataPlane(
        None, state, KeyPair.generate(), f"sqlite:///{root / f'connector-{rows}.db'}",
        provider_id=provider, public_url=f"http://127.0.0.1:{port}", data_root=root / "data",
        management_token="bench", key_resolver=StaticDidResolver([did_document(consumer, consumer_key)]),
    )
    address = plane.issue_access(transfer)
    baseline = duckdb.connect(":memory:", config={"threads": limits.threads})

    def raw(sql: str) -> Callable[[], pa.Table]:
        """Plain DuckDB, already connected: what a job with the file in hand would do."""
        text = sql.replace("FROM data", f"FROM read_parquet('{path}')")
        return lambda: baseline.sql(text).to_arrow_table()

    def enforced(sql: str | None) -> Callable[[], pa.Table]:
        """Everything a read does but HTTP: token, proof, state, policy, scope, count, sandbox, audit."""
        def run() -> pa.Table:
            method, suffix = ("GET", "") if sql is None else ("POST", "/query")
            url = address.endpoint + suffix
            read = plane.prepare_read(
                transfer.id, f"DPoP {address.token}", make_proof(consumer_key, method, url, address.token),
                method, f"/data/{transfer.id}{suffix}", sql, "application/vnd.apache.arrow.stream",
            )
            try:
                table = pa.Table.from_batches(list(read.batches), read.schema)
            finally:
                read.finish()
                body = read.context.audit_body()
                plane.audit.append({**body, "decision": "permit", "rows": table.num_rows})
            return table
        return run

    started = time.perf_counter()
    enforced(None)()
    first_ms = (time.perf_counter() - started) * 1000
    print(f"first read (materialises the granted relation once): {first_ms:8.1f} ms")
    cases = [
        ("whole granted view", f"SELECT {COLUMNS} FROM data", None),
        ("same, as SQL", f"SELECT {COLUMNS} FROM data", f"SELECT {COLUMNS} FROM data"),
        ("grouped aggregate", AGGREGATE_SQL, AGGREGATE_SQL),
    ]
    for label, raw_sql, enforced_sql in cases:
        raw_times: list[float] = []
        enforced_times: list[float] = []
        for _ in range(ROUNDS):
            for run, times in ((raw(raw_sql), raw_times), (enforced(enforced_sql), enforced_times)):
                # the data plane opens its next blank DuckDB between reads: not during either run
                plane.sandboxes.blanks.wait_full(5.0)
                started = time.perf_counter()
                table = run()
                times.append(time.perf_counter() - started)
                assert "ssn" not in table.column_names
        raw_ms, enforced_ms = _median_ms(raw_times), _median_ms(enforced_times)
        print(f"{label:20s} raw DuckDB {raw_ms:8.1f} ms  enforced {enforced_ms:8.1f} ms  "
              f"ratio {enforced_ms / raw_ms:6.3f}x  (target <= 1.15x; median of {ROUNDS})")

    app = FastAPI()
    app.include_router(build_router(plane))
    with serve_in_thread(app, port=port):
        for label, sql in (("GET whole view", None), ("POST SQL", STREAM_SQL)):
            rates = [loopback_rate(address.endpoint, address.token, consumer_key, sql) for _ in range(3)]
            best, median = max(rates), statistics.median(rates)
            print(f"loopback Arrow stream, {label:15s} {best[0]:6.0f} MB/s best, {median[0]:6.0f} MB/s "
                  f"median ({best[1] / 1e6:.0f} MB per read; client in its own process; target >= 500 MB/s)")
    server = DataFlightServer(plane)
    server.serve_in_thread()
    location = f"grpc://127.0.0.1:{server.port}"
    for label, sql in (("whole view", None), ("SQL", STREAM_SQL)):
        rates = [flight_rate(location, transfer.id, address.endpoint, address.token, consumer_key, sql)
                 for _ in range(3)]
        best, median = max(rates), statistics.median(rates)
        print(f"Arrow Flight, {label:24s} {best[0]:6.0f} MB/s best, {median[0]:6.0f} MB/s "
              f"median ({best[1] / 1e6:.0f} MB per read; client in its own process; target >= 500 MB/s)")
    server.shutdown()
    scan = raw(f"SELECT {COLUMNS} FROM data")
    started = time.perf_counter()
    scanned = scan()
    seconds = time.perf_counter() - started
    rate = scanned.nbytes / seconds / 1e6
    print(f"for scale: raw DuckDB scan of the same columns into Arrow: {rate:6.0f} MB/s")
    baseline.close()
    plane.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 M rows only (under a minute)")
    args = parser.parse_args()
    limits = SandboxLimits()
    print(f"{limits.threads} DuckDB threads per read and for raw DuckDB; {os.cpu_count()} cores here")
    with tempfile.TemporaryDirectory() as folder:
        for rows in (1_000_000,) if args.quick else (1_000_000, 10_000_000):
            measure(rows, Path(folder), limits)


if __name__ == "__main__":
    main()
