"""Failed logins from one address are limited: the eleventh try in five minutes waits, even with
the right token; a success clears the count. Real HTTP against a page kit on loopback."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from connector.pages.sessions import FAILED_LOGIN_WINDOW_SECONDS, MAX_FAILED_LOGINS, LoginThrottle
from connector.pages.web import PageKit
from sluis.servers import serve_in_thread

GOOD = "a-long-random-operator-token-for-this-test"


def _try(client: httpx.Client, token: str) -> httpx.Response:
    form = client.get("/pages/login")
    hidden = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert hidden is not None
    return client.post("/pages/login", data={"token": token, "login_csrf": hidden.group(1)})


def test_a_guesser_is_made_to_wait_and_the_right_token_then_waits_too() -> None:
    app = FastAPI()
    kit = PageKit(
        node_name="test",
        check_token=lambda token: "operator" if token == GOOD else None,
        token_name="operator token",
        kind="connector",
        public_url="http://127.0.0.1:1",
    )
    app.include_router(kit.router())
    with serve_in_thread(app) as base, httpx.Client(base_url=base) as client:
        for attempt in range(MAX_FAILED_LOGINS):
            assert _try(client, f"guess-{attempt}").status_code == 401
        blocked = _try(client, GOOD)
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["retry-after"]) <= FAILED_LOGIN_WINDOW_SECONDS + 1
        assert kit.cookies.session not in blocked.cookies
        assert kit.cookies.session.startswith("sluis_connector_")


def test_the_window_slides_and_a_success_clears_the_count() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(MAX_FAILED_LOGINS):
        throttle.failed("10.0.0.9")
    assert throttle.wait_seconds("10.0.0.9") > 0
    assert throttle.wait_seconds("10.0.0.8") == 0  # another address is not affected
    now[0] += FAILED_LOGIN_WINDOW_SECONDS
    assert throttle.wait_seconds("10.0.0.9") == 0
    throttle.failed("10.0.0.9")
    throttle.succeeded("10.0.0.9")
    for _ in range(MAX_FAILED_LOGINS - 1):
        throttle.failed("10.0.0.9")
    assert throttle.wait_seconds("10.0.0.9") == 0
