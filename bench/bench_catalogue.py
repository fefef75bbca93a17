"""Catalogue benchmark: validated ingest, search latency, facet counts, SPARQL, memory.

Synthetic records shaped like data.europa.eu's DCAT-AP ones (title, description, keywords,
publisher, contact point, themes, spatial, access rights, 1-3 distributions with format, licence
and byte size; one in ten a HealthDCAT-AP record with health categories).

Two phases, both printed:

1. **validated ingest** — records as Turtle through the real bulk path (parse, extract,
   SHACL validation with the fast validator, quality, signature, store, index), batch by batch;
2. **scale** — the catalogue is filled up to the target size by a direct loader that writes the
   same store and index rows without re-validating (the records are generated valid), then search
   (full text + two facets), facet counts, a SPARQL top-20 and RSS are measured.

Usage: ``python bench/bench_catalogue.py [--quick] [--records N] [--validated N]``
(``--quick``: 10,000 records, 300 of them through the validated path; default 20,000 records,
5,000 validated; ``--records`` repeatable for other sizes). The 100,000 and 1,000,000-record
runs are ``bench/bench_scale.py`` (``./dev bench --full``). Prints figures and ratios to the
targets, asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from catalogue.api import open_node  # noqa: E402
from catalogue.index import IndexRow, SearchQuery  # noqa: E402
from catalogue.pipeline import Document, IngestMode  # noqa: E402
from catalogue.publish import timestamp  # noqa: E402
from catalogue.store import LOCAL_SOURCE, RecordVersion  # noqa: E402

TARGET_INGEST_PER_SECOND = 2000
TARGET_SEARCH_P99_MS = 50
TARGET_RSS_GIB = 4.0
BANDS = ["excellent", "good", "sufficient", "bad"]

EU = "http://publications.europa.eu/resource/authority/"
THEMES = [
    "AGRI",
    "ECON",
    "EDUC",
    "ENER",
    "ENVI",
    "GOVE",
    "HEAL",
    "INTR",
    "JUST",
    "REGI",
    "SOCI",
    "TECH",
    "TRAN",
]
FORMATS = ["CSV", "JSON", "XML", "XLSX", "PDF", "PARQUET", "GEOJSON", "ZIP", "RDF_TURTLE", "HTML"]
LICENCES = ["CC_BY_4_0", "CC0", "CC_BYSA_4_0", "ODC_BY", "EUPL_1_2"]
COUNTRIES = ["NLD", "BEL", "DEU", "FRA", "ITA", "ESP", "POL", "SWE", "AUT", "DNK", "FIN", "IRL", "PRT", "CZE"]
ACCESS = ["PUBLIC", "PUBLIC", "PUBLIC", "RESTRICTED", "NON_PUBLIC"]
# Codes of the HealthDCAT-AP Release 8 health-category table
# (EHR, registries, genomics, population registries, administrative data).
HEALTH_CATEGORIES = ["EHRS", "MRMR", "HGPD", "PHDR", "HRAD"]
HEALTH_CATEGORY = "https://hdeu-dcat.data.health.europa.eu/resource/authority/healthcategories/"
EHDS = "http://data.europa.eu/eli/reg/2025/327/oj"
HDAB = "https://data.example.eu/org/hdab"
BASE_WORDS = [
    "electricity",
    "grid",
    "load",
    "hourly",
    "regional",
    "population",
    "mortality",
    "weekly",
    "hospital",
    "admissions",
    "energy",
    "consumption",
    "household",
    "income",
    "census",
    "employment",
    "unemployment",
    "emissions",
    "air",
    "quality",
    "station",
    "traffic",
    "road",
    "rail",
    "passenger",
    "freight",
    "water",
    "reservoir",
    "solar",
    "wind",
    "capacity",
    "generation",
    "vaccination",
    "coverage",
    "cancer",
    "incidence",
    "registry",
    "prices",
    "inflation",
    "trade",
    "exports",
    "imports",
    "births",
    "deaths",
    "migration",
    "education",
    "school",
    "budget",
    "expenditure",
    "tax",
    "revenue",
    "agriculture",
    "harvest",
    "forest",
    "land",
    "building",
    "permits",
    "housing",
    "rents",
    "transport",
    "accidents",
    "crime",
    "statistics",
]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "ze",
    "bra",
    "cle",
    "dro",
    "fen",
    "gul",
    "hap",
    "jor",
]


def _vocabulary() -> list[str]:
    """~3,000 words with a Zipf-like frequency (rank r has weight 1/r), as in real metadata text."""
    rng = random.Random(7)
    words = list(BASE_WORDS)
    seen = set(words)
    while len(words) < 3000:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


WORDS = _vocabulary()
# Search terms are drawn uniformly past the most frequent words: a user searches for what is
# distinctive, not for words nearly every description holds (those are measured separately).
QUERY_SKIP_COMMON = 50
_CUMULATIVE = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(WORDS))))


def words(rng: random.Random, count: int) -> list[str]:
    return rng.choices(WORDS, cum_weights=_CUMULATIVE, k=count)


XSD = "http://www.w3.org/2001/XMLSchema#"
P = {
    "type": "http://www.w3.org/1999/02/22-rdf-syntax-ns#type",
    "title": "http://purl.org/dc/terms/title",
    "description": "http://purl.org/dc/terms/description",
    "identifier": "http://purl.org/dc/terms/identifier",
    "publisher": "http://purl.org/dc/terms/publisher",
    "contactPoint": "http://www.w3.org/ns/dcat#contactPoint",
    "theme": "http://www.w3.org/ns/dcat#theme",
    "keyword": "http://www.w3.org/ns/dcat#keyword",
    "spatial": "http://purl.org/dc/terms/spatial",
    "accessRights": "http://purl.org/dc/terms/accessRights",
    "issued": "http://purl.org/dc/terms/issued",
    "modified": "http://purl.org/dc/terms/modified",
    "distribution": "http://www.w3.org/ns/dcat#distribution",
    "accessURL": "http://www.w3.org/ns/dcat#accessURL",
    "format": "http://purl.org/dc/terms/format",
    "license": "http://purl.org/dc/terms/license",
    "byteSize": "http://www.w3.org/ns/dcat#byteSize",
    "healthCategory": "http://healthdataportal.eu/ns/health#healthCategory",
    "applicableLegislation": "http://data.europa.eu/r5r/applicableLegislation",
    "name": "http://xmlns.com/foaf/0.1/name",
    "fn": "http://www.w3.org/2006/vcard/ns#fn",
    "hasEmail": "http://www.w3.org/2006/vcard/ns#hasEmail",
}


def synthetic_record(n: int, rng: random.Random) -> dict[str, Any]:
    """One record's facts; rendered as Turtle (validated path) or N-Triples + index row (direct)."""
    health = n % 10 == 0
    themes = rng.sample(THEMES, rng.randint(1, 2))
    if health and "HEAL" not in themes:
        themes.append("HEAL")
    year = rng.randint(2015, 2025)
    return {
        "iri": f"https://data.example.eu/dataset/{n}",
        "n": n,
        "publisher": f"https://data.example.eu/org/{rng.randrange(180)}",
        "title": " ".join(words(rng, 4)).capitalize() + f" {n}",
        "description": " ".join(words(rng, 30)).capitalize() + ".",
        "keywords": sorted(set(words(rng, 4))),
        "themes": themes,
        "country": rng.choice(COUNTRIES),
        "access": "PUBLIC" if health else rng.choice(ACCESS),
        "health": rng.sample(HEALTH_CATEGORIES, 2) if health else [],
        "year": year,
        "distributions": [
            (rng.choice(FORMATS), rng.choice(LICENCES), rng.randrange(1, 10**9))
            for _ in range(rng.randint(1, 3))
        ],
    }


def record_turtle(record: dict[str, Any]) -> str:
    iri, n = record["iri"], record["n"]
    keywords = " , ".join(f'"{word}"@en' for word in record["keywords"])
    themes = " , ".join(f"<{EU}data-theme/{theme}>" for theme in record["themes"])
    links = ", ".join(f"<{iri}/d{d}>" for d in range(len(record["distributions"])))
    legislation = f" ;\n    dcatap:applicableLegislation <{EHDS}>" if record["health"] else ""
    distributions = "\n".join(
        f"""<{iri}/d{d}> a dcat:Distribution ;
    dct:title "Download {d}"@en ;
    dcat:accessURL <https://files.example.eu/{n}/{d}> ;
    dct:format <{EU}file-type/{file_type}> ;
    dct:license <{EU}licence/{licence}> ;
    dcat:byteSize "{size}"^^xsd:nonNegativeInteger{legislation} ."""
        for d, (file_type, licence, size) in enumerate(record["distributions"])
    )
    health = ""
    if record["health"]:
        categories = " , ".join(f"<{HEALTH_CATEGORY}{c}>" for c in record["health"])
        # What the HealthDCAT-AP Release 8 public tier asks of a health dataset and its
        # distributions (structured-data flag, health data access body, legislation).
        health = (
            f";\n    healthdcatap:healthCategory {categories} ;\n"
            f"    dcatap:applicableLegislation <{EHDS}> ;\n"
            f"    healthdcatap:hasStructuredData false ;\n    healthdcatap:hdab <{HDAB}> ;\n"
            f"    dct:type <{EU}dataset-type/STATISTICAL>"
        )
    publisher = record["publisher"]
    hdab = (
        f"""\n<{HDAB}> a foaf:Organization ; foaf:name "Health data access body"@en ;
    foaf:homepage <https://data.example.eu/hdab> ; foaf:mbox <mailto:permits@data.example.eu> ;
    <http://data.europa.eu/m8g/contactPoint> [ a <http://data.europa.eu/m8g/ContactPoint> ;
        <http://data.europa.eu/m8g/contactPage> <https://data.example.eu/hdab> ] ."""
        if record["health"]
        else ""
    )
    return f"""@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix dcatap: <http://data.europa.eu/r5r/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix vcard: <http://www.w3.org/2006/vcard/ns#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix healthdcatap: <http://healthdataportal.eu/ns/health#> .
<{iri}> a dcat:Dataset ;
    dct:title "{record["title"]}"@en ;
    dct:description "{record["description"]}"@en ;
    dct:identifier "{n}" ;
    dct:publisher <{publisher}> ;
    dcat:contactPoint [ a vcard:Kind ; vcard:fn "Data desk" ; vcard:hasEmail <mailto:data@example.eu> ] ;
    dcat:theme {themes} ;
    dcat:keyword {keywords} ;
    dct:spatial <{EU}country/{record["country"]}> ;
    dct:accessRights <{EU}access-right/{record["access"]}> ;
    dct:issued "{record["year"]}-01-15"^^xsd:date ;
    dct:modified "{record["year"]}-06-01T10:00:00Z"^^xsd:dateTime ;
    dcat:distribution {links}{health} .
<{publisher}> a foaf:Agent ; foaf:name "Publisher {publisher.rsplit("/", 1)[1]}"@en .
{distributions}{hdab}
"""


def record_ntriples(record: dict[str, Any]) -> str:
    iri, n = record["iri"], record["n"]

    def i(value: str) -> str:
        return f"<{value}>"

    def lit(value: str, datatype: str | None = None, lang: str | None = None) -> str:
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return text + (f"@{lang}" if lang else f"^^<{datatype}>" if datatype else "")

    s = i(iri)
    contact = f"_:c{n}"
    lines = [
        (s, i(P["type"]), "<http://www.w3.org/ns/dcat#Dataset>"),
        (s, i(P["title"]), lit(record["title"], lang="en")),
        (s, i(P["description"]), lit(record["description"], lang="en")),
        (s, i(P["identifier"]), lit(str(n))),
        (s, i(P["publisher"]), i(record["publisher"])),
        (s, i(P["contactPoint"]), contact),
        (contact, i(P["type"]), "<http://www.w3.org/2006/vcard/ns#Kind>"),
        (contact, i(P["fn"]), lit("Data desk")),
        (contact, i(P["hasEmail"]), "<mailto:data@example.eu>"),
        (s, i(P["spatial"]), i(f"{EU}country/{record['country']}")),
        (s, i(P["accessRights"]), i(f"{EU}access-right/{record['access']}")),
        (s, i(P["issued"]), lit(f"{record['year']}-01-15", XSD + "date")),
        (s, i(P["modified"]), lit(f"{record['year']}-06-01T10:00:00Z", XSD + "dateTime")),
        (i(record["publisher"]), i(P["type"]), "<http://xmlns.com/foaf/0.1/Agent>"),
        (
            i(record["publisher"]),
            i(P["name"]),
            lit("Publisher " + record["publisher"].rsplit("/", 1)[1], lang="en"),
        ),
    ]
    lines += [(s, i(P["theme"]), i(f"{EU}data-theme/{theme}")) for theme in record["themes"]]
    lines += [(s, i(P["keyword"]), lit(word, lang="en")) for word in record["keywords"]]
    for category in record["health"]:
        lines.append((s, i(P["healthCategory"]), i(f"{HEALTH_CATEGORY}{category}")))
    if record["health"]:
        lines.append((s, i(P["applicableLegislation"]), i(EHDS)))
    for d, (file_type, licence, size) in enumerate(record["distributions"]):
        dist = i(f"{iri}/d{d}")
        lines += [
            (s, i(P["distribution"]), dist),
            (dist, i(P["type"]), "<http://www.w3.org/ns/dcat#Distribution>"),
            (dist, i(P["title"]), lit(f"Download {d}", lang="en")),
            (dist, i(P["accessURL"]), i(f"https://files.example.eu/{n}/{d}")),
            (dist, i(P["format"]), i(f"{EU}file-type/{file_type}")),
            (dist, i(P["license"]), i(f"{EU}licence/{licence}")),
            (dist, i(P["byteSize"]), lit(str(size), XSD + "nonNegativeInteger")),
        ]
    return "\n".join(f"{a} {b} {c} ." for a, b, c in lines)


def record_row(record: dict[str, Any], record_id: str, modified: str, quality: dict[str, Any]) -> IndexRow:
    return IndexRow(
        record_id=record_id,
        dataset=record["iri"],
        kind="dataset",
        title=record["title"],
        description=record["description"],
        keywords=tuple(record["keywords"]),
        publisher=record["publisher"],
        publisher_name="Publisher " + record["publisher"].rsplit("/", 1)[1],
        modified=f"{record['year']}-06-01T10:00:00+00:00",
        record_modified=modified,
        version=1,
        quality_total=quality["total"],
        quality_maximum=405,
        quality_band=quality["band"],
        facets={
            "theme": tuple(f"{EU}data-theme/{theme}" for theme in record["themes"]),
            "publisher": (record["publisher"],),
            "format": tuple(sorted({f"{EU}file-type/{d[0]}" for d in record["distributions"]})),
            "license": tuple(sorted({f"{EU}licence/{d[1]}" for d in record["distributions"]})),
            "access_rights": (f"{EU}access-right/{record['access']}",),
            "spatial": (f"{EU}country/{record['country']}",),
            "health_category": tuple(f"{HEALTH_CATEGORY}{c}" for c in record["health"]),
            "quality_band": (quality["band"],),
        },
    )


def cpu_seconds() -> float:
    """CPU time of this process, all threads (steadier than wall clock on a shared machine)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def validated_ingest(node_dir: Path, count: int, rng: random.Random) -> float:
    node = open_node(node_dir)
    # Made before the clock starts: generating Turtle is the benchmark's cost, not the node's
    # (it used to be counted in the node's CPU, ~0.05 ms a record).
    documents = [
        Document(str(n), record_turtle(synthetic_record(n, rng)).encode(), "text/turtle")
        for n in range(count)
    ]
    # Start-up (spawning the workers, compiling the shapes in each) is paid once per run; it is
    # measured apart so the rate is what a long import sustains.
    starting = time.perf_counter()
    startup_cpu = node.pipeline.start_workers()
    startup = time.perf_counter() - starting
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    results = node.pipeline.ingest(documents, mode=IngestMode.STRICT)
    elapsed = time.perf_counter() - started
    own_cpu = cpu_seconds() - cpu_started  # the node's process: settling, signing checks, writes
    workers_cpu = node.pipeline.worker_cpu_seconds
    compiling = node.pipeline.worker_compile_seconds
    cpu = own_cpu + workers_cpu
    node.close()
    failed = [
        (result.name, error)
        for document in results
        for result, error in [(document, document.error), *((r, r.error) for r in document.records)]
        if error is not None
    ]
    rate = count / elapsed
    print(f"ingest workers started in {startup:.1f} s ({startup_cpu:.1f} CPU-s, once per run)")
    print(
        f"  CPU per record: {own_cpu / count * 1000:.2f} ms in the node's process (settle, store, index), "
        f"{workers_cpu / count * 1000:.2f} ms in the workers (parse, normalise, validate, score, sign)"
    )
    print(
        f"  of the workers' CPU, {compiling:.1f} s compiled the shapes of profile combinations met "
        f"during the run (once per worker and combination): "
        f"{(workers_cpu - compiling) / count * 1000:.2f} ms per record without it, "
        f"{(own_cpu + workers_cpu - compiling) / count * 1000:.2f} ms in all"
    )
    print(
        f"validated ingest: {count:,} records in {elapsed:.1f} s = {rate:,.0f} records/s "
        f"({rate / TARGET_INGEST_PER_SECOND:.2f}x target {TARGET_INGEST_PER_SECOND:,}/s); "
        f"CPU {cpu:.1f} s = {count / max(cpu, 1e-9):,.0f} records per CPU-second; rejected {len(failed)}"
    )
    if failed:
        print(f"  first rejection: {failed[0][0]}: {failed[0][1].detail}")
    return rate


def direct_load(node_dir: Path, start: int, stop: int, rng: random.Random, batch: int = 2000) -> float:
    """Fill store and index with generated-valid records (no parse, validation or signature).

    Uses the store's non-transactional bulk loader (``load_new``), as an initial import would.
    """
    node = open_node(node_dir)
    started = time.perf_counter()
    modified = timestamp(datetime.now(UTC))
    now = datetime.now(UTC)
    for first in range(start, stop, batch):
        versions = []
        rows = []
        for n in range(first, min(stop, first + batch)):
            record = synthetic_record(n, rng)
            record_id = f"bench{n:09d}"
            quality = {"total": rng.randrange(0, 406), "maximum": 405, "band": rng.choice(BANDS)}
            versions.append(
                RecordVersion(
                    record_id,
                    1,
                    record["iri"],
                    now,
                    False,
                    record["publisher"],
                    LOCAL_SOURCE,
                    content=record_ntriples(record),
                    quality={"quality": quality},
                )
            )
            rows.append(record_row(record, record_id, modified, quality))
        with node.index.transaction() as transaction:
            for row in rows:
                transaction.upsert(row)
            node.store.load_new(versions)
        done = min(stop, first + batch) - start
        if done % 50_000 < batch:
            rate = done / (time.perf_counter() - started)
            print(
                f"  direct load: {done:,}/{stop - start:,} ({rate:,.0f}/s, RSS {rss_gib():.2f} GiB)",
                flush=True,
            )
    elapsed = time.perf_counter() - started
    node.close()
    return (stop - start) / max(elapsed, 1e-9)


def measure(node_dir: Path, total: int, rng: random.Random) -> None:
    node = open_node(node_dir)
    latencies: list[float] = []
    facet_latencies: list[float] = []
    for _ in range(200):
        query = SearchQuery(
            rng.choice(WORDS[QUERY_SKIP_COMMON:]),
            {"theme": [rng.choice(THEMES)], "format": [rng.choice(FORMATS)]},
            "relevance",
            1,
            20,
        )
        started = time.perf_counter()
        result = node.index.search(query)
        latencies.append((time.perf_counter() - started) * 1000)
        assert result.facets is not None
    common: list[float] = []
    for word in WORDS[:10]:
        started = time.perf_counter()
        node.index.search(SearchQuery(word, {"theme": [rng.choice(THEMES)], "format": [rng.choice(FORMATS)]}))
        common.append((time.perf_counter() - started) * 1000)
    print(
        f"search for the 10 most common words (+ two facets): p50 {statistics.median(common):.1f} ms, "
        f"max {max(common):.1f} ms"
    )
    for _ in range(50):
        started = time.perf_counter()
        node.index.search(SearchQuery("", {"access_rights": [rng.choice(ACCESS)]}, "modified", 1, 20))
        facet_latencies.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    landing = node.index.search(SearchQuery())
    landing_ms = (time.perf_counter() - started) * 1000
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    print(
        f"search at {total:,}: full text + two facets p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"(p99 {p99 / TARGET_SEARCH_P99_MS:.2f}x target {TARGET_SEARCH_P99_MS} ms)"
    )
    print(
        f"facet counts: one-facet filter (no text) p50 {statistics.median(facet_latencies):.1f} ms, "
        f"p99 {percentile(facet_latencies, 0.99):.1f} ms; landing page (all facets, {landing.total:,} hits) "
        f"{landing_ms:.1f} ms"
    )
    sparql = """PREFIX dcat: <http://www.w3.org/ns/dcat#> PREFIX dct: <http://purl.org/dc/terms/>
        SELECT ?d ?title ?modified WHERE { ?d a dcat:Dataset ; dct:title ?title ; dct:modified ?modified ;
        dcat:theme <http://publications.europa.eu/resource/authority/data-theme/HEAL> }
        ORDER BY DESC(?modified) LIMIT 20"""
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        answer = node.sparql.run(sparql)
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"SPARQL top-20 (theme filter, ORDER BY modified): {min(timings):.0f} ms best of 3, "
        f"{answer.count} rows"
    )
    print(f"RSS (peak) {rss_gib():.2f} GiB ({rss_gib() / TARGET_RSS_GIB:.2f}x budget {TARGET_RSS_GIB} GiB)")
    node.close()


def run(total: int, validated: int) -> None:
    rng = random.Random(total)
    with tempfile.TemporaryDirectory(prefix="sluis-bench-") as folder:
        node_dir = Path(folder) / "node"
        print(f"== catalogue with {total:,} records")
        validated_ingest(node_dir, validated, rng)
        if total > validated:
            rate = direct_load(node_dir, validated, total, rng)
            print(f"direct load (generated-valid records, no parse or validation): {rate:,.0f} records/s")
        measure(node_dir, total, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 records, finishes in under a minute")
    parser.add_argument("--records", type=int, action="append", help="catalogue size (repeatable)")
    parser.add_argument("--validated", type=int, help="records sent through the validated bulk path")
    args = parser.parse_args()
    if args.quick:
        run(10_000, args.validated or 300)
        return
    for total in args.records or [20_000]:
        run(total, args.validated or min(total, 5_000))


if __name__ == "__main__":
    main()
