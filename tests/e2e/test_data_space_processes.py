"""The demo's topology as real processes: ``sluis catalogue serve`` and two ``sluis connector
serve --config`` on free loopback ports, driven over HTTP and with the AI-job client."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from catalogue.seed import seed_files
from connector.config import load_config
from connector.jobs import Job, JobError
from sluis import demo
from sluis.demo import DemoSpace, Endpoints, Narrator

REPO_ROOT = Path(__file__).resolve().parents[2]
# Starting a server process imports the whole stack: allow for a slow, loaded machine.
READY_SECONDS = 60.0
# The publisher whose seed records the test publishes with the CLI.
CBS = "https://data.sluis.example/agent/cbs"


class Server:
    """One ``sluis`` server command as a subprocess, its output kept in a log file."""

    def __init__(self, name: str, argv: list[str], ready_url: str, log_dir: Path) -> None:
        self.name = name
        self.ready_url = ready_url
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sluis.cli", *argv],
                cwd=REPO_ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.log.read_text()[-3000:]
                raise AssertionError(f"{self.name} exited {self.process.returncode}: {output}")
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not answer {self.ready_url}: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


@contextmanager
def serve_as_processes(space: DemoSpace) -> Iterator[Endpoints]:
    urls = Endpoints(
        f"http://127.0.0.1:{space.catalogue_port}",
        f"http://127.0.0.1:{space.provider_port}",
        f"http://127.0.0.1:{space.consumer_port}",
    )
    with ExitStack() as stack:
        servers = [
            Server("catalogue", ["catalogue", "serve", "--data", str(space.catalogue_dir),
                                 "--host", "127.0.0.1", "--port", str(space.catalogue_port)],
                   f"{urls.catalogue}/catalogue/search?page_size=1", space.root),
            Server("provider", ["connector", "serve", "--config", str(space.provider_config)],
                   f"{urls.provider}/.well-known/dspace-version", space.root),
            Server("consumer", ["connector", "serve", "--config", str(space.consumer_config)],
                   f"{urls.consumer}/.well-known/dspace-version", space.root),
        ]
        for server in servers:
            stack.callback(server.stop)
        for server in servers:
            server.wait_ready()
        yield urls


def _sluis(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluis.cli", *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def running_space(tmp_path: Path) -> Iterator[tuple[DemoSpace, Endpoints]]:
    space = demo.set_up(tmp_path, Narrator(io.StringIO(), tmp_path))
    with serve_as_processes(space) as urls:
        yield space, urls


def _denied(read: Callable[[], object]) -> JobError:
    with pytest.raises(JobError) as refused:
        read()
    return refused.value


def test_ai_job_against_real_server_processes(running_space: tuple[DemoSpace, Endpoints]) -> None:
    space, urls = running_space

    # publish: one publisher's seed records with the CLI against the running node
    cbs_files = [path for path, publisher in demo.seed_publishers().items() if publisher == CBS]
    assert cbs_files
    published = _sluis("catalogue", "publish", *map(str, cbs_files), "--url", urls.catalogue,
                       "--token", space.publisher_tokens[CBS])
    assert published.returncode == 0, published.stderr
    assert len(published.stdout.strip().splitlines()) == len(cbs_files)

    # an invalid record: 422 listing the violations, nothing stored
    response = httpx.post(
        f"{urls.catalogue}/catalogue/datasets",
        content=demo.INVALID_RECORD.format(publisher=CBS).encode(),
        headers={"Content-Type": "text/turtle", "Authorization": f"Bearer {space.publisher_tokens[CBS]}"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert {item["field"] for item in response.json()["errors"]} >= {
        "http://purl.org/dc/terms/title", "http://purl.org/dc/terms/description"
    }

    # search with facets
    found = httpx.get(f"{urls.catalogue}/catalogue/search", params={"publisher": "cbs"}).json()
    assert found["total"] == len(cbs_files)
    assert {item["code"] for item in found["facets"]["publisher"]} == {"cbs"}
    assert len(seed_files()) > len(cbs_files)

    # the provider's offer through its management API, its record in the catalogue
    table = demo.offer_dataset(space, urls, Narrator(io.StringIO(), space.root))

    # the AI job: find, negotiate, read permitted data, aggregate; the forbidden column is refused
    with Job.from_config(space.consumer_config, "process-test", demo.AI_TRAINING, demo.COMPUTE_SITE,
                         catalogue_url=urls.catalogue) as job:
        dsp, provider_id = demo.find_dataset(job, Narrator(io.StringIO(), space.root))
        assert (dsp, provider_id) == (urls.provider_dsp, space.provider_did)
        data = job.dataset(demo.DATASET_IRI, dsp, provider_id)
        full = data.read()
        assert full.num_rows == table.num_rows
        assert demo.FORBIDDEN_COLUMN not in full.column_names
        per_province = data.query("SELECT province, count(*) AS n FROM data GROUP BY province")
        readings = demo.HOUSEHOLDS_PER_PROVINCE * demo.HOURS
        assert per_province.column("n").to_pylist() == [readings] * len(demo.PROVINCES)
        refused = _denied(lambda: data.query(f"SELECT {demo.FORBIDDEN_COLUMN} FROM data"))
        assert refused.status == 403
        assert demo.FORBIDDEN_COLUMN in str(refused.problem)
        escaped = _denied(lambda: data.query("SELECT * FROM read_parquet('data/**/*.parquet')"))
        assert escaped.status == 403

        with httpx.Client(base_url=f"{urls.consumer}/management", headers={
            "Authorization": f"Bearer {load_config(space.consumer_config).management.token}"
        }) as consumer:
            agreement = consumer.get(f"/agreements/{data.agreement_id}").json()
        assert len(agreement["proof"]) == 2

    # audit: the provider's log, checked by the CLI in its own process
    audit = _sluis("audit", "verify", "--config", str(space.provider_config))
    assert audit.returncode == 0, audit.stdout + audit.stderr
    entries = int(audit.stdout.split("intact: ", 1)[1].split()[0])
    assert entries >= 4  # two reads and two denials
    lineage = job.lineage()
    assert len([node for node in lineage["@graph"] if "checksum" in node]) == 2
    assert json.dumps(lineage)  # plain JSON-LD, ready to file
