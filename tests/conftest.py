"""Fixtures shared by every test package: the conformance data, loopback servers, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE_DIR = Path(
    os.environ.get("SLUIS_CONFORMANCE_DIR", REPO_ROOT.parent / "shared" / "conformance")
)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """The official DSP and DCAT-AP artefacts, read in place and never copied into the repo."""
    if not CONFORMANCE_DIR.is_dir():
        pytest.skip(
            f"conformance data not found at {CONFORMANCE_DIR} "
            "(set SLUIS_CONFORMANCE_DIR to the folder holding dsp/ and dcat-ap/)"
        )
    return CONFORMANCE_DIR


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = os.environ.get("SLUIS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL: run the suite with ./dev test, which starts one")
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("SLUIS_TEST_CHROMIUM") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("no chromium: run the suite with ./dev test, which installs it")
    return path
