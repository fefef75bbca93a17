"""Liveness, readiness and metrics on every server, read the way an orchestrator and Prometheus
read them; readiness fails, naming the check, when what it checks is gone."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.robustness.worlds import CatalogueWorld, ConnectorWorld, lone_connector
from vocab import dsp


def _metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_a_connector_is_live_and_ready_with_every_check_named(connectors: ConnectorWorld) -> None:
    with httpx.Client(base_url=connectors.provider.url, timeout=60) as client:
        assert client.get("/health/live").json() == {"status": "live", "server": "connector"}
        ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "database": "ok",
        "outbox": "ok",
        "signing_key": "ok",
        "data_folder": "ok",
    }


def test_connector_metrics_count_requests_by_route_template_not_by_raw_path(
    connectors: ConnectorWorld,
) -> None:
    with httpx.Client(base_url=connectors.provider.url, timeout=60) as client:
        served = client.post(
            "/dsp/catalog/request", json=dsp.catalog_request_message(), headers=connectors.dsp_auth()
        )
        assert served.status_code == 200
        secret_id = "urn:uuid:0badc0de-never-a-label"
        client.get(f"/dsp/negotiations/{secret_id}", headers=connectors.dsp_auth())
        client.get(f"/no/such/{secret_id}")
        metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=")
    requests = _metric_lines(metrics.text, "sluis_http_requests_total")
    assert any('route="/dsp/catalog/request"' in line and 'status="200"' in line for line in requests), (
        requests
    )
    assert any('route="/dsp/negotiations/{pid}"' in line for line in requests), requests
    assert any('route="(unmatched)"' in line and 'status="404"' in line for line in requests), requests
    assert secret_id not in metrics.text
    assert _metric_lines(metrics.text, "sluis_http_request_duration_seconds_bucket")


def test_readiness_fails_naming_the_check_while_the_data_folder_is_gone(tmp_path: Path) -> None:
    with (
        lone_connector(tmp_path) as participant,
        httpx.Client(base_url=participant.url, timeout=60) as client,
    ):
        assert client.get("/health/ready").status_code == 200
        data_root = participant.config.dataplane.data_root
        moved = tmp_path / "moved-away"
        shutil.move(data_root, moved)
        try:
            failing = client.get("/health/ready")
            assert client.get("/health/live").status_code == 200  # alive, just not ready
        finally:
            shutil.move(moved, data_root)
        assert failing.status_code == 503
        checks = failing.json()["checks"]
        assert checks["database"] == "ok"
        assert "data folder" in checks["data_folder"]
        assert client.get("/health/ready").status_code == 200
        assert 'sluis_readiness_failures_total{check="data_folder"} 1.0' in client.get("/metrics").text


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/metrics"])
def test_the_catalogue_node_answers_the_same_operations_endpoints(
    catalogue: CatalogueWorld, path: str
) -> None:
    response = catalogue.client.get(path)
    assert response.status_code == 200, response.text
    if path == "/health/ready":
        assert response.json()["checks"] == {"store": "ok", "index": "ok", "signing_key": "ok"}
    if path == "/metrics":
        assert 'route="/health/live"' in response.text
