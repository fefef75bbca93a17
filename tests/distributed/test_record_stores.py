"""Both record stores keep the same contract: embedded Oxigraph and a SPARQL 1.1 endpoint (Virtuoso).

The endpoint store is tested where the protocol leaves room: a request that fails half-way, a
writer killed between its requests, two writers on one record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalogue.backends import open_sparql
from catalogue.config import CatalogueConfig
from catalogue.store import OxigraphStore, RecordStore, RecordVersion, StoreError
from catalogue.store.remote import SparqlEndpointStore, endpoint_from_url

PUBLISHER = "https://data.example.eu/org/tso"
DCAT_DATASET = "http://www.w3.org/ns/dcat#Dataset"
TITLE = "http://purl.org/dc/terms/title"
REPO_ROOT = Path(__file__).resolve().parents[2]


def content(slug: str, title: str) -> str:
    """A record's N-Triples as the publisher stores them: escapes, a language tag, a blank node."""
    iri = f"<https://data.example.eu/dataset/{slug}>"
    escaped = json.dumps(title, ensure_ascii=False)
    return "\n".join(
        [
            f"{iri} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{DCAT_DATASET}> .",
            f"{iri} <{TITLE}> {escaped}@en .",
            f"{iri} <http://www.w3.org/ns/dcat#contactPoint> _:c{slug} .",
            f'_:c{slug} <http://www.w3.org/2006/vcard/ns#fn> "Open data desk" .',
        ]
    )


def version(slug: str, number: int, title: str = "Grid load", *, deleted: bool = False) -> RecordVersion:
    return RecordVersion(
        record_id=f"rec-{slug}",
        version=number,
        dataset=f"https://data.example.eu/dataset/{slug}",
        modified=datetime(2025, 3, number, 12, 0, 0, 123456, tzinfo=UTC),
        deleted=deleted,
        owner=PUBLISHER,
        source="urn:sluis:source:local",
        content="" if deleted else content(slug, title),
        proof={"type": "DataIntegrityProof", "proofValue": f"z{number}"},
        quality={"quality": {"total": 200 + number, "maximum": 405, "band": "good"}},
    )


@pytest.fixture(params=["oxigraph", pytest.param("virtuoso", marks=pytest.mark.virtuoso)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    built: RecordStore
    if request.param == "oxigraph":
        built = OxigraphStore(tmp_path / "store")
    else:
        built = SparqlEndpointStore.from_url(request.getfixturevalue("virtuoso_url"))
    try:
        yield built
    finally:
        built.close()


def titles(store: RecordStore) -> list[str]:
    """What the node's public SPARQL endpoint answers (embedded: worker processes on snapshots)."""
    with tempfile.TemporaryDirectory() as folder:
        runner = open_sparql(store, Path(folder), CatalogueConfig())
        try:
            result = runner.run(f"SELECT ?t WHERE {{ ?d <{TITLE}> ?t }} ORDER BY ?t")
        finally:
            runner.close()
    return [row["t"]["value"] for row in json.loads(result.body)["results"]["bindings"]]


def test_versions_are_stored_read_back_exactly_and_replaced_all_or_nothing(store: RecordStore) -> None:
    tricky = 'Grid "load" — Zürich 😀 \\ back\nslash'
    store.write([version("a", 1, tricky), version("b", 1, "Ferry timetable")])
    first = store.current("rec-a")
    assert first == version("a", 1, tricky)
    assert store.record_for_dataset("https://data.example.eu/dataset/a") == "rec-a"
    assert store.types_of("https://data.example.eu/dataset/a") == [DCAT_DATASET]
    assert titles(store) == ["Ferry timetable", tricky]

    with pytest.raises(StoreError) as repeated:
        store.write([version("a", 1)])
    assert repeated.value.code == "stale-version"
    with pytest.raises(StoreError) as skipped:  # one stale version refuses the whole batch
        store.write([version("b", 2, "Ferry times"), version("a", 3)])
    assert skipped.value.code == "stale-version"
    assert titles(store) == ["Ferry timetable", tricky]

    store.write([version("a", 2, "Grid load, revised"), version("b", 2, deleted=True)])
    assert titles(store) == ["Grid load, revised"]
    assert [info.version for info in store.versions("rec-a")] == [1, 2]
    assert store.version("rec-a", 1) == first
    tombstone = store.current("rec-b")
    assert tombstone is not None
    assert tombstone.deleted
    assert store.types_of("https://data.example.eu/dataset/b") == []

    store.revert([version("a", 2, "Grid load, revised"), version("b", 2, deleted=True)])
    assert titles(store) == ["Ferry timetable", tricky]
    assert store.current("rec-a") == first
    assert [info.version for info in store.versions("rec-b")] == [1]
    # The store's own query function (maintenance tools, migration) answers Oxigraph's objects.
    solutions = store.query(f"SELECT ?t WHERE {{ ?d <{TITLE}> ?t }}")
    assert sorted(str(solution["t"].value) for solution in solutions) == ["Ferry timetable", tricky]
    with pytest.raises(SyntaxError):
        store.query("SELECT ?t WHERE { ?d ")


@pytest.mark.virtuoso
def test_virtuoso_keeps_the_first_half_of_a_failing_request_so_the_store_journals_batches(
    virtuoso_url: str,
) -> None:
    """The reason for the batch journal: a multi-operation update is not atomic in Virtuoso 7."""
    import httpx

    endpoint = endpoint_from_url(virtuoso_url)
    failing = "INSERT DATA { GRAPH <urn:sluis:t> { <urn:a> <urn:b> 1 } } ; CREATE GRAPH <urn:sluis:t>"
    assert httpx.post(endpoint, data={"update": failing}, timeout=30).status_code >= 400
    assert httpx.post(
        endpoint, data={"query": "ASK { GRAPH <urn:sluis:t> { <urn:a> <urn:b> 1 } }"},
        headers={"Accept": "application/sparql-results+json"}, timeout=30,
    ).json()["boolean"]


class FailingHalfWay(SparqlEndpointStore):
    """Writes the batch, then fails inside its last request (as a full disk or a bad term would)."""

    def _requests_for(self, records: object) -> list[str]:
        requests = super()._requests_for(records)  # type: ignore[arg-type]
        return [*requests[:-1], requests[-1] + " ;\nCREATE GRAPH <urn:sluis:records>"]


@pytest.mark.virtuoso
def test_a_batch_failing_half_way_in_the_endpoint_leaves_the_store_as_it_was(virtuoso_url: str) -> None:
    healthy = SparqlEndpointStore.from_url(virtuoso_url)
    healthy.write([version("a", 1, "Grid load")])
    failing = FailingHalfWay(endpoint_from_url(virtuoso_url))
    with pytest.raises(StoreError):
        failing.write([version("a", 2, "Grid load, revised"), version("c", 1, "Tram punctuality")])
    assert titles(healthy) == ["Grid load"]
    assert [info.version for info in healthy.versions("rec-a")] == [1]
    assert healthy.current("rec-c") is None
    assert healthy.pending_batches() == []
    healthy.write([version("a", 2, "Grid load, revised")])  # nothing left locked
    assert titles(healthy) == ["Grid load, revised"]


_KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from catalogue.store.remote import SparqlEndpointStore
    from tests.distributed.test_record_stores import version

    class DiesBeforeRelease(SparqlEndpointStore):
        def _release(self, batch):
            os.kill(os.getpid(), signal.SIGKILL)

    store = DiesBeforeRelease.from_url(sys.argv[1])
    store.write([version("a", 2, "Grid load, half-written"), version("d", 1, "Bus stops")])
    """
)


@pytest.mark.virtuoso
def test_a_writer_killed_mid_batch_is_rolled_back_when_the_store_is_next_opened(virtuoso_url: str) -> None:
    first = SparqlEndpointStore.from_url(virtuoso_url)
    first.write([version("a", 1, "Grid load")])
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, virtuoso_url, str(REPO_ROOT)],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    # The dead writer's batch fully landed but was never acknowledged.
    assert titles(first) == ["Bus stops", "Grid load, half-written"]
    assert len(first.pending_batches()) == 1

    # Within the lease the batch may belong to a live writer (another process): its records stay
    # locked, so nobody writes over it.
    with pytest.raises(StoreError) as locked:
        first.write([version("a", 2, "Grid load, other writer")])
    assert locked.value.code == "stale-version"

    # Past the lease (here: at once) the next start rolls it back.
    restarted = SparqlEndpointStore.from_url(virtuoso_url, lease=timedelta(0))
    assert restarted.pending_batches() == []
    assert titles(restarted) == ["Grid load"]
    assert restarted.current("rec-d") is None
    assert [info.version for info in restarted.versions("rec-a")] == [1]
    restarted.write([version("a", 2, "Grid load, revised")])
    assert titles(restarted) == ["Grid load, revised"]


@pytest.mark.virtuoso
def test_two_writers_on_one_record_never_both_win(virtuoso_url: str) -> None:
    one = SparqlEndpointStore.from_url(virtuoso_url)
    other = SparqlEndpointStore.from_url(virtuoso_url)
    one.write([version("a", 1)])
    batch = one._claim([version("a", 2, "One's revision")])  # one is between claim and release
    with pytest.raises(StoreError) as refused:
        other.write([version("a", 2, "Other's revision")])
    assert refused.value.code == "stale-version"
    one._release(batch)
    other.write([version("a", 2, "Other's revision")])
    with pytest.raises(StoreError):
        one.write([version("a", 2, "One's revision")])
    assert titles(one) == ["Other's revision"]


def test_an_unreachable_endpoint_is_a_store_error_and_bad_urls_are_named() -> None:
    from sluis.servers import free_port

    with pytest.raises(StoreError) as down:
        SparqlEndpointStore(f"http://127.0.0.1:{free_port()}/sparql")
    assert down.value.code == "store-unavailable"
    with pytest.raises(ValueError, match="sparql\\+http"):
        endpoint_from_url("http://127.0.0.1:8890/sparql")


def test_a_batch_larger_than_one_request_lands_whole(store: RecordStore) -> None:
    """Thousands of statements (more than one update request holds) in one write, blank nodes too."""
    distributions = "\n".join(
        f"<https://data.example.eu/dataset/big> <http://www.w3.org/ns/dcat#distribution> _:d{n} .\n"
        f'_:d{n} <http://purl.org/dc/terms/description> "Part {n}" .'
        for n in range(2_500)
    )
    big = replace(version("big", 1, "Big"), content=content("big", "Big") + "\n" + distributions)
    store.write([big, *(version(f"s{n}", 1, f"Small {n}") for n in range(30))])
    assert store.current("rec-big") == big
    assert len(titles(store)) == 31
    with tempfile.TemporaryDirectory() as folder:
        runner = open_sparql(store, Path(folder), CatalogueConfig())
        try:
            parts = runner.run(
                "SELECT (COUNT(?p) AS ?n) WHERE { <https://data.example.eu/dataset/big> "
                "<http://www.w3.org/ns/dcat#distribution> ?p }"
            )
        finally:
            runner.close()
    assert json.loads(parts.body)["results"]["bindings"][0]["n"]["value"] == "2500"
