"""Two catalogue processes on one Virtuoso and one PostgreSQL index, and migration both ways.

Replicas share the node folder (its key and publisher tokens) and, through the URLs, the records
and the index: what one publishes the other serves and finds at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from catalogue.api import CatalogueNode, open_node
from catalogue.config import CatalogueConfig
from catalogue.index import SearchQuery
from catalogue.signing import NODE_KEY_FILE
from catalogue.tokens import TOKENS_FILE, TokenStore
from sluis.cli import main
from sluis.servers import free_port
from tests.catalogue.catalogue_records import PUBLISHER, dataset_turtle

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 90.0


def serve(
    data: Path, port: int, public_url: str, store: str, index: str, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "sluis.cli", "catalogue", "serve", "--data", str(data),
             "--port", str(port), "--public-url", public_url, "--store", store, "--index", index],
            cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT,
        )


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the replica exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/catalogue/search?page_size=1", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the replica did not start: {log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def titles_found(url: str, words: str) -> list[str]:
    answer = httpx.get(f"{url}/catalogue/search", params={"q": words}, timeout=30)
    assert answer.status_code == 200, answer.text
    return [hit["title"] for hit in answer.json()["hits"]]


@pytest.mark.virtuoso
@pytest.mark.postgres
def test_a_publish_on_one_replica_is_served_and_found_on_the_other_at_once(
    tmp_path: Path, virtuoso_url: str, postgres_url: str
) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    tokens = TokenStore(folder / TOKENS_FILE)
    token = tokens.create(PUBLISHER).token
    tokens.close()
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    with ExitStack() as stack:
        replicas = []
        for number, port in enumerate(ports):
            log = tmp_path / f"replica-{number}.log"
            process = serve(folder, port, urls[0], virtuoso_url, postgres_url, log)
            stack.callback(stop, process)
            replicas.append((process, log))
        for (process, log), url in zip(replicas, urls, strict=True):
            wait_ready(process, url, log)
        one, other = urls
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "text/turtle"}

        published = httpx.post(
            f"{one}/catalogue/datasets",
            content=dataset_turtle("tram", title="Tram punctuality per line"),
            headers=auth, timeout=60,
        )
        assert published.status_code == 201, published.text
        record_id = published.json()["id"]
        assert titles_found(other, "tram punctuality") == ["Tram punctuality per line"]
        served = httpx.get(f"{other}/catalogue/datasets/{record_id}", timeout=30)
        assert served.status_code == 200
        assert "Tram punctuality per line" in served.text

        replaced = httpx.put(
            f"{other}/catalogue/datasets/{record_id}",
            content=dataset_turtle("tram", title="Tram delays per line"),
            headers=auth, timeout=60,
        )
        assert replaced.status_code == 200, replaced.text
        assert titles_found(one, "tram") == ["Tram delays per line"]
        assert titles_found(one, "punctuality") == []
        history = httpx.get(f"{one}/catalogue/datasets/{record_id}/versions", timeout=30)
        assert history.status_code == 200
        assert [entry["version"] for entry in history.json()["versions"]] == [1, 2]

        sparql = httpx.post(
            f"{one}/catalogue/sparql",
            data={"query": "SELECT ?t WHERE { ?d <http://purl.org/dc/terms/title> ?t FILTER(LANG(?t) = 'en' "
                           "&& CONTAINS(?t, 'Tram')) }"},
            headers={"Accept": "application/sparql-results+json"}, timeout=30,
        )
        assert sparql.status_code == 200, sparql.text
        assert [row["t"]["value"] for row in sparql.json()["results"]["bindings"]] == ["Tram delays per line"]


def snapshot(node: CatalogueNode, record_ids: list[str]) -> tuple[object, ...]:
    """Every version of the records, and what search answers."""
    versions = []
    for record_id in record_ids:
        for info in node.store.versions(record_id):
            versions.append(node.store.version(record_id, info.version))
    found = node.index.search(SearchQuery("grid"))
    listing = node.index.changes(modified_since=None, offset=0, limit=100)
    return (
        tuple(versions),
        found.total,
        sorted(hit.id for hit in found.hits),
        found.facets["theme"],
        listing[0],
        sorted((row.record_id, row.version, row.deleted) for row in listing[1]),
    )


@pytest.fixture
def embedded_node(tmp_path: Path) -> tuple[Path, list[str]]:
    """An embedded node with a replaced record, a deleted one and a plain one."""
    folder = tmp_path / "embedded"
    node = open_node(folder)
    try:
        ids = []
        for slug, title in (("a", "Grid load"), ("b", "Grid losses"), ("c", "Grid outages")):
            turtle = dataset_turtle(slug, title=title).encode()
            outcome = node.publisher.publish(turtle, "text/turtle", owner=None)
            ids.append(outcome.record_id)
        revised = dataset_turtle("a", title="Grid load, revised").encode()
        node.publisher.publish(revised, "text/turtle", owner=None, record_id=ids[0])
        node.publisher.retract(ids[1], owner=None)
    finally:
        node.close()
    return folder, ids


@pytest.mark.virtuoso
@pytest.mark.postgres
def test_migrate_from_embedded_to_shared_and_back_keeps_every_version_and_search(
    tmp_path: Path,
    embedded_node: tuple[Path, list[str]],
    virtuoso_url: str,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, ids = embedded_node
    node = open_node(source)
    before = snapshot(node, ids)
    node.close()
    assert before[1] == 2  # the deleted record is not found

    shared = tmp_path / "shared"
    assert main(["catalogue", "migrate", "--from-data", str(source), "--to-data", str(shared),
                 "--to-store", virtuoso_url, "--to-index", postgres_url]) == 0
    distributed = open_node(shared, CatalogueConfig(store_url=virtuoso_url, index_url=postgres_url))
    try:
        assert snapshot(distributed, ids) == before
    finally:
        distributed.close()
    assert (shared / NODE_KEY_FILE).read_bytes() == (source / NODE_KEY_FILE).read_bytes()

    # Run again (as after an interruption): nothing is copied twice.
    capsys.readouterr()
    assert main(["catalogue", "migrate", "--from-data", str(source), "--to-data", str(shared),
                 "--to-store", virtuoso_url, "--to-index", postgres_url]) == 0
    assert "3 records: 0 versions copied, 5 already there, 3 indexed" in capsys.readouterr().out

    back = tmp_path / "back"
    assert main(["catalogue", "migrate", "--from-data", str(shared), "--from-store", virtuoso_url,
                 "--from-index", postgres_url, "--to-data", str(back)]) == 0
    embedded_again = open_node(back)
    try:
        assert snapshot(embedded_again, ids) == before
    finally:
        embedded_again.close()


def test_migrate_refuses_a_target_holding_other_data_and_names_it(
    tmp_path: Path, embedded_node: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    source, ids = embedded_node
    other = tmp_path / "other"
    node = open_node(other)
    try:  # the same record id already used in the target, with more versions than the source
        for title in ("Grid load", "Grid load 2", "Grid load 3"):
            node.publisher.publish(
                dataset_turtle("a", title=title).encode(), "text/turtle", owner=None,
                record_id=ids[0] if title != "Grid load" else None,
            )
    finally:
        node.close()
    assert main(["catalogue", "migrate", "--from-data", str(source), "--to-data", str(other)]) == 1
    assert f"conflict\t{ids[0]}" in capsys.readouterr().err


def test_serve_names_a_store_or_index_url_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(tmp_path / "node")
    assert main(["catalogue", "serve", "--data", folder, "--store", "http://127.0.0.1:1/sparql"]) == 2
    assert "sparql+http://host:port/path" in capsys.readouterr().err
    assert main(["catalogue", "serve", "--data", folder, "--index", "mysql://db/catalogue"]) == 2
    assert "postgresql://user@host:port/database" in capsys.readouterr().err
    unreachable = f"sparql+http://127.0.0.1:{free_port()}/sparql"
    assert main(["catalogue", "serve", "--data", folder, "--store", unreachable]) == 2
    assert "cannot be reached" in capsys.readouterr().err


_KILLED_PUBLISH = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from catalogue.api import open_node
    from catalogue.config import CatalogueConfig
    from catalogue.store.remote import SparqlEndpointStore
    from tests.catalogue.catalogue_records import dataset_turtle

    folder, store_url, index_url, moment = sys.argv[1:5]
    if moment == "after-store-write":  # the store has the version, the index has not committed
        write = SparqlEndpointStore.write
        def write_then_die(self, versions, *, bulk=False):
            write(self, versions, bulk=bulk)
            os.kill(os.getpid(), signal.SIGKILL)
        SparqlEndpointStore.write = write_then_die
    else:  # both have it; the batch is not released yet
        def die(self, batch):
            os.kill(os.getpid(), signal.SIGKILL)
        SparqlEndpointStore._release = die
    node = open_node(Path(folder), CatalogueConfig(store_url=store_url, index_url=index_url))
    turtle = dataset_turtle("tram", title="Tram punctuality").encode()
    node.publisher.publish(turtle, "text/turtle", owner=None)
    """
)


@pytest.mark.virtuoso
@pytest.mark.postgres
@pytest.mark.parametrize("moment", ["after-store-write", "after-index-commit"])
def test_a_replica_killed_during_a_publish_leaves_store_and_index_agreeing(
    tmp_path: Path, virtuoso_url: str, postgres_url: str, moment: str
) -> None:
    from catalogue.index_postgres import PostgresIndex
    from catalogue.publish import record_id_for
    from catalogue.store.remote import SparqlEndpointStore
    from tests.catalogue.catalogue_records import dataset_iri

    folder = tmp_path / "node"
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_PUBLISH, str(folder), virtuoso_url, postgres_url, moment],
        cwd=REPO_ROOT, capture_output=True, timeout=300, check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    record_id = record_id_for(dataset_iri("tram"))

    # What the next replica to start does, with the lease already past (the default is 5 minutes).
    store = SparqlEndpointStore.from_url(virtuoso_url, lease=timedelta(0), recover=False)
    index = PostgresIndex(postgres_url)
    assert len(store.pending_batches()) == 1
    store.committed_version = lambda name: None if (row := index.get(name)) is None else row.version
    assert store.recover() == 1
    store.close()
    index.close()

    node = open_node(folder, CatalogueConfig(store_url=virtuoso_url, index_url=postgres_url))
    try:
        stored = node.store.current(record_id)
        indexed = node.index.get(record_id)
        found = node.index.search(SearchQuery("tram")).total
        if moment == "after-store-write":
            assert (stored, indexed, found) == (None, None, 0)
            again = node.publisher.publish(
                dataset_turtle("tram", title="Tram punctuality").encode(), "text/turtle", owner=None
            )
            assert again.record_id == record_id  # a first publish, not a 409
        else:
            assert stored is not None
            assert indexed is not None
            assert (stored.version, indexed.version, found) == (1, 1, 1)
        assert node.index.search(SearchQuery("tram")).total == 1
    finally:
        node.close()
