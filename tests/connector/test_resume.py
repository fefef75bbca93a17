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
    wait_for_state,
    wait_until,
)


def test_consumer_killed_mid_negotiation_completes_it_after_restart(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    provider_process, consumer_process = ConnectorProcess(provider), ConnectorProcess(consumer)
    try:
        provider_process.start()
        consumer_process.start()
        dataset_id = publish_dataset(provider)
        offer = fetch_offer(consumer, provider, dataset_id)

        provider_process.kill()  # the provider goes away: the consumer's request cannot be delivered
        negotiation_id = negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH)
        wait_until(lambda: (consumer.root / "server.log").exists(), "consumer log")
        assert negotiation_state(consumer, negotiation_id)["state"] == "REQUESTED"
        consumer_process.kill()  # ... and the consumer dies with the request still in its outbox

        provider_process.start()
        consumer_process.start()
        done = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED", "TERMINATED")
        assert done["state"] == "FINALIZED", done
        assert done["agreement_id"]
        wait_for_state(provider, "negotiations", done["provider_pid"], "FINALIZED")
    finally:
        consumer_process.stop()
        provider_process.stop()
