"""Catalogue at scale: 100,000 and 1,000,000 generated records, one table (``./dev bench --full``).

What it does, per catalogue size:

1. **anchors** on a sample of the same records: pyshacl with the official DCAT-AP 3.0.1 shapes
   (when ``../shared/conformance`` is there) and rdflib's in-memory store loading the records;
2. **validated ingest**: ``--validated`` records as Turtle through the real pipeline
   (``node.pipeline.ingest``, strict: parse, normalise, validate, score, sign, store, index);
3. **bulk load**: the rest through the store's bulk loader (``OxigraphStore.load_new``) and the
   index's transactions, writing the store and index rows the pipeline writes for the same
   records (checked on a sample against ``flatten_record``) but without validation, scoring or
   signatures; the quality of these records is drawn, not scored;
4. **search** on the embedded index (SQLite FTS5): a distinctive word + two facets, the most
   common words + two facets, one facet without text, the landing page's facet counts; and, with
   ``--postgres URL``, the same on a PostgreSQL index holding the first ``--postgres-records``
   of the same rows (20,000 by default: filling PostgreSQL row by row is slow);
5. the **SPARQL top-20** (theme filter, ``ORDER BY DESC(?modified)``) through the node's SPARQL
   endpoint (isolated worker), peak RSS of this process and disk per record.

Wall clock and CPU seconds are both printed: the machine is shared, so wall-clock figures are
pessimistic. Nothing is asserted; ratios to the targets are printed.

Usage: ``python bench/bench_scale.py [--records N ...] [--validated N] [--postgres URL] [--keep DIR]``
(default: 100,000 then 1,000,000 records, 5,000 of each validated).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from scale_records import (  # noqa: E402
    FORMATS,
    THEME_WEIGHTS,
    THEMES,
    Facts,
    RecordGenerator,
    index_row,
    ntriples,
    turtle,
)

from catalogue.api import open_node  # noqa: E402
from catalogue.index import SearchQuery  # noqa: E402
from catalogue.pipeline import Document, IngestMode  # noqa: E402
from catalogue.publish import timestamp  # noqa: E402
from catalogue.search_backend import SearchBackend  # noqa: E402
from catalogue.store import LOCAL_SOURCE, RecordVersion  # noqa: E402
from catalogue.store.records import OxigraphStore  # noqa: E402
from catalogue.store.sparql import QueryTimeout  # noqa: E402

TARGET_INGEST_PER_SECOND = 2000
TARGET_SEARCH_P99_MS = 50.0
TARGET_RSS_GIB = 4.0
SEARCHES = 200
CONFORMANCE = Path(os.environ.get("SLUIS_CONFORMANCE_DIR", REPO.parent / "shared" / "conformance"))
SPLIT_SHAPES = ("shapes.ttl", "range.ttl", "mdr-vocabularies.shape.ttl", "shapes_recommended.ttl")
SPARQL_TOP20 = """PREFIX dcat: <http://www.w3.org/ns/dcat#> PREFIX dct: <http://purl.org/dc/terms/>
SELECT ?d ?title ?modified WHERE { ?d a dcat:Dataset ; dct:title ?title ; dct:modified ?modified ;
dcat:theme <http://publications.europa.eu/resource/authority/data-theme/HEAL> }
ORDER BY DESC(?modified) LIMIT 20"""


@dataclass
class Column:
    """Figures of one catalogue size: rows of the printed table."""

    records: int
    cells: dict[str, str] = field(default_factory=dict)


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the SPARQL worker, du)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(action: Callable[[], Any]) -> tuple[float, float]:
    """(wall-clock ms, CPU ms of this thread): CPU time is what the load of the machine does not inflate."""
    started, cpu = time.perf_counter(), time.thread_time()
    action()
    return (time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000


def spread(timings: list[tuple[float, float]], low: float = 0.5, high: float = 0.99) -> str:
    """ "p50 / p99 ms wall (CPU p50 / p99)" of a list of :func:`timed` results."""
    wall, cpu = [t[0] for t in timings], [t[1] for t in timings]
    return (
        f"{percentile(wall, low):.1f} / {percentile(wall, high):.1f} ms "
        f"(CPU {percentile(cpu, low):.1f} / {percentile(cpu, high):.1f})"
    )


# ---- anchors ----------------------------------------------------------------------------------
def anchors(sample: list[Facts], column: Column) -> None:
    """pyshacl (official shapes) and rdflib's memory store on a sample of the same records."""
    from rdflib import Graph

    started, cpu = time.perf_counter(), cpu_seconds()
    graphs = [Graph().parse(data=ntriples(facts), format="nt") for facts in sample]
    elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
    column.cells["anchor: rdflib memory store load"] = (
        f"{len(sample) / elapsed:,.0f}/s ({len(sample) / max(used, 1e-9):,.0f}/CPU-s)"
    )
    split = CONFORMANCE / "dcat-ap" / "shapes" / "dcat-ap-3.0.1" / "split"
    if not split.is_dir():
        column.cells["anchor: pyshacl, official shapes"] = "n/a (no ../shared/conformance)"
        return
    from catalogue.validation._reference import reference_raw

    shapes = Graph()
    for name in SPLIT_SHAPES:
        shapes.parse(split / name)
    few = graphs[:20]
    started, cpu = time.perf_counter(), cpu_seconds()
    for graph in few:
        reference_raw(graph, shapes)
    elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
    column.cells["anchor: pyshacl, official shapes"] = (
        f"{len(few) / elapsed:,.1f}/s ({len(few) / max(used, 1e-9):,.1f}/CPU-s; {len(few)} records)"
    )


def check_rows(generator: RecordGenerator, count: int) -> int:
    """How many bulk rows differ from what ``flatten_record`` makes of the same N-Triples."""
    from rdflib import Graph, URIRef

    from catalogue.index import flatten_record

    ignored = {"quality_total": None, "quality_maximum": None, "quality_band": None, "facets": None}
    different = 0
    for n in range(count):
        facts = generator.facts(10_000_000 + n)
        graph = Graph().parse(data=ntriples(facts), format="nt")
        flat = flatten_record(graph, URIRef(facts.iri), record_id="x", record_modified="m", version=1)
        bulk = index_row(facts, "x", "m")
        skip = {"quality_band", "ehds_minimum"}  # from the drawn quality, not the record
        same_facets = {k: v for k, v in flat.facets.items() if v and k not in skip} == {
            k: v for k, v in bulk.facets.items() if v and k not in skip
        }
        if not same_facets or flat.__dict__ | ignored != bulk.__dict__ | ignored:
            different += 1
    return different


# ---- loading ----------------------------------------------------------------------------------
def validated_ingest(node_dir: Path, generator: RecordGenerator, count: int, column: Column) -> None:
    """Records as Turtle through the node's ingest pipeline, strict (a violation is a rejection)."""
    node = open_node(node_dir)
    documents: Iterator[Document] = (
        Document(f"r{n}", turtle(generator.facts(n)).encode(), "text/turtle") for n in range(count)
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    results = node.pipeline.ingest(documents, mode=IngestMode.STRICT)
    elapsed = time.perf_counter() - started
    node.close()  # stops the ingest workers, so their CPU time is counted
    used = cpu_seconds() - cpu
    rejected = sum(
        1 for document in results for error in [document.error, *(r.error for r in document.records)] if error
    )
    column.cells["validated ingest (pipeline, strict)"] = (
        f"{count / elapsed:,.0f}/s, {count / max(used, 1e-9):,.0f}/CPU-s "
        f"({count:,} records, {rejected} rejected; {count / elapsed / TARGET_INGEST_PER_SECOND:.2f}x target)"
    )


def bulk_load(
    node_dir: Path, generator: RecordGenerator, start: int, stop: int, column: Column, batch: int = 5000
) -> None:
    """The rest through the store's bulk loader and the index's transactions."""
    node = open_node(node_dir)
    store = node.store
    assert isinstance(store, OxigraphStore), "the bulk loader is the embedded store's"
    modified = timestamp(datetime.now(UTC))
    now = datetime.now(UTC)
    started, cpu = time.perf_counter(), cpu_seconds()
    for first in range(start, stop, batch):
        versions, rows = [], []
        for n in range(first, min(stop, first + batch)):
            facts = generator.facts(n)
            record_id = f"bulk{n:09d}"
            quality = {"total": facts.quality_total, "maximum": 405, "band": facts.quality_band}
            versions.append(
                RecordVersion(
                    record_id,
                    1,
                    facts.iri,
                    now,
                    False,
                    facts.publisher.iri,
                    LOCAL_SOURCE,
                    content=ntriples(facts),
                    quality={"quality": quality},
                )
            )
            rows.append(index_row(facts, record_id, modified))
        with node.index.transaction() as transaction:
            for row in rows:
                transaction.upsert(row)
            store.load_new(versions)
        done = min(stop, first + batch) - start
        if done % 100_000 < batch:
            rate = done / (time.perf_counter() - started)
            print(
                f"  bulk load {done:,}/{stop - start:,}: {rate:,.0f}/s, RSS {rss_gib():.2f} GiB", flush=True
            )
    elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
    node.close()
    count = stop - start
    column.cells["bulk load (store + index, not validated)"] = (
        f"{count / elapsed:,.0f}/s, {count / max(used, 1e-9):,.0f}/CPU-s ({count:,} records)"
    )


# ---- measuring --------------------------------------------------------------------------------
def two_facets(rng: random.Random) -> dict[str, list[str]]:
    return {"theme": [rng.choices(THEMES, weights=THEME_WEIGHTS)[0]], "format": [rng.choice(FORMATS[:8])]}


def search_figures(index: SearchBackend, generator: RecordGenerator, label: str, column: Column) -> None:
    rng = random.Random(5)
    vocabulary = generator.vocabulary
    languages = list(vocabulary.words)
    distinctive: list[tuple[float, float]] = []
    for _ in range(SEARCHES):
        language = rng.choice(languages)
        words = vocabulary.words[language]
        word = rng.choice(words[50 : max(51, len(words) // 3)])
        query = SearchQuery(word, two_facets(rng))
        distinctive.append(timed(lambda query=query: index.search(query)))  # type: ignore[misc]
    common = [
        timed(lambda word=word: index.search(SearchQuery(word, two_facets(rng))))  # type: ignore[misc]
        for language in ("en", "de", "fr", "it", "es")
        for word in vocabulary.common(language, 4)
    ]
    broad = [
        timed(lambda: index.search(SearchQuery("", {"access_rights": ["PUBLIC"]}, "relevance", 1, 20)))
        for _ in range(30)
    ]
    landing = [timed(lambda: index.search(SearchQuery())) for _ in range(10)]
    p99 = percentile([t[0] for t in distinctive], 0.99)
    column.cells[f"{label}: word + two facets, p50 / p99"] = (
        f"{spread(distinctive)}; {p99 / TARGET_SEARCH_P99_MS:.2f}x target"
    )
    column.cells[f"{label}: 20 most common words + two facets, p50 / max"] = spread(common, 0.5, 1.0)
    column.cells[f"{label}: one facet, no text (≈85 % match), p50 / p99"] = spread(broad)
    column.cells[f"{label}: landing page (all facet counts), p50 / max"] = spread(landing, 0.5, 1.0)


def sparql_figure(node_dir: Path, column: Column) -> None:
    node = open_node(node_dir)
    timings = []
    rows = 0
    for _ in range(3):
        started = time.perf_counter()
        try:
            answer = node.sparql.run(SPARQL_TOP20)
        except QueryTimeout as stopped:  # a figure too: the public endpoint's limit was reached
            node.close()
            column.cells["SPARQL top-20 (theme, ORDER BY modified)"] = (
                f"stopped at the endpoint's limit after {time.perf_counter() - started:,.0f} s ({stopped})"
            )
            return
        timings.append((time.perf_counter() - started) * 1000)
        rows = answer.count
    node.close()
    column.cells["SPARQL top-20 (theme, ORDER BY modified)"] = (
        f"best {min(timings):,.0f} ms, first {timings[0]:,.0f} ms ({rows} rows)"
    )


def disk_figure(node_dir: Path, records: int, column: Column) -> None:
    def size(path: Path) -> int:
        answer = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
        return int(answer.stdout.split()[0])

    store = size(node_dir / "store")
    index = size(node_dir / "index.sqlite") + sum(
        size(path) for path in node_dir.glob("index.sqlite-*") if path.exists()
    )
    per = {name: size / records / 1024 for name, size in (("store", store), ("index", index))}
    column.cells["disk per record (store + index)"] = (
        f"{per['store'] + per['index']:.1f} KiB ({per['store']:.1f} + {per['index']:.1f})"
    )


def postgres_figures(url: str, records: int, column: Column) -> None:
    """Fill a PostgreSQL index with the catalogue's first ``records`` rows and search it.

    A fresh generator with the same seed makes the same records in the same order. Only the
    first rows: a PostgreSQL index row costs a round trip per statement and ~10 ``to_tsvector``
    calls, ~45 rows/s on the loaded development machine, so a million would take hours.
    """
    import psycopg

    from catalogue.index_postgres import PostgresIndex

    database = "sluis_bench_scale"  # a database of its own, made afresh
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {database}")
    url = f"{url.rpartition('/')[0]}/{database}"
    index = PostgresIndex(url)
    generator = RecordGenerator(seed=1)
    started, cpu = time.perf_counter(), cpu_seconds()
    for first in range(0, records, 1000):
        rows = [
            index_row(generator.facts(n), f"r{n:09d}", "m") for n in range(first, min(records, first + 1000))
        ]
        with index.transaction() as transaction:
            for row in rows:
                transaction.upsert(row)
    elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
    label = f"PostgreSQL, first {records:,} records"
    column.cells[f"{label}: index load"] = (
        f"{records / elapsed:,.0f}/s, {records / max(used, 1e-9):,.0f}/CPU-s (client)"
    )
    search_figures(index, generator, label, column)
    index.close()


def run(
    records: int, validated: int, postgres: str | None, postgres_records: int, keep: Path | None
) -> Column:
    column = Column(records)
    generator = RecordGenerator(seed=1)
    anchors([generator.facts(20_000_000 + n) for n in range(200)], column)
    column.cells["bulk rows differing from flatten_record (of 200)"] = str(check_rows(generator, 200))
    generator = RecordGenerator(seed=1)  # the catalogue itself starts from the seed again
    with tempfile.TemporaryDirectory(prefix="sluis-scale-", dir=keep) as folder:
        node_dir = Path(folder) / "node"
        wall, cpu = time.perf_counter(), cpu_seconds()
        validated_ingest(node_dir, generator, min(validated, records), column)
        if records > validated:
            bulk_load(node_dir, generator, validated, records, column)
        column.cells["time to fill (wall / CPU)"] = (
            f"{time.perf_counter() - wall:,.0f} s / {cpu_seconds() - cpu:,.0f} s"
        )
        node = open_node(node_dir)
        started = time.perf_counter()
        search_figures(node.index, generator, "SQLite search", column)
        node.close()
        print(f"  searches measured in {time.perf_counter() - started:.0f} s", flush=True)
        print_table([column])  # what is measured so far, should a later part fail
        sparql_figure(node_dir, column)
        disk_figure(node_dir, records, column)
        column.cells["peak RSS (this process)"] = (
            f"{rss_gib():.2f} GiB ({rss_gib() / TARGET_RSS_GIB:.2f}x budget)"
        )
        if postgres:
            print_table([column])  # what is measured so far, should the PostgreSQL part be cut short
            postgres_figures(postgres, min(records, postgres_records), column)
    return column


def run_index_only(records: int, keep: Path | None) -> Column:
    """The embedded search index alone at ``records`` (no store, no validation): search figures.

    For a size whose store fill does not fit the time at hand: the index rows are the bulk
    loader's, so the search figures are those of the full run; store-side figures (SPARQL, disk
    of the store) are left out of this column.
    """
    from catalogue.index import SearchIndex

    column = Column(records)
    generator = RecordGenerator(seed=1)
    with tempfile.TemporaryDirectory(prefix="sluis-scale-index-", dir=keep) as folder:
        path = Path(folder) / "index.sqlite"
        index = SearchIndex(path)
        modified = timestamp(datetime.now(UTC))
        started, cpu = time.perf_counter(), cpu_seconds()
        for first in range(0, records, 5000):
            rows = [
                index_row(generator.facts(n), f"bulk{n:09d}", modified)
                for n in range(first, min(records, first + 5000))
            ]
            with index.transaction() as transaction:
                for row in rows:
                    transaction.upsert(row)
            if (first + 5000) % 100_000 == 0:
                print(f"  index rows {first + 5000:,}/{records:,}, RSS {rss_gib():.2f} GiB", flush=True)
        elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
        column.cells["index rows written (index only, no store)"] = (
            f"{records / elapsed:,.0f}/s, {records / max(used, 1e-9):,.0f}/CPU-s"
        )
        index.close()
        index = SearchIndex(path)
        search_figures(index, generator, "SQLite search", column)
        index.close()
        size = sum(item.stat().st_size for item in Path(folder).iterdir())
        column.cells["disk per record (index only)"] = f"{size / records / 1024:.1f} KiB"
        column.cells["peak RSS (this process)"] = f"{rss_gib():.2f} GiB (index only)"
    return column


def print_table(columns: list[Column]) -> None:
    names: list[str] = []
    for column in columns:
        names += [name for name in column.cells if name not in names]
    header = ["figure", *[f"{column.records:,} records" for column in columns]]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in names:
        print("| " + " | ".join([name, *[column.cells.get(name, "—") for column in columns]]) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, action="append", help="catalogue size (repeatable; 0: none)")
    parser.add_argument("--validated", type=int, default=5000, help="records through the validated pipeline")
    parser.add_argument(
        "--postgres", help="also load and search a PostgreSQL index at this URL (tables replaced)"
    )
    parser.add_argument(
        "--postgres-records", type=int, default=20_000, help="rows of the PostgreSQL index (the first ones)"
    )
    parser.add_argument(
        "--index-only", type=int, action="append", default=[], help="also a column with only the search index"
    )
    parser.add_argument("--keep", type=Path, help="folder for the node (default: the temporary folder)")
    args = parser.parse_args()
    columns = []
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores shared: figures are pessimistic)")
    for records in [n for n in (args.records if args.records is not None else [100_000, 1_000_000]) if n > 0]:
        print(f"== {records:,} records", flush=True)
        columns.append(run(records, args.validated, args.postgres, args.postgres_records, args.keep))
        print_table(columns)
    for records in args.index_only:
        print(f"== {records:,} records, search index only", flush=True)
        columns.append(run_index_only(records, args.keep))
        print_table(columns)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
