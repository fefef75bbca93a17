"""Following one negotiation: its correlation id in both connectors' structured logs (the outbox's
lines too) and in the provider's audit entry of the read it allowed; and, with tracing on, one
OpenTelemetry trace that crosses both connectors through the W3C ``traceparent`` header."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from connector.app import create_app
from connector.config import load_config
from connector.observability import CorrelationFilter
from connector.observability.tracing import CORRELATION_ATTRIBUTE, disable_tracing
from sluis.logs import JsonFormatter
from sluis.servers import serve_in_thread
from tests.connector.dsp_world import (
    RESEARCH,
    Authority,
    Party,
    fetch_offer,
    make_party,
    negotiate,
    publish_dataset,
    wait_for_state,
)


@pytest.fixture
def structured_log() -> Iterator[io.StringIO]:
    """Everything the connectors log at INFO, as the JSON lines ``sluis.logs`` writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CorrelationFilter())
    logger = logging.getLogger("connector")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _finalize_and_push(provider: Party, consumer: Party) -> tuple[dict[str, Any], str]:
    """A negotiation to FINALIZED, then a push transfer under its agreement to COMPLETED."""
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
            "job": {"id": "job-c", "purpose": RESEARCH},
        }
        response = api.post("/transfers", json=body)
        assert response.status_code == 201, response.text
        transfer_id = str(response.json()["id"])
    wait_for_state(consumer, "transfers", transfer_id, "COMPLETED")
    return done, transfer_id


def test_one_correlation_id_follows_a_negotiation_through_both_logs_and_the_audit(
    tmp_path: Path,
    authority: Authority,
    storage_urls: Callable[[str], str],
    structured_log: io.StringIO,
) -> None:
    provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    provider_app = create_app(load_config(provider.config_path))
    with (
        serve_in_thread(provider_app, port=provider.port),
        serve_in_thread(create_app(load_config(consumer.config_path)), port=consumer.port),
    ):
        done, transfer_id = _finalize_and_push(provider, consumer)
        negotiation_id = str(done["id"])
        lines = [json.loads(line) for line in structured_log.getvalue().splitlines()]
        ours = {negotiation_id, done["provider_pid"], transfer_id}
        about = [line for line in lines if line.get("process_id") in ours]
        # every line about the negotiation or its transfer, on either side, carries the one id
        assert about
        assert {line.get("correlation_id") for line in about} == {negotiation_id}
        sent = {
            (line["process_id"], line["url"].split("/dsp/")[0])
            for line in about
            if line["event"] == "outbox sent"
        }
        # the outbox's lines: the consumer's messages to the provider and the provider's back
        assert (negotiation_id, provider.url) in sent
        assert (done["provider_pid"], consumer.url) in sent
        steps = {(line["process_id"], line["state"]) for line in about if line["event"] == "process step"}
        assert {(negotiation_id, "FINALIZED"), (done["provider_pid"], "FINALIZED")} <= steps
        plane = provider_app.state.service.pushes.reader
        reads = [e.body for e in plane.audit.entries() if e.body and e.body.get("kind") == "read"]
        assert [read["correlation_id"] for read in reads] == [negotiation_id]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter on the process's tracer provider (set here if none is set yet)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "another tracer provider was set in this process"
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        disable_tracing()  # tracing is process-wide: the tests after this one run without it
        exporter.shutdown()


def _with_tracing(party: Party) -> Party:
    with party.config_path.open("a") as config:
        config.write("\n[observability]\ntracing = true\n")
    return party


def test_tracing_follows_one_negotiation_across_both_connectors(
    tmp_path: Path,
    authority: Authority,
    storage_urls: Callable[[str], str],
    spans: InMemorySpanExporter,
) -> None:
    provider = _with_tracing(make_party(tmp_path, "provider", authority, storage_urls("provider")))
    consumer = _with_tracing(make_party(tmp_path, "consumer", authority, storage_urls("consumer")))
    with (
        serve_in_thread(create_app(load_config(provider.config_path)), port=provider.port),
        serve_in_thread(create_app(load_config(consumer.config_path)), port=consumer.port),
    ):
        done, _ = _finalize_and_push(provider, consumer)
        negotiation_id = str(done["id"])
    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    by_id = {span.context.span_id: span for span in finished}

    def named(name: str) -> list[ReadableSpan]:
        return [s for s in finished if s.name == name and s.attributes is not None]

    steps = [s for s in named("process.step") if s.attributes[CORRELATION_ATTRIBUTE] == negotiation_id]
    moves = {(s.attributes["sluis.process_id"], s.attributes["sluis.state_to"]) for s in steps}
    assert {
        (negotiation_id, "REQUESTED"),
        (done["provider_pid"], "AGREED"),
        (negotiation_id, "VERIFIED"),
        (done["provider_pid"], "FINALIZED"),
        (negotiation_id, "FINALIZED"),
    } <= moves
    sends = [s for s in named("outbox.send") if s.attributes[CORRELATION_ATTRIBUTE] == negotiation_id]
    received = [s for s in named("dsp.receive") if s.attributes.get(CORRELATION_ATTRIBUTE) == negotiation_id]
    assert len(sends) >= 4
    assert len(received) >= 4
    # every DSP request the peer received is the child of the outbox send that made it: the
    # traceparent crossed the wire, and the whole negotiation is one trace
    for span in received:
        assert span.parent is not None
        assert span.parent.is_remote
        assert by_id[span.parent.span_id].name == "outbox.send"
    # the negotiation - its steps on both sides and every DSP request of it - is one trace (the
    # transfer started later from the management API is a trace of its own)
    negotiation_steps = [s for s in steps if s.attributes["sluis.process_kind"] == "negotiation"]
    negotiation_requests = [s for s in received if "/negotiations/" in str(s.attributes["url.path"])]
    assert len(negotiation_requests) == 4
    trace_ids = {s.context.trace_id for s in negotiation_steps + negotiation_requests}
    assert len(trace_ids) == 1
    # the push's read in the provider's data plane: traced with the negotiation's correlation id,
    # inside the outbox send that delivered the push
    (read,) = named("dataplane.read")
    assert read.attributes[CORRELATION_ATTRIBUTE] == negotiation_id
    assert read.parent is not None
    assert by_id[read.parent.span_id].name == "outbox.send"
