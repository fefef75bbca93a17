"""The public register's work does not grow with anonymous traffic, nor with unlisted agreements.

Anyone may ask for the register as often as they like; a provider concludes agreements by the
thousand. An agreement on an offer the provider did not list must cost no policy reading at all,
and many requests at once must share one build of the rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from connector.catalog import offer_id, offer_parts
from connector.config import load_config
from connector.database import Database
from connector.jobs import Job
from connector.pages import register
from connector.pages.register_store import RegisterChoices
from sluis import demo
from tests.pages.conftest import Space

DEFINITION = "household-electricity-offer"  # the demo's contract definition


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    calls = [0]
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.fixture
def choices(space: Space) -> Iterator[RegisterChoices]:
    """The provider's register choices, put back as they were (other tests share the space)."""
    database = Database(load_config(space.files.provider_config).storage.url)
    made = RegisterChoices(database)
    before = made.listed()
    try:
        yield made
    finally:
        made.choose(DEFINITION, DEFINITION in before)


def test_unlisted_agreements_are_never_read_and_requests_share_one_build(
    space: Space, choices: RegisterChoices, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an agreement on the demo's offer, negotiated without reading (reads on this offer count per
    # consumer across agreements, and other tests of this space read)
    job = Job.from_config(
        space.files.consumer_config, "register-cost", demo.AI_TRAINING, demo.COMPUTE_SITE,
        catalogue_url=space.urls.catalogue,
    )
    try:
        dsp, provider_id = demo.find_dataset(job, demo.Narrator(io.StringIO(), space.files.root))
        offer = job.offer_for(demo.DATASET_IRI, dsp, provider_id)
        assert job.dataset(demo.DATASET_IRI, dsp, provider_id, offer).agreement_id
    finally:
        job.close()
    url = f"{space.urls.provider}/pages/register.csv"
    gathered = _counting(monkeypatch, register, "gather")

    choices.choose(DEFINITION, False)
    monkeypatch.setattr(register, "REFRESH_SECONDS", 0.0)  # every request builds
    for _ in range(5):
        assert httpx.get(url, timeout=30).status_code == 200
    assert gathered[0] == 0, "an agreement on an unlisted offer had its policy read"

    choices.choose(DEFINITION, True)  # a change of the listed offers rebuilds at once
    monkeypatch.setattr(register, "REFRESH_SECONDS", 3600.0)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.get(url, timeout=30), range(25)))
    assert {answer.status_code for answer in answers} == {200}
    listed_rows = len(answers[0].text.splitlines()) - 1  # the header
    assert listed_rows >= 1
    assert gathered[0] == listed_rows, f"{gathered[0]} agreements read for {listed_rows} rows"


@pytest.mark.parametrize(
    ("definition", "asset"),
    [("research", "household-electricity"), ("a:b:c", "x:y"), ("", "asset"), ("12:ab", ":")],
)
def test_offer_ids_split_back_into_definition_and_asset(definition: str, asset: str) -> None:
    assert offer_parts(offer_id(definition, asset)) == (definition, asset)


@pytest.mark.parametrize(
    "identifier",
    ["", "urn:other:1:a:b", "urn:sluis:offer:", "urn:sluis:offer:x:a:b", "urn:sluis:offer:5:ab:c",
     "urn:sluis:offer:99999999:a:b", "urn:sluis:offer:2:abXc"],
)
def test_foreign_or_malformed_offer_ids_have_no_parts(identifier: str) -> None:
    assert offer_parts(identifier) is None


def test_a_terminated_agreement_leaves_the_register_at_once_despite_the_refresh_bound(
    space: Space, choices: RegisterChoices, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = Job.from_config(
        space.files.consumer_config, "register-fresh", demo.AI_TRAINING, demo.COMPUTE_SITE,
        catalogue_url=space.urls.catalogue,
    )
    try:
        dsp, provider_id = demo.find_dataset(job, demo.Narrator(io.StringIO(), space.files.root))
        offer = job.offer_for(demo.DATASET_IRI, dsp, provider_id)
        agreement_id = job.dataset(demo.DATASET_IRI, dsp, provider_id, offer).agreement_id
    finally:
        job.close()
    assert agreement_id
    choices.choose(DEFINITION, True)
    monkeypatch.setattr(register, "REFRESH_SECONDS", 3600.0)  # only a change may rebuild
    url = f"{space.urls.provider}/pages/register.jsonld"

    def state_of_agreement() -> str:
        rows = httpx.get(url, timeout=30).json()["@graph"]
        return next(row["state"] for row in rows if row["@id"] == agreement_id)

    assert state_of_agreement() == "active"
    gathered = _counting(monkeypatch, register, "gather")
    assert state_of_agreement() == "active"
    assert gathered[0] == 0, "an unchanged register was built again"
    ended = httpx.post(
        f"{space.urls.provider}/management/agreements/{agreement_id}/terminate",
        headers={"Authorization": f"Bearer {space.provider_token}"},
        json={"reason": "permit withdrawn"},
        timeout=30,
    )
    assert ended.status_code == 200, ended.text
    assert state_of_agreement() == "terminated"
