"""A HEAD of a page is answered like its GET, without a body (never 405).

Link checkers and some browsers ask HEAD first. Plain HTTP against the running data space.
"""

from __future__ import annotations

import re

import httpx

from tests.pages.conftest import Space
from tests.pages.test_pages_hostile import BROWSER, login


def _same_as_get(client: httpx.Client, url: str) -> None:
    got = client.get(url)
    head = client.head(url)
    assert head.status_code == got.status_code, url
    assert head.headers.get("content-type") == got.headers.get("content-type"), url
    assert head.headers.get("location") == got.headers.get("location"), url
    assert head.content == b"", url
    if "content-length" in got.headers:
        assert head.headers["content-length"] == got.headers["content-length"], url


def test_head_of_catalogue_pages_answers_like_get(space: Space) -> None:
    base = space.urls.catalogue
    with httpx.Client(headers=BROWSER, timeout=30) as client:
        search = client.get(base + "/pages/catalogue/search").text
        link = re.search(r'href="([^"]*/catalogue/datasets/[A-Za-z0-9_-]+)"', search)
        assert link is not None
        for path in (
            "/pages/", "/pages/catalogue/search", "/catalogue/search", link.group(1),
            "/pages/catalogue/datasets/no-such-record", "/pages/catalogue/publish", "/pages/login",
        ):  # fmt: skip
            _same_as_get(client, base + path)
        assert client.head(base + "/pages/").status_code == 200


def test_head_of_connector_pages_answers_like_get(space: Space) -> None:
    base = space.urls.provider
    with httpx.Client(headers=BROWSER, timeout=30) as client:
        for path in ("/pages/", "/pages/register", "/pages/agreements", "/pages/login"):
            _same_as_get(client, base + path)
    with login(base, space.provider_token) as client:
        for path in ("/pages/agreements", "/pages/offers", "/pages/audit"):
            _same_as_get(client, path)
            assert client.head(path).status_code == 200, path
