"""Search in every language a record has; titles and facet labels in the reader's language."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from catalogue.api import CatalogueNode, open_node
from catalogue.index import SearchQuery, accepted_languages
from catalogue.quality import MINIMUM_ELEMENTS
from catalogue.seed import seed_files
from tests.catalogue.catalogue_records import EU, dataset_turtle
from tests.catalogue.conftest import NodeFactory, start_node  # noqa: F401 (the fixture, used below)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[CatalogueNode]:
    opened = open_node(tmp_path / "node")
    try:
        yield opened
    finally:
        opened.close()


MULTILINGUAL = dataset_turtle("budget", title="Municipal budget", description="Income and spending.").replace(
    'dct:title "Municipal budget"@en ;',
    'dct:title "Municipal budget"@en, "Bilancio comunale"@it, "Gemeentebegroting"@nl ;\n'
    '    dct:description "Entrate e uscite del comune."@it ;',
)


def test_every_language_is_searchable_and_the_readers_language_is_shown(node: CatalogueNode) -> None:
    node.publisher.publish(MULTILINGUAL.encode(), "text/turtle", owner=None)
    for words, languages, shown, language in (
        ("bilancio", (), "Municipal budget", "en"),  # an Italian word finds it even with an English title
        ("gemeentebegroting", ("nl",), "Gemeentebegroting", "nl"),
        ("budget", ("it-IT", "en"), "Bilancio comunale", "it"),
        ("budget", ("fi", "de"), "Municipal budget", "en"),  # none of the reader's: the default
    ):
        result = node.index.search(SearchQuery(words, languages=languages))
        assert result.total == 1, words
        assert result.hits[0].title == shown
        assert result.hits[0].language == language
    italian = node.index.search(SearchQuery("", languages=("it",))).hits[0]
    assert italian.snippet.startswith("Entrate e uscite")


def test_accept_language_weights_and_lang_parameter_order_the_readers_languages() -> None:
    assert accepted_languages(None, "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5") == (
        "fr-ch",
        "fr",
        "en",
        "de",
    )
    assert accepted_languages("nl", "en;q=0.1, it") == ("nl", "it", "en")
    assert accepted_languages(None, "x" * 50 + ", <script>") == ()


def test_facets_are_labelled_with_the_preflabel_in_the_readers_language(
    request: pytest.FixtureRequest,
) -> None:
    start: NodeFactory = request.getfixturevalue("start_node")  # a real node on loopback
    with start() as running:
        assert running.publish(dataset_turtle("labels")).status_code == 201
        response = httpx.get(f"{running.url}/catalogue/search", params={"lang": "de"})
        assert response.status_code == 200
        facets = response.json()["facets"]
        licence = {entry["value"]: entry for entry in facets["license"]}[EU + "licence/CC_BY_4_0"]
        assert (
            licence["label"] == "Creative Commons Attribution 4.0 International"
        )  # English only in the table
        theme = {entry["value"]: entry for entry in facets["theme"]}[EU + "data-theme/ENER"]
        assert theme["label"] == "Energie"
        french = httpx.get(f"{running.url}/catalogue/search", headers={"Accept-Language": "fr"}).json()
        assert {e["value"]: e for e in french["facets"]["theme"]}[EU + "data-theme/ENER"][
            "label"
        ] == "Énergie"


def test_health_records_report_the_27_minimum_elements(node: CatalogueNode) -> None:
    assert len(MINIMUM_ELEMENTS) == 27
    assert [element.number for element in MINIMUM_ELEMENTS] == list(range(1, 28))
    health = [path for path in seed_files() if "registry" in path.name or "register" in path.name]
    assert health
    outcome = node.publisher.publish(health[0].read_bytes(), "text/turtle", owner=None)
    minimum = outcome.quality["ehds_minimum"]
    assert minimum["elements"] == 27
    missing = {item["name"] for item in minimum["missing"]}
    assert minimum["complete"] is (not missing)
    assert minimum["present"] + len(missing) + len(minimum["conditional_not_given"]) == 27
    facet = {e["code"]: e["count"] for e in node.index.search(SearchQuery()).facets["ehds_minimum"]}
    assert facet == {("complete" if minimum["complete"] else "incomplete"): 1}
    plain = node.publisher.publish(dataset_turtle("not-health").encode(), "text/turtle", owner=None)
    assert "ehds_minimum" not in plain.quality
