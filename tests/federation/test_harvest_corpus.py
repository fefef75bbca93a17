"""Harvesting real publishers' catalogue files from a static file server on loopback: every
parsable dataset is stored, every unparsable file is reported by name and stops nothing."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from catalogue.api import open_node
from catalogue.seed import seed_files
from tests.conftest import CONFORMANCE_DIR
from tests.federation.conftest import Process, free_port, sluis

CORPUS = CONFORMANCE_DIR.parent / "corpus" / "dcat-real"


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip(f"the real-world DCAT corpus is not at {CORPUS} (it lives beside the conformance data)")
    return CORPUS


def test_a_static_file_server_of_catalogue_dumps_is_harvested_whole(corpus: Path, tmp_path: Path) -> None:
    served = tmp_path / "served"
    shutil.copytree(corpus / "whole-files", served / "whole-files")
    shutil.copytree(corpus / "unparsable", served / "unparsable")
    manifest = json.loads((corpus / "manifest.json").read_text())
    expected_iris: set[str] = set()
    blank = 0
    for entry in manifest["whole_files"].values():
        for record in entry["records"]:
            dataset = manifest["records"][record]["dataset"]
            if dataset is None:
                blank += 1
            else:
                expected_iris.add(dataset)
    port = free_port()
    server = Process(
        "files",
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(served)],
        f"http://127.0.0.1:{port}/",
        tmp_path,
    )
    try:
        server.wait_ready()
        node = tmp_path / "node"
        done = sluis(
            "catalogue", "harvest", f"http://127.0.0.1:{port}/", "--data", str(node), "--id", "corpus"
        )
    finally:
        server.stop()
    assert done.returncode == 1, done.stderr  # the unparsable files are findings
    assert done.stdout.startswith("corpus\tdone\t"), done.stdout
    rejected = [line for line in done.stderr.splitlines() if "\trejected\t" in line]
    reported = {unquote(line.split("\t")[0].rsplit("/", 1)[-1]) for line in rejected}
    assert reported == {Path(name).name for name in manifest["unparsable"]}
    assert all(" line " in line for line in rejected), rejected

    opened = open_node(node)
    try:
        rows = opened.index.changes(modified_since=None, offset=0, limit=10_000)[1]
        versions = [opened.store.current(row.record_id) for row in rows]
    finally:
        opened.close()
    stored = {row.dataset for row in rows}
    assert expected_iris <= stored
    assert len(stored) == len(expected_iris) + blank
    # Stored whatever their conformance, each scored for it, with the repairs made recorded.
    assert all(version is not None and "conformance" in version.quality["quality"] for version in versions)
    assert (
        sum(1 for version in versions if version and version.quality["quality"]["conformance"]["violations"])
        > 0
    )
    assert sum(len(version.quality.get("repairs", [])) for version in versions if version) > 0


def test_an_unchanged_dump_is_not_read_again(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(next(path for path in seed_files() if path.name.startswith("rki-")), served / "dump.ttl")
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(served)]
    server = Process("files", argv, f"http://127.0.0.1:{port}/", tmp_path)
    url = f"http://127.0.0.1:{port}/dump.ttl"
    try:
        server.wait_ready()
        first = sluis("catalogue", "harvest", url, "--data", str(tmp_path / "node"), "--id", "dump")
        again = sluis("catalogue", "harvest", url, "--data", str(tmp_path / "node"), "--id", "dump")
    finally:
        server.stop()
    assert first.stdout.startswith("dump\tdone\t"), first.stdout + first.stderr
    assert "stored=1 " in first.stdout
    # The file server answers If-Modified-Since with 304: the run ends without reading anything.
    assert again.stdout.startswith("dump\tunchanged\tpages=0 "), again.stdout + again.stderr
