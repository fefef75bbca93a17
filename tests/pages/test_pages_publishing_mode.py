"""Publishing through the page follows the token's publishing mode, as the API does.

A publisher whose token the operator made lenient gets a record with violations stored (with
its conformance in its quality) whether it posts to the API or uploads on the page; a strict
token gets the violations back next to the file field. Plain HTTP against a running node.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.catalogue.catalogue_records import PUBLISHER, invalid_turtle
from tests.catalogue.conftest import running_node

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _upload(base: str, token: str, slug: str) -> httpx.Response:
    with httpx.Client(base_url=base, headers=BROWSER, timeout=60) as client:
        hidden = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/pages/login").text)
        assert hidden is not None
        login = client.post("/pages/login", data={"token": token, "login_csrf": hidden.group(1), "next": ""})
        assert login.status_code == 303
        form = re.search(r'name="csrf" value="([^"]+)"', client.get("/pages/catalogue/publish").text)
        assert form is not None
        return client.post(
            "/pages/catalogue/publish",
            data={"csrf": form.group(1)},
            files={"file": (f"{slug}.ttl", invalid_turtle(slug).encode(), "text/turtle")},
        )


def test_the_publish_page_uses_the_tokens_publishing_mode(tmp_path: Path) -> None:
    with running_node(tmp_path / "node") as node:  # the node publishes strictly by default
        lenient = node.node.tokens.create(PUBLISHER, strict=False).token
        stored = _upload(node.url, lenient, "lenient-upload")
        assert stored.status_code == 303, stored.text[:500]
        assert "/pages/catalogue/datasets/" in stored.headers["location"]
        refused = _upload(node.url, node.token, "strict-upload")
        assert refused.status_code == 422
        assert "title" in refused.text
