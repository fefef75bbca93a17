"""A stored policy the engine now refuses (kept from an older, laxer release) must not break
the catalog for everyone: that offer is simply not offered, and cannot be found by its id."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connector.catalog import CatalogBuilder, offer_id
from connector.store import AssetRecord, ContractDefinition, Store

OPEN = {"@id": "urn:policy:open", "@type": "Offer", "permission": [{"action": "use"}]}
# A misspelt prohibition list: refused by the parser (unknown-property), never read as open.
MISSPELT = {**OPEN, "@id": "urn:policy:misspelt", "prohibitions": [{"action": "use"}]}


def test_an_unreadable_stored_policy_is_not_offered_and_the_rest_still_is(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", data_root=tmp_path / "data")
    store.migrate()
    for asset in ("urn:asset:good", "urn:asset:bad"):
        store.put_asset(AssetRecord(asset, asset, {}, "csv", "x.csv"))
    store.put_policy("open", OPEN)
    store.put_policy("misspelt", MISSPELT)
    store.put_contract_definition(ContractDefinition("good", "open", "open", ("urn:asset:good",)))
    store.put_contract_definition(ContractDefinition("bad", "open", "misspelt", ("urn:asset:bad",)))
    catalog = CatalogBuilder(store, "did:web:provider.example", "http://127.0.0.1:1/dsp")
    offered = catalog.offers("did:web:alice.example", {}, datetime(2025, 6, 1, tzinfo=UTC))
    assert [each.asset.id for each in offered] == ["urn:asset:good"]
    assert catalog.find_offer(offer_id("bad", "urn:asset:bad")) is None
    assert catalog.find_offer(offer_id("good", "urn:asset:good")) is not None
