"""A DSP token's id is written with the step it authorised (connector/store/replay.py), and a
replay is still refused every way an attacker could try it: the same token on a second request
that would write a step, on two requests racing each other, after a first use that was refused
before anything was written, and on a request that writes nothing at all."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.dsp_client import DspClient
from connector.identity import KeyPair
from connector.protocol.extensions import EXT_PURPOSE
from tests.connector.dsp_world import (
    RESEARCH,
    Authority,
    Party,
    fetch_offer,
    publish_dataset,
    running_party,
)
from vocab import dsp


@pytest.fixture
def pair(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> Iterator[tuple[Party, Party, dict[str, Any]]]:
    with (
        running_party(tmp_path, "provider", authority, storage_urls("provider")) as provider,
        running_party(tmp_path, "consumer", authority, storage_urls("consumer")) as consumer,
    ):
        dataset_id = publish_dataset(provider)
        offer = {**fetch_offer(consumer, provider, dataset_id), "target": dataset_id}
        yield provider, consumer, offer


def _token(consumer: Party, provider: Party) -> str:
    """A token of the consumer for the provider, made as its own connector makes them."""
    key = KeyPair.load(consumer.root / "participant-key.pem")
    credentials = [json.loads((consumer.root / "credentials" / "membership.json").read_text())]
    client = DspClient(consumer.did, key, credentials)
    try:
        return client.token_for(provider.did)
    finally:
        client.close()


def _request(consumer: Party, offer: dict[str, Any], pid: str, callback: str | None = None) -> dict[str, Any]:
    return dsp.contract_request_message(
        pid, offer, callback_address=callback or consumer.dsp, extensions={EXT_PURPOSE: RESEARCH}
    )


def _post(provider: Party, token: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{provider.dsp}/negotiations/request", json=body, headers=headers, timeout=30)


def _stored_consumer_pids(provider: Party) -> set[str]:
    with provider.management() as api:
        return {n["consumer_pid"] for n in api.get("/negotiations").json()}


def test_a_token_opens_one_negotiation_and_its_replay_opens_none(
    pair: tuple[Party, Party, dict[str, Any]],
) -> None:
    provider, consumer, offer = pair
    token = _token(consumer, provider)
    first = _post(provider, token, _request(consumer, offer, "urn:uuid:replay-1"))
    assert first.status_code == 201, first.text
    # the same message again (the provider would answer an honest retry with the existing
    # negotiation, writing nothing) and another message: both refused as a replay
    for pid in ("urn:uuid:replay-1", "urn:uuid:replay-2"):
        again = _post(provider, token, _request(consumer, offer, pid))
        assert again.status_code == 401, again.text
        assert again.json()["@type"] == "ContractNegotiationError"
        assert again.json()["code"] == "token-token_replayed"
    assert _stored_consumer_pids(provider) == {"urn:uuid:replay-1"}


def test_two_requests_racing_with_one_token_open_exactly_one_negotiation(
    pair: tuple[Party, Party, dict[str, Any]],
) -> None:
    provider, consumer, offer = pair
    token = _token(consumer, provider)
    statuses: dict[str, int] = {}
    start = threading.Barrier(4)

    def send(pid: str) -> None:
        body = _request(consumer, offer, pid)
        start.wait()
        statuses[pid] = _post(provider, token, body).status_code

    threads = [threading.Thread(target=send, args=(f"urn:uuid:race-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses.values()) == [201, 401, 401, 401], statuses
    (won,) = [pid for pid, status in statuses.items() if status == 201]
    assert _stored_consumer_pids(provider) == {won}


def test_a_token_first_used_on_a_refused_request_cannot_be_used_again(
    pair: tuple[Party, Party, dict[str, Any]],
) -> None:
    provider, consumer, offer = pair
    token = _token(consumer, provider)
    # refused before anything is written: a callback address that is not the consumer's
    refused = _post(provider, token, _request(consumer, offer, "urn:uuid:first", "http://127.0.0.9:1/dsp"))
    assert refused.status_code == 400, refused.text
    again = _post(provider, token, _request(consumer, offer, "urn:uuid:second"))
    assert again.status_code == 401, again.text
    assert _stored_consumer_pids(provider) == set()


def test_a_state_query_token_cannot_be_replayed(pair: tuple[Party, Party, dict[str, Any]]) -> None:
    provider, consumer, offer = pair
    opened = _post(provider, _token(consumer, provider), _request(consumer, offer, "urn:uuid:asked"))
    assert opened.status_code == 201, opened.text
    url = f"{provider.dsp}/negotiations/{opened.json()['providerPid']}"
    token = _token(consumer, provider)
    first = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert first.status_code == 200, first.text
    again = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert again.status_code == 401, again.text
