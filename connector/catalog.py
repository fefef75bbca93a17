"""The connector's DSP catalog, generated from its assets and contract definitions.

A contract definition ties assets to two policies: the *access* policy decides who may even see
the assets (evaluated here against the requester's verified claims), the *contract* policy is
what a consumer gets offered. Offers are DSP ``Offer``s without ``target`` (the dataset is the
target); their ``@id`` names the contract definition and asset so a later request can be traced
back to exactly what was offered.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import policies
from connector.policy_gate import Verdict, decide, offer_for_catalog
from connector.protocol.extensions import EXT_EXTENSIONS, SUPPORTED_EXTENSIONS
from connector.store import AssetRecord, ContractDefinition, Store
from vocab import dsp
from vocab.errors import VocabError
from vocab.jsonld import expand

#: Data-transfer formats this connector offers for every dataset.
DISTRIBUTION_FORMATS = ("HttpData-PULL", "HttpData-PUSH")
#: A catalog lists at most this many datasets (DSP has no paging of its own in 2025-1).
MAX_CATALOG_DATASETS = 10_000
_DCT_TITLE = "http://purl.org/dc/terms/title"


#: Members of an asset's own record left out of its DSP dataset: the DSP ones describe how *this
#: connector* offers it (its offers and distributions) and the record's title is the asset's.
_DSP_OWNED = frozenset(
    {
        "@id",
        "@type",
        "http://www.w3.org/ns/odrl/2/hasPolicy",
        "http://www.w3.org/ns/dcat#distribution",
        _DCT_TITLE,
    }
)


def dcat_members(asset: AssetRecord) -> dict[str, Any]:
    """The asset's DCAT record (as registered) as absolute-IRI members for its DSP ``Dataset``:
    description, keywords, themes, publisher, temporal and spatial coverage and the rest, in
    JSON-LD expanded form, so they survive the DSP context unchanged. A record that does not read
    as JSON-LD adds nothing (it was checked for depth when registered, not for meaning)."""
    if not asset.dataset:
        return {}
    text = json.dumps(asset.dataset, sort_keys=True)
    members: dict[str, Any] = json.loads(_expanded_members(asset.id, text))  # a fresh copy per use
    return members


@functools.lru_cache(maxsize=1024)
def _expanded_members(asset_id: str, text: str) -> str:
    """JSON of the members (expansion is pure: cached per record text, as pyld is slow)."""
    try:
        nodes = expand(json.loads(text), asset_id)
    except (VocabError, ValueError):
        return "{}"
    chosen = next((n for n in nodes if n.get("@id") == asset_id), nodes[0] if len(nodes) == 1 else None)
    if chosen is None:
        return "{}"
    return json.dumps({key: value for key, value in chosen.items() if key not in _DSP_OWNED})


_OFFER_PREFIX = "urn:sluis:offer:"


def offer_id(definition_id: str, asset_id: str) -> str:
    return f"{_OFFER_PREFIX}{len(definition_id)}:{definition_id}:{asset_id}"


def offer_parts(identifier: str) -> tuple[str, str] | None:
    """(definition id, asset id) of an offer id this connector made; None for anything else.

    The length prefix makes the split unambiguous whatever the ids contain, so callers can tell
    which contract definition an agreement came from without searching every definition.
    """
    if not identifier.startswith(_OFFER_PREFIX):
        return None
    length, colon, rest = identifier[len(_OFFER_PREFIX) :].partition(":")
    if not colon or not length.isdigit() or len(length) > 6:
        return None
    size = int(length)
    if len(rest) <= size or rest[size] != ":":
        return None
    return rest[:size], rest[size + 1 :]


@dataclass(frozen=True)
class OfferedAsset:
    """One offer of one asset under one contract definition."""

    asset: AssetRecord
    definition: ContractDefinition
    offer: dict[str, Any]


class CatalogBuilder:
    """Builds the catalog (or one dataset) a given requester is allowed to see."""

    def __init__(self, store: Store, participant_id: str, dsp_base: str) -> None:
        self.store = store
        self.participant_id = participant_id
        self.dsp_base = dsp_base
        self.service_id = f"{dsp_base}#service"

    def access(
        self,
        definition: ContractDefinition,
        asset_id: str,
        requester: str,
        context: Mapping[str, object],
        now: datetime,
    ) -> Verdict:
        """The definition's access policy for ``requester`` (scope access; a missing policy denies)."""
        access = self.store.get_policy(definition.access_policy_id)
        if access is None:
            return Verdict(False, f"the access policy {definition.access_policy_id} no longer exists")
        return decide(
            access, assignee=requester, target=asset_id, context=context, now=now, scope=policies.Scope.ACCESS
        )

    def _visible(
        self,
        definition: ContractDefinition,
        asset_id: str,
        requester: str,
        context: Mapping[str, object],
        now: datetime,
    ) -> bool:
        return self.access(definition, asset_id, requester, context, now).permitted

    def offers(
        self, requester: str, context: Mapping[str, object], now: datetime, asset_id: str | None = None
    ) -> list[OfferedAsset]:
        found: list[OfferedAsset] = []
        for definition in self.store.contract_definitions():
            if asset_id is not None and asset_id not in definition.asset_ids:
                continue
            contract = self.store.get_policy(definition.contract_policy_id)
            if contract is None:
                continue
            for each in definition.asset_ids:
                if asset_id is not None and each != asset_id:
                    continue
                if not self._visible(definition, each, requester, context, now):
                    continue
                asset = self.store.get_asset(each)
                if asset is None:
                    continue
                offer = _offer_or_none(contract, offer_id(definition.id, each))
                if offer is None:
                    continue  # a stored policy this engine cannot read is offered to no one
                found.append(OfferedAsset(asset, definition, offer))
                if len(found) >= MAX_CATALOG_DATASETS:
                    return found
        return found

    def definition(self, definition_id: str) -> ContractDefinition | None:
        for definition in self.store.contract_definitions():
            if definition.id == definition_id:
                return definition
        return None

    def find_offer(
        self, offer_identifier: str
    ) -> tuple[AssetRecord, ContractDefinition, dict[str, Any]] | None:
        """The asset, definition and current offer behind an offer id (no visibility check:
        callers answering a peer check the access policy themselves)."""
        for definition in self.store.contract_definitions():
            for each in definition.asset_ids:
                if offer_id(definition.id, each) != offer_identifier:
                    continue
                asset = self.store.get_asset(each)
                contract = self.store.get_policy(definition.contract_policy_id)
                if asset is None or contract is None:
                    return None
                offer = _offer_or_none(contract, offer_identifier)
                return None if offer is None else (asset, definition, offer)
        return None

    def _dataset(self, asset: AssetRecord, offers: list[dict[str, Any]]) -> dict[str, Any]:
        distributions = [
            {"@type": "Distribution", "format": fmt, "accessService": self.service_id}
            for fmt in DISTRIBUTION_FORMATS
        ]
        description = {**dcat_members(asset), _DCT_TITLE: asset.title}
        body = dsp.dataset(asset.id, offers, distributions, description)
        body.pop("@context")
        return body

    def _grouped(self, offered: list[OfferedAsset]) -> list[dict[str, Any]]:
        by_asset: dict[str, tuple[AssetRecord, list[dict[str, Any]]]] = {}
        for item in offered:
            by_asset.setdefault(item.asset.id, (item.asset, []))[1].append(item.offer)
        return [self._dataset(asset, offers) for asset, offers in by_asset.values()]

    def catalog(self, requester: str, context: Mapping[str, object], now: datetime) -> dict[str, Any]:
        datasets = self._grouped(self.offers(requester, context, now))
        service = {
            "@id": self.service_id,
            "@type": "DataService",
            "endpointURL": self.dsp_base,
            EXT_EXTENSIONS: list(SUPPORTED_EXTENSIONS),  # what a consumer may ask for in a request
        }
        return dsp.catalog(f"{self.dsp_base}#catalog", self.participant_id, datasets, [service])

    def dataset(
        self, requester: str, context: Mapping[str, object], now: datetime, asset_id: str
    ) -> dict[str, Any] | None:
        datasets = self._grouped(self.offers(requester, context, now, asset_id))
        if not datasets:
            return None
        return {"@context": [dsp.DSP_CONTEXT_URL], **datasets[0]}


def _offer_or_none(contract: Mapping[str, Any], identifier: str) -> dict[str, Any] | None:
    """The catalog offer of a stored policy, or None when the engine refuses to read it (one
    stored before a stricter release, say): not offered, rather than failing every catalog."""
    try:
        return offer_for_catalog(contract, identifier)
    except policies.PolicyError:
        return None
