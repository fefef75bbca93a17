"""A catalogue whose PostgreSQL index goes away answers 503 with Retry-After, never a 500.

Load balancers take a 503 as "try another replica, or later" and a 500 as a defect; a search
that fails because the shared index is down is the first kind. The database is really dropped
under a running ``sluis catalogue serve`` process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from sluis.servers import free_port
from tests.distributed.test_replicas_and_migration import REPO_ROOT, stop, wait_ready


@pytest.mark.postgres
def test_search_answers_503_while_the_shared_index_is_unreachable(
    tmp_path: Path, postgres_url: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "node.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "sluis.cli", "catalogue", "serve", "--data", str(tmp_path / "node"),
             "--port", str(port), "--public-url", url, "--index", postgres_url],
            cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(process, url, log)
        admin_url, _, name = postgres_url.rpartition("/")
        with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

        answer = httpx.get(f"{url}/catalogue/search", params={"q": "energy"}, timeout=30)

        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"].isdigit()
        assert answer.headers["content-type"].startswith("application/problem+json")
        body = answer.json()
        assert (body["status"], body["type"]) == (503, "dependency-unavailable")
        assert "Traceback" not in answer.text
        assert "psycopg" not in answer.text
        assert process.poll() is None, "the node must keep running through the outage"
    finally:
        stop(process)
