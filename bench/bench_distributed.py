"""The embedded and the shared deployment side by side: what the store and index backends cost.

Embedded: Oxigraph + SQLite FTS5 in the node's folder. Shared: a SPARQL 1.1 server (Virtuoso)
holds the records and PostgreSQL the search index, so replicas serve the same catalogue.

Measured on the same generated records (``bench_catalogue``'s, realistic and all different) for
both, in one run: batch writes (store + index, 500 records a transaction, as bulk publish
does), one-record publishes (the HTTP publish path's store + index cost), record reads, search
(full text + two facets), SPARQL top-20, disk per record, and migration embedded -> shared.
Validation, quality and signing are left out: they are the same work on both deployments and
``bench_catalogue`` measures them.

Needs the servers ``./dev bench`` starts (``SLUIS_TEST_VIRTUOSO_URL``, ``SLUIS_TEST_POSTGRES_URL``);
says so and stops without them. Usage: ``python bench/bench_distributed.py [--records N] [--quick]
[--full]`` (default 5,000 records; ``--quick`` 1,000; ``--full`` 20,000). Asserts nothing.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from bench_catalogue import (  # noqa: E402
    BANDS,
    FORMATS,
    QUERY_SKIP_COMMON,
    THEMES,
    WORDS,
    percentile,
    record_ntriples,
    record_row,
    synthetic_record,
)

from catalogue.backends import open_sparql  # noqa: E402
from catalogue.config import CatalogueConfig  # noqa: E402
from catalogue.index import IndexRow, SearchIndex, SearchQuery  # noqa: E402
from catalogue.index_postgres import PostgresIndex  # noqa: E402
from catalogue.migrate import migrate  # noqa: E402
from catalogue.publish import timestamp  # noqa: E402
from catalogue.search_backend import SearchBackend  # noqa: E402
from catalogue.store import LOCAL_SOURCE, OxigraphStore, RecordStore, RecordVersion  # noqa: E402
from catalogue.store.remote import SparqlEndpointStore  # noqa: E402

BATCH = 500
SINGLE_PUBLISHES = 50
SEARCHES = 200
READS = 200


def generate(count: int, offset: int = 0) -> list[tuple[RecordVersion, IndexRow]]:
    rng = random.Random(count + offset)
    now = datetime.now(UTC)
    modified = timestamp(now)
    made = []
    for n in range(offset, offset + count):
        record = synthetic_record(n, rng)
        record_id = f"bench{n:09d}"
        quality = {"total": rng.randrange(0, 406), "maximum": 405, "band": rng.choice(BANDS)}
        version = RecordVersion(
            record_id, 1, record["iri"], now, False, record["publisher"], LOCAL_SOURCE,
            content=record_ntriples(record), quality={"quality": quality},
        )
        made.append((version, record_row(record, record_id, modified, quality)))
    return made


def write(store: RecordStore, index: SearchBackend, items: list[tuple[RecordVersion, IndexRow]]) -> None:
    """One publish transaction: index rows written, store written, index committed."""
    with index.transaction() as transaction:
        for _, row in items:
            transaction.upsert(row)
        store.write([version for version, _ in items], bulk=True)


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def folder_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def virtuoso_bytes() -> int | None:
    """Size of the test Virtuoso's database files after a checkpoint (None when not reachable)."""
    folder = Path(os.environ.get("SLUIS_VIRTUOSO_DIR", Path(tempfile.gettempdir()) / "sluis-test-virtuoso"))
    port = os.environ.get("SLUIS_VIRTUOSO_SQL_PORT", "51111")
    if not folder.is_dir() or shutil.which("isql-vt") is None:
        return None
    subprocess.run(["isql-vt", f"127.0.0.1:{port}", "dba", "dba", "exec=checkpoint;"],
                   capture_output=True, timeout=120, check=False)
    return sum(path.stat().st_size for path in folder.glob("virtuoso*.db"))


def postgres_bytes(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "WHERE c.relname LIKE 'search_%' AND c.relkind = 'r'"
        ).fetchone()
    return int(row[0] or 0) if row else 0


def clear_virtuoso(endpoint: str) -> None:
    answer = httpx.post(
        endpoint,
        data={
            "query": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } "
            'FILTER(STRSTARTS(STR(?g), "urn:sluis:")) }'
        },
        headers={"Accept": "application/sparql-results+json"}, timeout=600,
    )
    graphs = [row["g"]["value"] for row in answer.json()["results"]["bindings"]]
    for start in range(0, len(graphs), 500):
        update = " ;\n".join(f"DROP SILENT GRAPH <{graph}>" for graph in graphs[start : start + 500])
        httpx.post(endpoint, data={"update": update}, timeout=600).raise_for_status()


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    name: str, store: RecordStore, index: SearchBackend, records: list[tuple[RecordVersion, IndexRow]]
) -> dict[str, float]:
    figures: dict[str, float] = {}
    started = time.perf_counter()
    for first in range(0, len(records), BATCH):
        write(store, index, records[first : first + BATCH])
    figures["batch_rate"] = len(records) / (time.perf_counter() - started)
    singles = generate(SINGLE_PUBLISHES, offset=len(records))
    publish = [timed(lambda item=item: write(store, index, [item])) for item in singles]  # type: ignore[misc]
    figures["publish_p50"], figures["publish_p99"] = statistics.median(publish), percentile(publish, 0.99)
    rng = random.Random(7)
    reads = [timed(lambda: store.current(rng.choice(records)[0].record_id)) for _ in range(READS)]
    figures["read_p50"] = statistics.median(reads)
    searches = []
    for _ in range(SEARCHES):
        query = SearchQuery(
            rng.choice(WORDS[QUERY_SKIP_COMMON:]),
            {"theme": [rng.choice(THEMES)], "format": [rng.choice(FORMATS)]},
        )
        searches.append(timed(lambda query=query: index.search(query)))  # type: ignore[misc]
    figures["search_p50"], figures["search_p99"] = statistics.median(searches), percentile(searches, 0.99)
    figures["landing"] = timed(lambda: index.search(SearchQuery()))
    with tempfile.TemporaryDirectory() as snapshots:
        runner = open_sparql(store, Path(snapshots), CatalogueConfig())
        sparql = (
            "PREFIX dcat: <http://www.w3.org/ns/dcat#> PREFIX dct: <http://purl.org/dc/terms/> "
            "SELECT ?d ?title ?modified WHERE { ?d a dcat:Dataset ; dct:title ?title ; "
            "dct:modified ?modified ; dcat:theme "
            "<http://publications.europa.eu/resource/authority/data-theme/HEAL> } "
            "ORDER BY DESC(?modified) LIMIT 20"
        )
        figures["sparql"] = min(timed(lambda: runner.run(sparql)) for _ in range(3))
        runner.close()
    print(f"  {name}: done", flush=True)
    return figures


def run(count: int, virtuoso: str, postgres: str) -> None:
    records = generate(count)
    total = count + SINGLE_PUBLISHES
    print(f"== {count:,} records in batches of {BATCH}, then {SINGLE_PUBLISHES} one-record publishes")
    with tempfile.TemporaryDirectory(prefix="sluis-bench-") as folder:
        node = Path(folder)
        embedded_store = OxigraphStore(node / "store")
        embedded_index = SearchIndex(node / "index.sqlite")
        embedded = measure("embedded", embedded_store, embedded_index, records)
        embedded_store.flush()
        embedded_disk = folder_bytes(node)
        clear_virtuoso(virtuoso)
        database = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        index_url = f"{postgres.rpartition('/')[0]}/{database}"
        try:
            virtuoso_before = virtuoso_bytes()
            shared_store = SparqlEndpointStore(virtuoso)
            shared_index = PostgresIndex(index_url)
            shared = measure("shared", shared_store, shared_index, records)
            virtuoso_after = virtuoso_bytes()
            index_disk = postgres_bytes(index_url)
            shared_index.close()

            # Migration: the embedded node (store and index) into an empty shared deployment.
            clear_virtuoso(virtuoso)
            with psycopg.connect(index_url, autocommit=True) as connection:
                connection.execute(
                    "TRUNCATE search_record, search_facet_value, search_record_facet, search_stats"
                )
            target_index = PostgresIndex(index_url)
            started = time.perf_counter()
            report = migrate(embedded_store, shared_store, target_index)
            migrate_rate = report.records / (time.perf_counter() - started)
            target_index.close()
            shared_store.close()
        finally:
            with psycopg.connect(postgres, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            clear_virtuoso(virtuoso)
        embedded_index.close()
        embedded_store.close()

    def row(label: str, key: str, unit: str, digits: int = 1) -> None:
        a, b = embedded[key], shared[key]
        print(f"{label:<44}{a:>12,.{digits}f}{b:>12,.{digits}f} {unit:<10} shared/embedded {b / a:6.2f}x")

    print(f"{'':<44}{'embedded':>12}{'shared':>12}")
    row("batch write (store + index), records/s", "batch_rate", "rec/s", 0)
    row("one-record publish (store + index) p50", "publish_p50", "ms")
    row("one-record publish (store + index) p99", "publish_p99", "ms")
    row("record read p50", "read_p50", "ms")
    row("search, full text + two facets, p50", "search_p50", "ms")
    row("search, full text + two facets, p99", "search_p99", "ms")
    row("landing page (all facets)", "landing", "ms")
    row("SPARQL top-20 (best of 3)", "sparql", "ms")
    print(f"disk per record, embedded (Oxigraph + SQLite): {embedded_disk / total / 1024:.1f} KiB")
    if virtuoso_before is not None and virtuoso_after is not None:
        grown = max(0, virtuoso_after - virtuoso_before)
        print(
            f"disk per record, shared: Virtuoso files grew {grown / total / 1024:.1f} KiB/record "
            f"(allocation is in 2 MB steps: a floor at small sizes), PostgreSQL index "
            f"{index_disk / total / 1024:.1f} KiB/record"
        )
    else:
        print(f"disk per record, shared: PostgreSQL index {index_disk / total / 1024:.1f} KiB/record "
              "(Virtuoso's files not reachable from here)")
    print(f"migration embedded -> shared: {report.records:,} records at {migrate_rate:,.0f} records/s")
    print(f"peak RSS of this process (both deployments' clients): {rss_mib():,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, help="records written (default 5,000)")
    parser.add_argument("--quick", action="store_true", help="1,000 records")
    parser.add_argument("--full", action="store_true", help="20,000 records")
    args, _ = parser.parse_known_args()  # ./dev bench passes every bench the same options
    virtuoso = os.environ.get("SLUIS_TEST_VIRTUOSO_URL")
    postgres = os.environ.get("SLUIS_TEST_POSTGRES_URL")
    if not virtuoso or not postgres:
        print("bench_distributed: skipped, needs SLUIS_TEST_VIRTUOSO_URL and SLUIS_TEST_POSTGRES_URL "
              "(./dev bench starts both servers)")
        return
    count = args.records or (1_000 if args.quick else 20_000 if args.full else 5_000)
    # The test suite empties the same server's graphs: hold its lock (tests/distributed/conftest.py).
    digest = hashlib.sha256(virtuoso.encode()).hexdigest()[:12]
    with (Path(tempfile.gettempdir()) / f"sluis-virtuoso-{digest}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run(count, virtuoso, postgres)


if __name__ == "__main__":
    main()
