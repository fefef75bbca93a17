"""The catalogue's pages under attack: sessions outliving their token, forged forms, off-site
redirects after login, and markup in every field a record can put on a page.

A publisher token exchanged for a page session was never looked at again: revoking the token
(the operator's answer to a leaked one) left every session it had opened publishing, replacing
and retracting records for up to eight hours. A session now ends with its token.
Plain HTTP against a real node on loopback; no browser needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.catalogue.catalogue_records import PUBLISHER, dataset_turtle
from tests.catalogue.conftest import RunningNode, running_node

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("rt2-pages")) as running:
        yield running


@contextmanager
def _logged_in(node: RunningNode, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, headers=BROWSER, timeout=30) as client:
        form = client.get("/pages/login")
        hidden = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert hidden is not None
        answer = client.post("/pages/login", data={"token": token, "login_csrf": hidden.group(1), "next": ""})
        assert answer.status_code == 303, answer.text
        yield client


def _csrf(client: httpx.Client) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/pages/catalogue/publish").text)
    assert found is not None
    return found.group(1)


def _form(title: str, csrf: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "title": title,
        "description": "Loads.",
        "language": "en",
        "keyword": "grid",
        "publisher_name": "Example TSO",
        "contact_email": "data@example.eu",
        "theme": "http://publications.europa.eu/resource/authority/data-theme/ENER",
        "access_rights": "http://publications.europa.eu/resource/authority/access-right/PUBLIC",
        "access_url": "https://files.example.eu/load.csv",
        "license": "http://publications.europa.eu/resource/authority/licence/CC_BY_4_0",
        "format": "http://publications.europa.eu/resource/authority/file-type/CSV",
    }


def test_revoking_a_token_ends_the_page_sessions_it_opened(node: RunningNode) -> None:
    issued = node.node.tokens.create(PUBLISHER)
    with _logged_in(node, issued.token) as client:
        assert client.get("/pages/catalogue/mine").status_code == 200
        csrf = _csrf(client)
        assert node.node.tokens.revoke(issued.token_id)
        total = node.node.index.count()
        assert client.get("/pages/catalogue/mine").status_code == 303  # back to the login
        sent = client.post("/pages/catalogue/publish", data=_form("After revocation", csrf))
        assert sent.status_code == 303
        assert sent.headers["location"].startswith("/pages/login")
        assert node.node.index.count() == total  # nothing was published
        assert client.get("/pages/catalogue/mine").status_code == 303  # and the session stays gone


def test_a_live_token_keeps_its_session(node: RunningNode) -> None:
    with _logged_in(node, node.token) as client:
        for _ in range(2):
            assert client.get("/pages/catalogue/mine").status_code == 200


def test_a_form_without_its_csrf_token_changes_nothing(node: RunningNode) -> None:
    with _logged_in(node, node.token) as client:
        total = node.node.index.count()
        for csrf in ("", "x" * 43):
            sent = client.post("/pages/catalogue/publish", data=_form("Forged", csrf))
            assert sent.status_code == 403
        assert node.node.index.count() == total


OFF_SITE = (
    "//evil.example/",
    "https://evil.example/",
    "/\\evil.example",
    "javascript:alert(1)",
    "/%2F%2Fevil",
)


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_never_sends_the_browser_off_site(node: RunningNode, target: str) -> None:
    with httpx.Client(base_url=node.url, headers=BROWSER, timeout=30) as client:
        hidden = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/pages/login").text)
        assert hidden is not None
        answer = client.post(
            "/pages/login", data={"token": node.token, "login_csrf": hidden.group(1), "next": target}
        )
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/"), location
    assert not location.startswith("//"), location
    assert "\\" not in location, location
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()


def test_markup_in_every_field_of_a_record_is_text_on_every_page(node: RunningNode) -> None:
    text = HOSTILE.replace('"', '\\"')  # as a Turtle string
    body = dataset_turtle(
        "markup", title=text, description=text, keywords=(text, "grid"), publisher_name=text
    ).replace("https://files.example.eu/markup.data", "javascript:alert(document.cookie)")
    published = node.publish(body.replace('"Download"@en', f'"{text}"@en'))
    assert published.status_code == 201, published.text
    record_id = published.json()["id"]
    with _logged_in(node, node.token) as client:
        pages = [
            client.get(f"/pages/catalogue/datasets/{record_id}"),
            client.get("/pages/catalogue/search", params={"q": "grid"}),
            client.get("/pages/catalogue/mine"),
        ]
    for page in pages:
        assert page.status_code == 200, page.url
        assert "<script>alert" not in page.text, page.url
        assert "onerror=alert" not in page.text.replace("onerror=alert(1)&gt;", ""), page.url
        assert 'href="javascript:' not in page.text.lower(), page.url
        assert "content-security-policy" in page.headers, page.url
