"""The management API's listings page and filter; an agreement revoked with no transfer is told."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connector.store import Store
from tests.connector.conftest import OfficialSchemas
from tests.connector.dsp_world import (
    Authority,
    Party,
    finalized_agreement,
    make_party,
    publish_dataset,
    running,
    wait_until,
)


@pytest.fixture
def pair(
    tmp_path: Path, authority: Authority, storage_urls: Callable[[str], str]
) -> Iterator[tuple[Party, Party]]:
    provider = make_party(tmp_path, "provider", authority, storage_urls("provider"))
    consumer = make_party(tmp_path, "consumer", authority, storage_urls("consumer"))
    with running(provider), running(consumer):
        yield provider, consumer


def _agreement(consumer: Party, provider: Party, dataset_id: str) -> dict[str, str]:
    return finalized_agreement(consumer, provider, dataset_id)


def test_listings_page_and_filter(pair: tuple[Party, Party]) -> None:
    provider, consumer = pair
    dataset_id = publish_dataset(provider)
    finished = [_agreement(consumer, provider, dataset_id) for _ in range(3)]
    with consumer.management() as api:
        first = api.get("/negotiations", params={"limit": 2})
        assert first.status_code == 200
        assert len(first.json()) == 2
        assert first.headers["X-Total-Count"] == "3"
        assert 'rel="next"' in first.headers["Link"]
        second = api.get("/negotiations", params={"limit": 2, "offset": 2})
        assert len(second.json()) == 1
        assert 'rel="prev"' in second.headers["Link"]
        assert 'rel="next"' not in second.headers["Link"]
        ids = [n["id"] for n in first.json() + second.json()]
        assert sorted(ids) == sorted(n["id"] for n in finished)
        assert api.get("/negotiations", params={"state": "TERMINATED"}).json() == []
        assert len(api.get("/negotiations", params={"state": "FINALIZED", "role": "consumer"}).json()) == 3
        one = finished[0]["agreement_id"]
        by_agreement = api.get("/negotiations", params={"agreement_id": one}).json()
        assert [n["agreement_id"] for n in by_agreement] == [one]
        # a filter value outside the domain is a 4xx naming the parameter, never a 500
        bad = api.get("/negotiations", params={"state": "PARTY"})
        assert 400 <= bad.status_code < 500
        assert "state" in bad.text
        for params in ({"limit": 0}, {"limit": 100_000}, {"offset": -1}, {"q": "x" * 1000}):
            refused = api.get("/transfers", params=params)
            assert 400 <= refused.status_code < 500, params
    with provider.management() as api:
        agreements = api.get("/agreements", params={"consumer_id": consumer.did, "limit": 1})
        assert agreements.headers["X-Total-Count"] == "3"
        assert api.get("/agreements", params={"consumer_id": "did:web:nobody"}).json() == []
        assert len(api.get("/agreements", params={"terminated": "false"}).json()) == 3
        assets = api.get("/assets", params={"q": "cohort"})
        assert [a["id"] for a in assets.json()] == [dataset_id]
        assert api.get("/assets", params={"q": "100%_"}).json() == []  # LIKE wildcards are literal
        assert api.get(f"/assets/{dataset_id}").json()["data"]["kind"] == "csv"
        assert {p["id"] for p in api.get("/policies").json()} == {"access", "contract"}
        assert api.get("/policies", params={"q": "acc"}).headers["X-Total-Count"] == "1"
        assert api.get("/contract-definitions").json()[0]["asset_ids"] == [dataset_id]
        assert api.get("/policies/nothing").status_code == 404


def test_agreement_terminated_with_no_transfer_is_told_to_the_consumer(pair: tuple[Party, Party]) -> None:
    provider, consumer = pair
    dataset_id = publish_dataset(provider)
    done = _agreement(consumer, provider, dataset_id)
    agreement_id = done["agreement_id"]
    with provider.management() as api:
        ended = api.post(f"/agreements/{agreement_id}/terminate", json={"reason": "permit withdrawn"})
        assert ended.status_code == 200
        assert ended.json()["transfers_terminated"] == []

    def consumer_knows() -> bool:
        with consumer.management() as api:
            shown = api.get("/agreements", params={"terminated": "true"}).json()
        return [a["id"] for a in shown] == [agreement_id]

    wait_until(consumer_knows, "the consumer to learn the agreement ended")
    # the negotiation stays FINALIZED (DSP has no further state); the reason is kept
    with consumer.management() as api:
        assert api.get(f"/negotiations/{done['id']}").json()["state"] == "FINALIZED"
        # no transfer can start under it any more
        refused = api.post(
            "/transfers", json={"agreement_id": agreement_id, "counterparty_address": provider.dsp}
        )
        assert refused.status_code == 409
    store = Store(str(_storage(consumer)))
    try:
        negotiation = store.get_process(done["id"], "negotiation")
        assert negotiation is not None
        assert negotiation.details["agreement_terminated"] == "permit withdrawn"
    finally:
        store.close()


def _storage(party: Party) -> str:
    from connector.config import load_config

    return str(load_config(party.config_path).storage.url)


def test_dsp_catalog_carries_the_full_dcat_record_of_an_asset(
    pair: tuple[Party, Party], official_schemas: OfficialSchemas
) -> None:
    provider, consumer = pair
    dataset_id = publish_dataset(provider)
    record = {
        "@context": {"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/"},
        "@id": dataset_id,
        "@type": "dcat:Dataset",
        "dct:description": {"@value": "Synthetic cohort of two", "@language": "en"},
        "dcat:keyword": ["cohort", "synthetic"],
        "dct:publisher": {"@id": "https://provider.example/org", "dct:title": "Provider"},
        "dcat:distribution": {"dcat:accessURL": {"@id": "https://elsewhere.example/"}},
    }
    with provider.management() as api:
        api.post(
            "/assets",
            json={
                "id": dataset_id,
                "title": "Synthetic cohort",
                "dataset": record,
                "data": {"kind": "csv", "path": "cohort.csv"},
            },
        ).raise_for_status()
    with consumer.management() as api:
        response = api.post(
            "/catalog/request", json={"counterparty_address": provider.dsp, "counterparty_id": provider.did}
        )
        response.raise_for_status()
    catalog = response.json()
    assert not official_schemas.errors(catalog)
    (dataset,) = [d for d in catalog["dataset"] if d["@id"] == dataset_id]
    dct, dcat = "http://purl.org/dc/terms/", "http://www.w3.org/ns/dcat#"
    assert dataset[f"{dct}description"] == [{"@value": "Synthetic cohort of two", "@language": "en"}]
    assert {k["@value"] for k in dataset[f"{dcat}keyword"]} == {"cohort", "synthetic"}
    assert dataset[f"{dct}publisher"][0]["@id"] == "https://provider.example/org"
    assert dataset[f"{dct}title"] == "Synthetic cohort"
    # the distributions are the connector's own (how to get the data here), not the record's
    assert f"{dcat}distribution" not in dataset
    assert {d["format"] for d in dataset["distribution"]} == {"HttpData-PULL", "HttpData-PUSH"}
