"""``Job``: what an AI job imports to get governed data.

    job = Job.from_config("consumer.toml", job_id="train-42",
                          purpose="https://w3id.org/sluis/purpose/ai-training",
                          compute_site="http://publications.europa.eu/resource/authority/country/NLD",
                          catalogue_url="http://127.0.0.1:8080")
    hit = job.search("diabetes")[0]
    data = job.open(hit)     # finds the provider's connector, negotiates or reuses an agreement
    table = data.query("SELECT region, count(*) FROM data GROUP BY region")   # pyarrow.Table
    job.write_lineage("lineage.jsonld")

Everything goes through the consumer connector's management API (negotiation, transfer) and
the provider's data plane (reads); nothing here talks DSP itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
from rdflib import Graph, URIRef

from connector.identity import KeyPair
from connector.jobs.data import Address, TransferReader
from connector.jobs.errors import JobError
from connector.jobs.lineage import DatasetUse, lineage_record
from connector.protocol.discovery import DSP_VERSION, participant_of, version_url

# Negotiation and transfer are asynchronous DSP exchanges: poll their state this long.
WAIT_SECONDS = 30.0
POLL_INTERVAL_SECONDS = 0.05
# Search hits asked from the catalogue at once.
SEARCH_PAGE_SIZE = 20
FINAL_NEGOTIATION = "FINALIZED"
FAILED_STATES = frozenset({"TERMINATED"})
DCAT_ENDPOINT_URL = URIRef("http://www.w3.org/ns/dcat#endpointURL")


@dataclass
class Dataset:
    """One dataset opened by the job: read it with ``read()`` or ``query(sql)``."""

    dataset_id: str
    provider_id: str
    agreement_id: str
    transfer_id: str  # the consumer connector's id of the transfer process
    purpose: str
    reader: TransferReader

    def read(self) -> pa.Table:
        return self.reader.read()

    def query(self, sql: str) -> pa.Table:
        return self.reader.query(sql)

    def obligations(self) -> list[dict[str, Any]]:
        return self.reader.obligations()


class Job:
    """An AI job acting for a consumer participant, bound to one purpose and compute site."""

    def __init__(self, job_id: str, purpose: str, compute_site: str | None, *, connector_url: str,
                 management_token: str, key: KeyPair, consumer_id: str, catalogue_url: str | None = None,
                 credentials: Sequence[Mapping[str, Any]] = (), http: httpx.Client | None = None) -> None:
        self.job_id = job_id
        self.purpose = purpose
        self.compute_site = compute_site
        self.connector_url = connector_url.rstrip("/")
        self.catalogue_url = catalogue_url.rstrip("/") if catalogue_url else None
        self.key = key
        self.consumer_id = consumer_id
        self.credentials = [dict(credential) for credential in credentials]
        self._token = management_token
        self._http = http or httpx.Client(timeout=30.0)
        self.started = datetime.now(UTC)
        self.datasets: list[Dataset] = []

    @classmethod
    def from_config(cls, config_path: str | Path, job_id: str, purpose: str, compute_site: str | None,
                    catalogue_url: str | None = None) -> Job:
        """A job of the consumer whose connector config (TOML) is at ``config_path``."""
        from connector.config import load_config

        config = load_config(config_path)
        return cls(job_id, purpose, compute_site, connector_url=config.server.public_url,
                   management_token=config.management.token, key=config.load_key(),
                   consumer_id=config.participant_id, catalogue_url=catalogue_url,
                   credentials=config.load_credentials())

    def close(self) -> None:
        for dataset in self.datasets:
            dataset.reader.close()
        self._http.close()

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- catalogue ----------------------------------------------------------------------------
    def search(self, text: str, **facets: str) -> list[dict[str, Any]]:
        """Full-text search over the federated catalogue; returns its ``hits``."""
        if self.catalogue_url is None:
            raise JobError("no_catalogue", "this job was created without a catalogue URL")
        params = {"q": text, "page_size": str(SEARCH_PAGE_SIZE), **facets}
        response = self._http.get(f"{self.catalogue_url}/catalogue/search", params=params,
                                  headers={"Accept": "application/json"})
        body = self._json(response, "search_failed")
        hits = body.get("hits") if isinstance(body, dict) else None
        if not isinstance(hits, list):
            raise JobError("search_failed", "the catalogue's answer has no 'hits' list")
        return [hit for hit in hits if isinstance(hit, dict)]

    def locate(self, hit: Mapping[str, Any]) -> tuple[str, str, str]:
        """Where a search hit's data is offered: (dataset IRI, provider DSP URL, provider id).

        The catalogue record names the provider's DSP endpoint (``dcat:endpointURL`` of a data
        service); the provider's participant id comes from its ``/.well-known/dspace-version``.
        """
        if self.catalogue_url is None:
            raise JobError("no_catalogue", "this job was created without a catalogue URL")
        record_id, dataset_iri = hit.get("id"), hit.get("dataset")
        if not isinstance(record_id, str) or not isinstance(dataset_iri, str):
            raise JobError("bad_hit", "a search hit needs its 'id' and 'dataset'")
        response = self._http.get(f"{self.catalogue_url}/catalogue/datasets/{record_id}",
                                  headers={"Accept": "text/turtle"})
        if response.status_code != 200:
            raise JobError("record_failed", f"HTTP {response.status_code} for record {record_id}")
        graph = Graph().parse(data=response.text, format="turtle")
        endpoints = sorted(str(url) for url in graph.objects(None, DCAT_ENDPOINT_URL))
        dsp_endpoints = [url.rstrip("/") for url in endpoints if url.rstrip("/").endswith("/dsp")]
        if not dsp_endpoints:
            raise JobError("no_connector", f"the record of {dataset_iri} names no DSP endpoint")
        dsp = dsp_endpoints[0]
        participant = participant_of(self._json(self._http.get(version_url(dsp)), "version_failed"))
        if participant is None:
            raise JobError("no_participant", f"{dsp} does not say which participant serves DSP {DSP_VERSION}")
        return dataset_iri, dsp, participant

    def open(self, hit: Mapping[str, Any]) -> Dataset:
        """Open a search hit: locate its provider, negotiate or reuse an agreement, start a transfer."""
        dataset_iri, dsp, provider_id = self.locate(hit)
        return self.dataset(dataset_iri, dsp, provider_id)

    # --- management API -----------------------------------------------------------------------
    def _management(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self._http.request(
            method, f"{self.connector_url}/management{path}", json=body,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        return self._json(response, "management_failed")

    @staticmethod
    def _json(response: httpx.Response, code: str) -> Any:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:300]}
            detail = problem.get("detail") or problem.get("title") if isinstance(problem, dict) else problem
            raise JobError(code, f"HTTP {response.status_code}: {detail}", response.status_code,
                           problem if isinstance(problem, dict) else None)
        return response.json()

    def _wait(self, path: str, done: set[str], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            state = self._management("GET", path)
            if state.get("state") in done:
                return dict(state)
            if state.get("state") in FAILED_STATES:
                reason = f"the {what} ended {state.get('state')}: {state.get('error')}"
                raise JobError(f"{what}_failed", reason)
            if time.monotonic() > deadline:
                reason = f"the {what} is still {state.get('state')} after {WAIT_SECONDS} s"
                raise JobError(f"{what}_timeout", reason)
            time.sleep(POLL_INTERVAL_SECONDS)

    def offer_for(self, dataset_id: str, provider_dsp_url: str, provider_id: str) -> dict[str, Any]:
        """The first offer the provider's DSP catalog makes for ``dataset_id``."""
        catalog = self._management("POST", "/catalog/request", {
            "counterparty_address": provider_dsp_url, "counterparty_id": provider_id,
        })
        datasets = catalog.get("dataset") or catalog.get("dcat:dataset") or []
        for dataset in datasets if isinstance(datasets, list) else [datasets]:
            if isinstance(dataset, dict) and dataset.get("@id") == dataset_id:
                offers = dataset.get("hasPolicy") or dataset.get("odrl:hasPolicy") or []
                offers = offers if isinstance(offers, list) else [offers]
                if offers and isinstance(offers[0], dict):
                    return dict(offers[0])
        raise JobError("no_offer", f"the provider offers nothing for {dataset_id} to this consumer")

    def agreement_for(self, dataset_id: str, provider_id: str) -> str | None:
        """An agreement this consumer already holds for the dataset, if any (reused)."""
        for agreement in self._management("GET", "/agreements"):
            if (isinstance(agreement, dict) and agreement.get("asset_id") == dataset_id
                    and agreement.get("provider_id") == provider_id and not agreement.get("terminated")):
                return str(agreement["id"])
        return None

    def negotiate(self, dataset_id: str, provider_dsp_url: str, provider_id: str,
                  offer: Mapping[str, Any] | None = None) -> str:
        """Negotiate an agreement for ``dataset_id``; returns the agreement id."""
        chosen = dict(offer) if offer is not None else self.offer_for(
            dataset_id, provider_dsp_url, provider_id
        )
        created = self._management("POST", "/negotiations", {
            "counterparty_address": provider_dsp_url, "counterparty_id": provider_id,
            "dataset_id": dataset_id, "offer": chosen, "purpose": self.purpose,
            **({"compute_site": self.compute_site} if self.compute_site else {}),
        })
        final = self._wait(f"/negotiations/{created['id']}", {FINAL_NEGOTIATION}, "negotiation")
        agreement_id = final.get("agreement_id")
        if not isinstance(agreement_id, str):
            raise JobError("negotiation_failed", "the negotiation finished without an agreement id")
        return agreement_id

    def dataset(self, dataset_id: str, provider_dsp_url: str, provider_id: str,
                offer: Mapping[str, Any] | None = None) -> Dataset:
        """Open a dataset: reuse or negotiate an agreement, start a transfer bound to this job."""
        agreement_id = self.agreement_for(dataset_id, provider_id) or self.negotiate(
            dataset_id, provider_dsp_url, provider_id, offer
        )
        created = self._management("POST", "/transfers", {
            "agreement_id": agreement_id, "counterparty_address": provider_dsp_url, "format": "HttpData-PULL",
            "job": {"id": self.job_id, "purpose": self.purpose, "compute_site": self.compute_site},
        })
        started = self._wait(f"/transfers/{created['id']}", {"STARTED"}, "transfer")
        address_json = started.get("data_address")
        if not isinstance(address_json, dict):
            raise JobError("no_data_address", "the transfer started without a data address")
        address = Address.from_json(address_json)
        reader = self._reader(address)
        opened = Dataset(dataset_id, provider_id, agreement_id, str(created["id"]), self.purpose, reader)
        self.datasets.append(opened)
        return opened

    def open_transfer(self, dataset_id: str, provider_id: str, agreement_id: str,
                      address: Mapping[str, Any]) -> Dataset:
        """Use a data address obtained elsewhere (e.g. handed to the job by its orchestrator)."""
        reader = self._reader(Address.from_json(address))
        opened = Dataset(dataset_id, provider_id, agreement_id, reader.transfer_id, self.purpose, reader)
        self.datasets.append(opened)
        return opened

    def _reader(self, address: Address) -> TransferReader:
        return TransferReader(address, self.key, http=self._http, consumer_id=self.consumer_id,
                              credentials=self.credentials)

    # --- lineage ------------------------------------------------------------------------------
    def lineage(self) -> dict[str, Any]:
        uses = [
            DatasetUse(d.dataset_id, d.provider_id, d.agreement_id, d.transfer_id, d.purpose,
                       tuple(d.reader.reads))
            for d in self.datasets
        ]
        return lineage_record(
            self.job_id, self.consumer_id, self.purpose, self.compute_site, self.started, uses
        )

    def write_lineage(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_text(json.dumps(self.lineage(), indent=2, sort_keys=True), encoding="utf-8")
        return target
