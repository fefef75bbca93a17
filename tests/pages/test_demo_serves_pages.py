"""``sluis demo`` keeps the data space running after its story and prints where the pages are.

The wait for Ctrl-C is replaced by a check that runs while the servers are still up: every
printed page URL answers a browser with a page, the printed tokens log in, and the catalogue's
dataset page reads the record's offer as sentences.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx

from sluis import demo

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_demo_prints_the_page_urls_and_serves_them_until_stopped(tmp_path: Path) -> None:
    out = io.StringIO()
    seen: dict[str, int] = {}

    def while_running() -> None:
        text = out.getvalue()
        urls = re.findall(r"(http://127\.0\.0\.1:\d+/\S*)", text.split("keeps running", 1)[1])
        assert len(urls) >= 4
        for url in urls:
            answer = httpx.get(url, headers=BROWSER, timeout=30)
            seen[url] = answer.status_code
            assert "text/html" in answer.headers["content-type"], url
        token = re.search(r"provider operator token\s+(\S+)", text)
        assert token is not None
        provider = next(url for url in urls if url.endswith("/pages/") and "provider" in text)
        agreements = httpx.get(provider + "agreements", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert agreements.status_code == 200
        assert agreements.json()  # the story's agreement is there
        search = next(url for url in urls if url.endswith("/catalogue/search"))
        found = httpx.get(search, headers=BROWSER, timeout=30).text
        link = re.search(r'href="([^"]*/catalogue/datasets/[A-Za-z0-9_-]+)"', found)
        assert link is not None, found[-2000:]
        page = httpx.get(httpx.URL(search).join(link.group(1)), headers=BROWSER, timeout=30)
        assert page.status_code == 200
        # The record carries the connector's offer; the page reads it to the visitor as a sentence.
        assert "without the column household_id" in page.text
        assert "at most 3 reads" in page.text

    code = demo.run_demo(tmp_path / "space", keep=True, out=out, serve=True, wait=while_running)

    assert code == 0, out.getvalue()[-3000:]
    assert seen
    assert all(status == 200 for status in seen.values()), seen
    assert "Press Ctrl-C to stop." in out.getvalue()
