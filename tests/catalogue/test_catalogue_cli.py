"""The ``sluis catalogue`` commands: tokens, bulk publish (local and remote), validate, serve."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from catalogue.api import create_catalogue_app
from catalogue.config import CatalogueConfig
from sluis.cli import main
from sluis.servers import free_port, serve_in_thread
from tests.catalogue.catalogue_records import PUBLISHER, dataset_turtle, invalid_turtle


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_token_create_prints_only_the_token_and_it_publishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "node"
    assert main(["catalogue", "token", "create", "--data", str(data), "--publisher", PUBLISHER]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("sluis_pub_")
    assert "\n" not in token
    assert " " not in token
    assert main(["catalogue", "token", "create", "--data", str(data), "--publisher", "not an iri"]) == 2

    files = [_write(tmp_path, f"set-{n}.ttl", dataset_turtle(f"set-{n}", title=f"Set {n}")) for n in range(3)]
    port = free_port()
    app = create_catalogue_app(data, CatalogueConfig(public_url=f"http://127.0.0.1:{port}"))
    with serve_in_thread(app, port=port) as url:
        code = main(["catalogue", "publish", *map(str, files), "--url", url, "--token", token])
        assert code == 0, capsys.readouterr().err
        assert httpx.get(f"{url}/catalogue/search").json()["total"] == 3
        bad = _write(tmp_path, "bad.ttl", invalid_turtle("bad"))
        assert main(["catalogue", "publish", str(bad), "--url", url, "--token", token]) == 1
        assert "rejected" in capsys.readouterr().err
        assert main(["catalogue", "publish", str(files[0]), "--url", url, "--token", "wrong"]) == 1


def test_bulk_publish_into_a_stopped_node_then_serve_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "node"
    files = [_write(tmp_path, f"set-{n}.ttl", dataset_turtle(f"set-{n}", title=f"Set {n}")) for n in range(4)]
    files.append(_write(tmp_path, "broken.ttl", invalid_turtle("broken")))
    files.append(_write(tmp_path, "garbled.ttl", "<a> <b> "))
    code = main(["catalogue", "publish", *map(str, files), "--data", str(data)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("rejected") == 2
    assert "publishing" in captured.err  # the progress summary line
    published_ids = [line.split("\t")[1] for line in captured.out.splitlines()]
    assert len(published_ids) == 4

    port = free_port()
    app = create_catalogue_app(data, CatalogueConfig(public_url=f"http://127.0.0.1:{port}"))
    with serve_in_thread(app, port=port) as url:
        found = httpx.get(f"{url}/catalogue/search", params={"sort": "title"}).json()
        assert [hit["title"] for hit in found["hits"]] == ["Set 0", "Set 1", "Set 2", "Set 3"]
        record = httpx.get(f"{url}/catalogue/datasets/{published_ids[0]}.ttl")
        assert record.status_code == 200
        assert "QualityMeasurement" in record.text  # quality statements are made on read for bulk records
        signed = httpx.get(f"{url}/catalogue/datasets/{published_ids[0]}/proof").json()
        assert signed["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert main(["catalogue", "publish", str(tmp_path / "missing.ttl"), "--data", str(data)]) == 2


def test_validate_reports_and_exits_by_validity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "good.ttl", dataset_turtle("good"))
    bad = _write(tmp_path, "bad.ttl", invalid_turtle("bad"))
    assert main(["catalogue", "validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert "good.ttl: valid" in out
    assert "Warning" in out
    assert main(["catalogue", "validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "bad.ttl: INVALID" in out
    assert "Violation" in out
    assert main(["catalogue", "validate", "--json", str(bad)]) == 1
    assert '"valid": false' in capsys.readouterr().out


def test_serve_runs_a_node_on_the_given_port(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sluis.cli",
            "catalogue",
            "serve",
            "--data",
            str(tmp_path / "node"),
            "--port",
            str(port),
        ],
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/catalogue/search", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["total"] == 0
    finally:
        process.terminate()
        process.wait(timeout=20)
