"""``/metrics`` (and ``/health``) on two real connectors after a negotiation and a push transfer:
every family an operator needs is there with the values the exchange made; one correlation id
follows the negotiation through both connectors' log lines into the provider's audit entries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.app import create_app
from connector.config import load_config
from sluis.servers import serve_in_thread
from tests.connector.dsp_world import (
    RESEARCH,
    Authority,
    fetch_offer,
    make_party,
    negotiate,
    publish_dataset,
    wait_for_state,
)


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_health_and_metrics_after_a_negotiation_and_a_push(
    tmp_path: Path,
    authority: Authority,
    storage_urls: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="connector.control.process")
    provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    provider_app = create_app(load_config(provider.config_path))
    with (
        serve_in_thread(provider_app, port=provider.port),
        serve_in_thread(create_app(load_config(consumer.config_path)), port=consumer.port),
    ):
        assert httpx.get(f"{provider.url}/health/live").json()["status"] == "live"
        ready = httpx.get(f"{provider.url}/health/ready")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"].values()) == {"ok"}

        dataset_id = publish_dataset(provider)
        offer = fetch_offer(consumer, provider, dataset_id)
        negotiation_id = negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH)
        done = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED")
        wait_for_state(provider, "negotiations", done["provider_pid"], "FINALIZED")
        with consumer.management() as api:
            body = {
                "agreement_id": done["agreement_id"],
                "counterparty_address": provider.dsp,
                "format": "HttpData-PUSH",
                "job": {"id": "job-m", "purpose": RESEARCH},
            }
            transfer_id = api.post("/transfers", json=body).json()["id"]
        wait_for_state(consumer, "transfers", transfer_id, "COMPLETED")
        # one correlation id - the consumer's negotiation pid - on both sides' log lines and in the
        # provider's audit entries of the push
        steps = [r for r in caplog.records if r.getMessage() in ("process step", "process created")]
        tagged = {
            (r.process_id, r.state) for r in steps if getattr(r, "correlation_id", None) == negotiation_id
        }
        assert (negotiation_id, "FINALIZED") in tagged
        assert (done["provider_pid"], "FINALIZED") in tagged
        assert (transfer_id, "COMPLETED") in tagged
        plane = provider_app.state.service.pushes.reader
        entries = [e.body for e in plane.audit.entries() if e.body and e.body.get("kind") == "read"]
        assert [e["correlation_id"] for e in entries] == [negotiation_id]
        # a read without any token: denied, counted, never audited
        assert httpx.get(f"{provider.url}/data/nothing").status_code == 401

        samples = _samples(provider.url)
        assert _value(samples, "sluis_negotiations", state="FINALIZED", role="provider") == 1
        assert _value(samples, "sluis_transfers", state="COMPLETED", role="provider") == 1
        assert (
            _value(
                samples,
                "sluis_reads_total",
                outcome="allowed",
                reason="completed",
                media_type="application/vnd.apache.arrow.stream",
            )
            == 1
        )
        assert _value(samples, "sluis_reads_unauthenticated_this_process_total") == 1
        assert _value(samples, "sluis_audit_head_sequence") >= 2
        assert ("sluis_outbox_depth", ()) in samples
        assert ("sluis_outbox_retries_this_process_total", ()) in samples
        posted = _value(
            samples,
            "sluis_http_requests_total",
            route="/dsp/negotiations/request",
            method="POST",
            status="201",
        )
        assert posted == 1
        # the route template labels a request, never the raw path with its ids
        assert not any("urn:uuid" in str(labels) for (_, labels) in samples)
        consumer_samples = _samples(consumer.url)
        assert _value(consumer_samples, "sluis_transfers", state="COMPLETED", role="consumer") == 1
        assert (
            _value(
                consumer_samples,
                "sluis_http_requests_total",
                route="/push/{transfer_id}",
                method="PUT",
                status="201",
            )
            == 1
        )

        # a stopped outbox worker makes the replica not ready, naming the check
        provider_app.state.service.stop_worker()
        not_ready = httpx.get(f"{provider.url}/health/ready")
        assert not_ready.status_code == 503
        assert "the outbox worker is not running" in not_ready.json()["checks"]["outbox"]
        assert httpx.get(f"{provider.url}/health/live").status_code == 200


def test_log_lines_inside_a_step_carry_its_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from connector.observability import correlated
    from sluis.logs import configure_logging

    configure_logging("INFO")
    log = logging.getLogger("tests.correlation")
    with correlated("urn:uuid:negotiation-1"):
        log.info("inside")
    log.info("outside")
    configure_logging("WARNING")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "tests.correlation" in line]
    assert [(line["event"], line.get("correlation_id")) for line in lines] == [
        ("inside", "urn:uuid:negotiation-1"),
        ("outside", None),
    ]
