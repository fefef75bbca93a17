"""A connector killed (SIGKILL) in the middle of a negotiation finishes it after a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.connector.dsp_world import (
    RESEARCH,
    Authority,
    ConnectorProcess,
    fetch_offer,
    make_party,
    negotiate,
    negotiation_state,
    publish_dataset,
    running,
    wait_for_state,
)


def test_consumer_killed_mid_negotiation_completes_it_after_restart(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    consumer_process = ConnectorProcess(consumer)
    try:
        consumer_process.start()
        with running(provider):
            dataset_id = publish_dataset(provider)
            offer = fetch_offer(consumer, provider, dataset_id)
        # the provider is gone: the consumer's request cannot be delivered and stays in its outbox
        negotiation_id = negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH)
        assert negotiation_state(consumer, negotiation_id)["state"] == "REQUESTED"
        consumer_process.kill()  # ... and the consumer dies with the request still queued

        with running(provider):
            consumer_process.start()
            done = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED", "TERMINATED")
            assert done["state"] == "FINALIZED", done
            assert done["agreement_id"]
            wait_for_state(provider, "negotiations", done["provider_pid"], "FINALIZED")
    finally:
        consumer_process.stop()
