"""Harvest benchmark: one catalogue node harvesting another over HTTP on loopback.

Node B holds N synthetic DCAT-AP records (those of ``bench_catalogue.py``, published through the
validated bulk path) and serves them with ``sluis catalogue serve`` in its own process. Node A
harvests B in this process through the real harvester: Hydra pages of 1,000 records fetched,
parsed, each record cut out, its node proof checked against B's trusted key, validated,
scored, signed by A, stored and indexed, origins recorded. Then A harvests B again: every record
is unchanged (the digest check), which shows what fetching and reading pages costs on its own.

Usage: ``python bench/bench_harvest.py [--quick] [--records N]`` (``--quick``: 1,000 records;
default 5,000). Prints datasets/s, CPU per dataset, where the time went, and the ratio to the
target (2,000 datasets/s); asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import httpx  # noqa: E402
from bench_catalogue import record_turtle, synthetic_record  # noqa: E402

from catalogue.api import open_node  # noqa: E402
from catalogue.harvest import Federation, HarvestLimits, NodeSettings, Source  # noqa: E402
from catalogue.pipeline import Document, IngestMode  # noqa: E402
from catalogue.signing import load_node_key  # noqa: E402
from connector.identity import did_web_for  # noqa: E402

TARGET_DATASETS_PER_SECOND = 2000
PAGE_SIZE = 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def workers_cpu() -> float:
    """CPU-seconds of this process's ingest workers (alive, so not in RUSAGE_CHILDREN), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != os.getpid():
                continue
            if b"spawn_main" not in (stat.parent / "cmdline").read_bytes():
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return total


def process_cpu(pid: int) -> float:
    """CPU-seconds of one process so far (node B), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def fill(node_dir: Path, count: int) -> None:
    rng = random.Random(11)
    node = open_node(node_dir)
    documents = (
        Document(str(n), record_turtle(synthetic_record(n, rng)).encode(), "text/turtle")
        for n in range(count)
    )
    started = time.perf_counter()
    results = node.pipeline.ingest(documents, mode=IngestMode.STRICT)
    node.close()
    failed = sum(1 for result in results if result.error is not None or any(r.error for r in result.records))
    print(
        f"node B filled: {count - failed:,} records in {time.perf_counter() - started:.1f} s "
        f"({failed} rejected)"
    )


def serve(node_dir: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "sluis.cli",
        "catalogue",
        "serve",
        "--data",
        str(node_dir),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/catalogue/node", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("node B did not start")


def run(count: int, profiled: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        fill(root / "b", count)
        port = free_port()
        key = load_node_key(root / "b").public_multibase
        did = did_web_for("127.0.0.1", port)
        b = serve(root / "b", port)
        try:
            source = Source(
                "b", f"http://127.0.0.1:{port}/catalogue/catalog?page_size={PAGE_SIZE}", "dcat", did
            )
            settings = NodeSettings(
                public_url="http://127.0.0.1:9",
                sources=(source,),
                trusted={did: (key,)},
                limits=HarvestLimits(batch_size=500),
            )
            node = open_node(root / "a")
            federation = Federation(node.publisher, root / "a", settings)
            # The ingest workers start once per node process (spawn, imports, DCAT-AP shapes):
            # started here and reported apart, as bench_catalogue.py does.
            startup = federation.harvester.start_workers()
            profile = cProfile.Profile(time.process_time)
            started, own_started = time.perf_counter(), time.process_time()
            workers_started, b_started = workers_cpu(), process_cpu(b.pid)
            if profiled:
                profile.enable()
            first = federation.harvest("b")
            profile.disable()
            elapsed = time.perf_counter() - started
            own = time.process_time() - own_started
            pooled = workers_cpu() - workers_started
            serving = process_cpu(b.pid) - b_started
            stored = first.counts.get("stored", 0)
            per = 1000 / max(stored, 1)
            rate = stored / elapsed
            status = federation.status("b") or {}
            print(
                f"harvest (new records): {stored:,} datasets in {elapsed:.1f} s = {rate:,.0f} datasets/s "
                f"({rate / TARGET_DATASETS_PER_SECOND:.2f}x target {TARGET_DATASETS_PER_SECOND:,}/s; "
                f"gap {max(TARGET_DATASETS_PER_SECOND / max(rate, 1e-9), 1):.0f}x); "
                f"state {first.state}, trusted {status['counts']['trusted']:,}, "
                f"quarantined {first.counts.get('quarantined', 0)}, "
                f"rejected {first.counts.get('rejected', 0)}"
            )
            print(
                f"  CPU per dataset: A {own * per:.2f} ms + A's ingest workers {pooled * per:.2f} ms "
                f"= {(own + pooled) * per:.2f} ms ({stored / max(own + pooled, 1e-9):,.0f} datasets per "
                f"CPU-second); B serving its pages {serving * per:.2f} ms (the same two cores); "
                f"workers' start-up {startup:.1f} CPU-s apart; load average {os.getloadavg()[0]:.1f}"
            )
            started, cpu_started, b_started = time.perf_counter(), time.process_time(), process_cpu(b.pid)
            federation.ledger.set_sync_state("b", etag=None, last_modified=None, watermark=None)
            with federation.ledger.transaction() as db:  # no validators: every page read in full
                db.execute("DELETE FROM page_state")
            again = federation.harvest("b")
            elapsed_again, cpu_again = time.perf_counter() - started, time.process_time() - cpu_started
            serving_again = process_cpu(b.pid) - b_started
            unchanged = again.counts.get("unchanged", 0)
            print(
                f"harvest again (all unchanged, pages fetched and read, digests compared): "
                f"{unchanged:,} datasets in {elapsed_again:.1f} s = "
                f"{unchanged / elapsed_again:,.0f} datasets/s; CPU in A {cpu_again:.1f} s = "
                f"{cpu_again * 1000 / max(unchanged, 1):.2f} ms per dataset; B "
                f"{serving_again * 1000 / max(unchanged, 1):.2f} ms"
            )
            if profiled:
                print("where A's CPU went in the first harvest (cumulative CPU-s, the project's functions):")
                stats = pstats.Stats(profile, stream=sys.stdout)
                stats.sort_stats("cumulative").print_stats(r"(catalogue|connector|vocab)/", 25)
            federation.close()
            node.close()
        finally:
            b.terminate()
            b.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 records")
    parser.add_argument("--records", type=int, help="records on node B (default 5,000)")
    parser.add_argument("--profile", action="store_true", help="profile the first harvest (slower)")
    args = parser.parse_args()
    run(args.records or (1000 if args.quick else 5000), args.profile)


if __name__ == "__main__":
    main()
