"""Content negotiation (page or data) and the register's opt-in table on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.database import Database
from connector.pages.negotiate import prefers_html
from connector.pages.register_store import RegisterChoices

CHROMIUM_NAVIGATION = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        (CHROMIUM_NAVIGATION, True),
        ("text/html", True),
        ("application/xhtml+xml", True),
        (None, False),  # curl, scripts
        ("*/*", False),
        ("application/json", False),
        ("text/turtle", False),
        ("application/ld+json, text/html;q=0.5", False),
        ("text/html;q=0.5, application/json", False),
        ("text/html, application/json", True),  # a tie goes to the first named
        ("application/json, text/html", False),
        ("text/html;q=0", False),
        ("text/html;q=abc", False),
        ("text/*", False),
        ("," * 5000 + "text/html", False),  # past the length read, nothing is asked for
    ],
)
def test_a_page_only_for_a_client_that_ranks_html_first(accept: str | None, page: bool) -> None:
    assert prefers_html(accept) is page


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'connector.db'}")
    url: str = request.getfixturevalue("postgres_url")
    return Database(url)


def test_register_lists_only_the_offers_opted_in_and_follows_changes(database: Database) -> None:
    choices = RegisterChoices(database)
    assert choices.listed() == frozenset()
    choices.choose("research-offer", True)
    choices.choose("commercial-offer", False)
    assert choices.listed() == frozenset({"research-offer"})
    choices.choose("research-offer", False)
    choices.choose("commercial-offer", True)
    again = RegisterChoices(database)  # a second handle (another replica) sees the same choices
    assert again.listed() == frozenset({"commercial-offer"})
    database.close()
