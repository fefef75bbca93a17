"""The public register's work does not grow with anonymous traffic, nor with unlisted agreements.

Anyone may ask for the register as often as they like; a provider concludes agreements by the
thousand. An agreement on an offer the provider did not list must cost no policy reading at all,
and many requests at once must share one build of the rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from connector.catalog import offer_id, offer_parts
from connector.pages import register
from connector.store.store import Store
from sluis import demo
from tests.pages.conftest import Space


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    calls = [0]
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_unlisted_agreements_are_never_read_and_requests_share_one_build(
    space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    say = demo.Narrator(io.StringIO(), space.files.root)
    table = demo.write_consumption_parquet(space.files.root / "register-cost.parquet")
    run = demo.run_ai_job(space.files, space.urls, say, table)  # one agreement, offer not listed
    run.job.close()
    url = f"{space.urls.provider}/pages/register.csv"

    gathered = _counting(monkeypatch, register, "gather")
    monkeypatch.setattr(register, "REFRESH_SECONDS", 0.0)  # every request builds
    for _ in range(5):
        assert httpx.get(url, timeout=30).status_code == 200
    assert gathered[0] == 0, "an agreement on an unlisted offer had its policy read"

    monkeypatch.setattr(register, "REFRESH_SECONDS", 3600.0)
    listings = _counting(monkeypatch, Store, "list_agreements")
    assert httpx.get(url, timeout=30).status_code == 200
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.get(url, timeout=30).status_code, range(24)))
    assert answers == [200] * 24
    assert listings[0] <= 1, f"{listings[0]} builds for 25 anonymous requests"


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
