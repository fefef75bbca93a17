"""The purpose and place hierarchies usage policies rely on for isA / isPartOf."""

from __future__ import annotations

import pytest

from vocab.hierarchy import Hierarchy, places, purposes

PURPOSE = "https://w3id.org/sluis/purpose/"
PLACE = "https://w3id.org/sluis/place/"
COUNTRY = "http://publications.europa.eu/resource/authority/country/"

EU_MEMBER_STATES = [
    *("AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "IRL"),
    *("ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE"),
]
DUTCH_PROVINCES = ["DR", "FL", "FR", "GE", "GR", "LI", "NB", "NH", "OV", "UT", "ZE", "ZH"]
IN_THE_NETHERLANDS = {COUNTRY + "NLD", PLACE + "EU", PLACE + "EEA"}


def test_north_holland_lies_in_the_netherlands_and_so_in_the_eu_and_eea() -> None:
    hierarchy = places()
    assert hierarchy.is_a(PLACE + "NL-NH", COUNTRY + "NLD")
    assert hierarchy.is_a(COUNTRY + "NLD", PLACE + "EU")
    assert hierarchy.is_a(PLACE + "NL-NH", PLACE + "EU")
    assert hierarchy.is_a(PLACE + "NL-NH", PLACE + "EEA")
    assert not hierarchy.is_a(COUNTRY + "NLD", PLACE + "NL-NH")


@pytest.mark.parametrize("code", ["NOR", "ISL", "LIE"])
def test_efta_members_of_the_eea_are_not_in_the_eu(code: str) -> None:
    hierarchy = places()
    assert hierarchy.is_a(COUNTRY + code, PLACE + "EEA")
    assert not hierarchy.is_a(COUNTRY + code, PLACE + "EU")


def test_every_member_state_is_in_the_eu_and_every_province_in_the_netherlands() -> None:
    hierarchy = places()
    for code in EU_MEMBER_STATES:
        assert hierarchy.is_a(COUNTRY + code, PLACE + "EU"), code
    for code in DUTCH_PROVINCES:
        assert hierarchy.ancestors(PLACE + f"NL-{code}") >= IN_THE_NETHERLANDS, code


@pytest.mark.parametrize("code", ["CHE", "GBR", "USA"])
def test_known_places_outside_the_eea_are_known_but_not_inside(code: str) -> None:
    hierarchy = places()
    assert hierarchy.knows(COUNTRY + code)
    assert not hierarchy.is_a(COUNTRY + code, PLACE + "EEA")


def test_ai_training_is_ai_development_is_secondary_use() -> None:
    hierarchy = purposes()
    assert hierarchy.is_a(PURPOSE + "ai-training", PURPOSE + "ai-development")
    assert hierarchy.is_a(PURPOSE + "ai-development", PURPOSE + "secondary-use")
    assert hierarchy.is_a(PURPOSE + "ai-training", PURPOSE + "secondary-use")
    assert not hierarchy.is_a(PURPOSE + "ai-development", PURPOSE + "ai-training")


@pytest.mark.parametrize(
    "slug",
    [
        "public-interest",
        "policy-making",
        "official-statistics",
        "education",
        "scientific-research",
        "ai-development",
        "ai-training",
        "ai-testing",
        "ai-evaluation",
        "personalised-healthcare",
    ],
)
def test_article_53_purposes_are_secondary_use(slug: str) -> None:
    assert purposes().is_a(PURPOSE + slug, PURPOSE + "secondary-use")


@pytest.mark.parametrize("slug", ["commercial-use", "marketing", "prohibited-use"])
def test_commercial_and_prohibited_uses_are_known_but_never_secondary_use(slug: str) -> None:
    hierarchy = purposes()
    assert hierarchy.knows(PURPOSE + slug)
    assert not hierarchy.is_a(PURPOSE + slug, PURPOSE + "secondary-use")


def test_marketing_is_a_commercial_and_a_prohibited_use() -> None:
    hierarchy = purposes()
    assert hierarchy.ancestors(PURPOSE + "marketing") == frozenset(
        {PURPOSE + "marketing", PURPOSE + "commercial-use", PURPOSE + "prohibited-use"}
    )


def test_unknown_terms_are_not_known_and_relate_to_nothing_not_even_themselves() -> None:
    unknown = PURPOSE + "astrology"
    hierarchy = purposes()
    assert not hierarchy.knows(unknown)
    assert not hierarchy.is_a(unknown, unknown)
    assert not hierarchy.is_a(unknown, PURPOSE + "secondary-use")
    assert not hierarchy.is_a(PURPOSE + "scientific-research", unknown)
    assert hierarchy.ancestors(unknown) == frozenset()
    assert hierarchy.label(unknown) is None
    assert not places().knows(PLACE + "Atlantis")


def test_known_terms_are_reflexively_related_and_labelled_in_english() -> None:
    assert purposes().is_a(PURPOSE + "education", PURPOSE + "education")
    research = purposes().label(PURPOSE + "scientific-research")
    assert research == "Scientific research in the health or care sectors"
    assert places().label(PLACE + "NL-FR") == "Friesland"
    assert places().label(COUNTRY + "NLD") == "Netherlands"


def test_hierarchies_are_built_once() -> None:
    assert purposes() is purposes()
    assert places() is places()


def test_narrower_and_broader_transitive_links_are_followed() -> None:
    hierarchy = Hierarchy.from_turtle(
        """
        @prefix skos: <http://www.w3.org/2004/02/skos/core#> .
        <urn:a> a skos:Concept ; skos:narrower <urn:b> .
        <urn:b> a skos:Concept .
        <urn:c> a skos:Concept ; skos:broaderTransitive <urn:b> .
        """
    )
    assert hierarchy.is_a("urn:c", "urn:a")
    assert hierarchy.ancestors("urn:c") == frozenset({"urn:a", "urn:b", "urn:c"})
    assert len(hierarchy) == 3


def test_a_cycle_in_the_hierarchy_does_not_loop() -> None:
    hierarchy = Hierarchy({"urn:x": ["urn:y"], "urn:y": ["urn:x"]})
    assert hierarchy.is_a("urn:x", "urn:y")
    assert hierarchy.is_a("urn:y", "urn:x")
