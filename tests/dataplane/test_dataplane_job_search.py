"""An AI job finds a dataset through a real catalogue node's search API."""

from __future__ import annotations

from pathlib import Path

import httpx

from catalogue.api import create_catalogue_app
from catalogue.config import CatalogueConfig
from connector.identity import KeyPair
from connector.jobs import Job
from sluis.servers import free_port, serve_in_thread
from tests.catalogue.catalogue_records import PUBLISHER, dataset_iri, dataset_turtle

RESEARCH = "https://w3id.org/sluis/purpose/scientific-research"


def test_job_finds_a_dataset_in_the_catalogue(tmp_path: Path) -> None:
    port = free_port()
    app = create_catalogue_app(tmp_path / "node", CatalogueConfig(public_url=f"http://127.0.0.1:{port}"))
    token = app.state.catalogue.tokens.create(PUBLISHER).token
    with serve_in_thread(app, port=port) as url:
        for slug, title in (("diabetes-cohort", "Diabetes cohort"), ("grid-load", "Hourly grid load")):
            published = httpx.post(
                f"{url}/catalogue/datasets", content=dataset_turtle(slug, title=title),
                headers={"Content-Type": "text/turtle", "Authorization": f"Bearer {token}"}, timeout=60,
            )
            assert published.status_code in (200, 201), published.text
        with Job("search-1", RESEARCH, None, connector_url="http://127.0.0.1:9", management_token="unused",
                 key=KeyPair.generate(), consumer_id="did:web:127.0.0.1%3A9", catalogue_url=url) as job:
            hits = job.search("diabetes")
    assert [hit["dataset"] for hit in hits] == [dataset_iri("diabetes-cohort")]
