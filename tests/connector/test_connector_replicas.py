"""Two replicas of one provider on one database: every message is sent once, every process ends once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from connector.app import create_app
from connector.config import load_config
from sluis.servers import serve_in_thread
from tests.connector.dsp_world import (
    RESEARCH,
    Authority,
    Recorder,
    fetch_offer,
    negotiate,
    publish_dataset,
    running_party,
    wait_for_state,
)


def test_two_provider_replicas_share_the_work_without_doing_it_twice(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> None:
    received = Recorder()
    with (
        running_party(tmp_path, "provider", authority, storage_urls("provider")) as provider,
        running_party(tmp_path, "consumer", authority, storage_urls("consumer"), received) as consumer,
    ):
        # a second replica of the provider: same identity, same database, its own outbox worker
        replica = create_app(load_config(provider.config_path))
        with serve_in_thread(replica):
            dataset_id = publish_dataset(provider)
            offer = fetch_offer(consumer, provider, dataset_id)
            ids = [negotiate(consumer, provider, dataset_id, offer, purpose=RESEARCH) for _ in range(8)]
            for negotiation_id in ids:
                done = wait_for_state(consumer, "negotiations", negotiation_id, "FINALIZED", "TERMINATED")
                assert done["state"] == "FINALIZED", done
    deliveries = Counter(
        (body["@type"], body["consumerPid"])
        for direction, _, body in received.messages
        if direction == "received"
        and body.get("@type") in ("ContractAgreementMessage", "ContractNegotiationEventMessage")
    )
    for negotiation_id in ids:
        assert deliveries[("ContractAgreementMessage", negotiation_id)] == 1, deliveries
        assert deliveries[("ContractNegotiationEventMessage", negotiation_id)] == 1, deliveries
