"""The pages under attack: no login, forged sessions, missing CSRF tokens, open redirects,
markup in records, server-side requests to places the connector must not reach, malformed input.

Every refusal is a 4xx page (or problem for a client), never a 500 and never a change of state.
Plain HTTP against the running data space; no browser needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import pytest

from connector.pages.sessions import cookie_names
from tests.pages.conftest import Space

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
OPERATOR_PAGES = (
    "/pages/agreements", "/pages/transfers", "/pages/negotiations", "/pages/offers", "/pages/audit",
    "/pages/audit/export", "/pages/policy-check", "/pages/lineage", "/pages/request",
    "/management/agreements",  # the API URL gives a browser the page, behind the same login
)  # fmt: skip


def _session(base: str, kind: str = "connector") -> str:
    """The session cookie's name of the server at ``base`` (each server names its own)."""
    return cookie_names(kind, base).session


@contextmanager
def login(base: str, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, headers=BROWSER, timeout=30) as client:
        form = client.get("/pages/login")
        hidden = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert hidden is not None
        answer = client.post("/pages/login", data={"token": token, "login_csrf": hidden.group(1), "next": ""})
        assert answer.status_code == 303
        yield client


def csrf_of(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("path", OPERATOR_PAGES)
def test_operator_pages_need_a_login(space: Space, path: str) -> None:
    page = httpx.get(space.urls.provider + path, headers=BROWSER)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/pages/login?next=")
    client = httpx.get(space.urls.provider + path, headers={"Accept": "application/json"})
    assert client.status_code == 401
    assert client.headers["content-type"].startswith("application/problem+json")
    forged_cookie = {_session(space.urls.provider): "x" * 43}
    forged = httpx.get(space.urls.provider + path, headers=BROWSER, cookies=forged_cookie)
    assert forged.status_code == 303


def test_the_publisher_pages_need_a_publisher_token(space: Space) -> None:
    for path in ("/pages/catalogue/publish", "/pages/catalogue/mine"):
        assert httpx.get(space.urls.catalogue + path, headers=BROWSER).status_code == 303
    wrong = login_attempt(space.urls.catalogue, space.provider_token)  # an operator token is no publisher's
    assert wrong.status_code == 401
    assert _session(space.urls.catalogue, "catalogue") not in wrong.cookies


def login_attempt(base: str, token: str, next_page: str = "") -> httpx.Response:
    with httpx.Client(base_url=base, headers=BROWSER) as client:
        hidden = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/pages/login").text)
        assert hidden is not None
        return client.post(
            "/pages/login", data={"token": token, "login_csrf": hidden.group(1), "next": next_page}
        )


def test_login_sets_a_strict_http_only_cookie_and_never_redirects_off_site(space: Space) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        answer = login_attempt(space.urls.provider, space.provider_token, target)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/pages/", target
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(_session(space.urls.provider) + "=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie


def test_login_without_the_form_token_is_refused(space: Space) -> None:
    answer = httpx.post(
        f"{space.urls.provider}/pages/login", data={"token": space.provider_token}, headers=BROWSER
    )
    assert answer.status_code == 400
    assert _session(space.urls.provider) not in answer.cookies


def test_forms_without_the_session_csrf_token_change_nothing(space: Space) -> None:
    with login(space.urls.provider, space.provider_token) as client:
        before = client.get("/pages/offers", headers={"Accept": "application/json"}).json()
        for path, data in (
            ("/pages/agreements/urn:uuid:anything/terminate", {"reason": "x"}),
            ("/pages/offers/household-electricity-offer/register", {"listed": "yes"}),
            (
                "/pages/offers",
                {"id": "sneaky", "asset": "x", "template": "eu-only-processing", "action": "save"},
            ),
            ("/pages/request", {"dataset": "x", "dsp": "http://127.0.0.1:1/dsp"}),
            ("/pages/policy-check", {"policy": "{}"}),
        ):
            for token in (None, "wrong"):
                sent = {**data, **({"csrf": token} if token else {})}
                answer = client.post(path, data=sent)
                assert answer.status_code == 403, path
        assert client.get("/pages/offers", headers={"Accept": "application/json"}).json() == before


def test_markup_in_a_record_is_shown_as_text(space: Space) -> None:
    title = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    with login(space.urls.catalogue, space.publisher_token) as client:
        token = csrf_of(client, "/pages/catalogue/publish")
        answer = client.post(
            "/pages/catalogue/publish",
            files={
                "csrf": (None, token),
                "title": (None, title),
                "description": (None, "A description."),
                "publisher_name": (None, "P"),
                "access_rights": (
                    None,
                    "http://publications.europa.eu/resource/authority/access-right/PUBLIC",
                ),
            },
        )
        assert answer.status_code == 303, answer.text[:500]
        page = client.get(answer.headers["location"])
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    found = httpx.get(f"{space.urls.catalogue}/catalogue/search", params={"q": "alert"}, headers=BROWSER)
    assert "<img src=x" not in found.text


def test_request_access_refuses_addresses_the_connector_must_not_contact(space: Space) -> None:
    with login(space.urls.consumer, space.consumer_token) as client:
        for dsp in (
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1/dsp",
            "http://2130706433/dsp",
            "file:///etc/passwd",
            "http://user@host.example/dsp",
        ):
            page = client.get("/pages/request", params={"dataset": "urn:x", "dsp": dsp})
            assert page.status_code == 400, dsp
            assert 'id="dsp-error"' in page.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/pages/catalogue/search?page=abc", 400),
        ("/pages/catalogue/search?page=99999999999999999999", 400),
        ("/pages/catalogue/search?q=%22%2A%22", 400),
        ("/pages/catalogue/search?sort=price", 400),
        ("/pages/catalogue/search?theme=" + "A" * 5000, 200),  # cut to the limit: matches nothing
        ("/pages/catalogue/datasets/" + "a" * 300, 404),
        ("/pages/catalogue/datasets/..%2F..%2Fetc", 404),
        ("/pages/catalogue/request-access?connector=javascript:alert(1)", 400),
        ("/pages/static/..%2F__init__.py", 404),
    ],
)
def test_malformed_catalogue_requests_are_refused_without_a_server_error(
    space: Space, path: str, status: int
) -> None:
    answer = httpx.get(space.urls.catalogue + path, headers=BROWSER)
    assert answer.status_code == status, path


def test_malformed_search_input_is_answered_next_to_its_field(space: Space) -> None:
    answer = httpx.get(
        f"{space.urls.catalogue}/pages/catalogue/search", params={"page": "abc"}, headers=BROWSER
    )
    assert answer.status_code == 400
    assert 'id="page-error"' in answer.text


def test_policy_check_survives_hostile_documents(space: Space) -> None:
    with login(space.urls.provider, space.provider_token) as client:
        token = csrf_of(client, "/pages/policy-check")
        for policy, request in (
            ("[" * 100_000 + "]" * 100_000, ""),
            ("{" + '"a":' * 10 + "}", ""),
            ("x" * 300_000, ""),
            ('{"@id": "urn:p", "@type": "Offer", "permission": [{"action": "use"}]}', "[" * 50_000),
            ("@prefix : <urn:> . :a :b", ""),
        ):
            answer = client.post(
                "/pages/policy-check", data={"csrf": token, "policy": policy, "request": request}
            )
            assert answer.status_code == 400, policy[:40]
            assert "field-error" in answer.text


def test_unknown_records_are_404_pages(space: Space) -> None:
    with login(space.urls.provider, space.provider_token) as client:
        for path in ("/pages/agreements/nope", "/pages/negotiations/%00", "/pages/agreements/" + "z" * 4000):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "text/html" in answer.headers["content-type"]


def test_oversized_form_bodies_are_refused_before_they_are_read(space: Space) -> None:
    big = b"token=" + b"a" * (3 * 1024 * 1024)
    declared = httpx.post(
        f"{space.urls.provider}/pages/login",
        content=big,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b"token="
        for _ in range(40):
            yield b"a" * 100_000

    streamed = httpx.post(
        f"{space.urls.provider}/pages/login",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413


def test_a_catalogue_and_a_connector_on_one_host_keep_their_own_sessions(space: Space) -> None:
    """Browsers keep cookies per host, not per port: one cookie name for both servers meant
    logging into one logged out of the other and sent its session id to the other server."""
    provider, catalogue = space.urls.provider, space.urls.catalogue
    assert urlsplit(provider).hostname == urlsplit(catalogue).hostname
    with httpx.Client(headers=BROWSER, timeout=30) as browser:  # one cookie jar, as a browser has
        for base, token in ((provider, space.provider_token), (catalogue, space.publisher_token)):
            hidden = re.search(r'name="login_csrf" value="([^"]+)"', browser.get(base + "/pages/login").text)
            assert hidden is not None
            answer = browser.post(
                base + "/pages/login", data={"token": token, "login_csrf": hidden.group(1), "next": ""}
            )
            assert answer.status_code == 303, base
            cookie = answer.headers["set-cookie"]
            assert "HttpOnly" in cookie, cookie
            assert "samesite=strict" in cookie.lower(), cookie
        names = {cookie.name for cookie in browser.cookies.jar}
        assert {_session(provider), _session(catalogue, "catalogue")} <= names
        # both logged in at once: neither login replaced the other's session
        assert browser.get(provider + "/pages/agreements").status_code == 200
        assert browser.get(catalogue + "/pages/catalogue/publish").status_code == 200
        # the catalogue's session id opens nothing on the connector, under either name
        stolen = browser.cookies.get(_session(catalogue, "catalogue"))
        assert stolen
        for name in (_session(provider), _session(catalogue, "catalogue")):
            forged = httpx.get(provider + "/pages/agreements", headers=BROWSER, cookies={name: stolen})
            assert forged.status_code == 303, name
