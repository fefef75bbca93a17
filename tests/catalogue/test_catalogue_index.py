"""The search index on its own: facet counts, filters by code or IRI, estimates past the sample limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogue.index import IndexRow, SearchError, SearchIndex, SearchQuery

EU = "http://publications.europa.eu/resource/authority/"


def _row(n: int, theme: str, file_type: str) -> IndexRow:
    return IndexRow(
        record_id=f"r{n}",
        dataset=f"https://data.example.eu/dataset/{n}",
        kind="dataset",
        title=f"Energy balance {n}",
        description="Yearly energy balance by fuel." if n % 2 else "Weekly hospital admissions.",
        keywords=("energy",),
        publisher="https://data.example.eu/org/1",
        publisher_name="Statistics office",
        modified=f"2025-01-{1 + n % 28:02d}T00:00:00+00:00",
        record_modified="2025-02-01T00:00:00.000000Z",
        version=1,
        facets={"theme": (f"{EU}data-theme/{theme}",), "format": (f"{EU}file-type/{file_type}",)},
    )


@pytest.fixture
def index(tmp_path: Path) -> SearchIndex:
    built = SearchIndex(tmp_path / "index.sqlite", facet_sample_limit=10)
    with built.transaction() as transaction:
        for n in range(40):
            transaction.upsert(_row(n, "ENER" if n % 4 else "HEAL", "CSV" if n % 2 else "JSON"))
    return built


def test_facet_counts_are_exact_under_the_sample_limit_and_estimated_past_it(index: SearchIndex) -> None:
    narrow = index.search(SearchQuery("hospital", {"theme": ["HEAL"]}))
    assert narrow.total == 10
    assert narrow.facets_exact
    assert narrow.facets["theme"] == [{"value": f"{EU}data-theme/HEAL", "code": "HEAL", "count": 10}]

    broad = index.search(SearchQuery("energy"))
    assert broad.total == 40
    assert not broad.facets_exact
    assert sum(entry["count"] for entry in broad.facets["theme"]) == 40  # 10 counted, scaled by 4

    everything = index.search(SearchQuery())
    assert everything.facets_exact
    assert {entry["code"]: entry["count"] for entry in everything.facets["theme"]} == {"ENER": 30, "HEAL": 10}


def test_filters_take_codes_or_iris_and_unknown_values_match_nothing(index: SearchIndex) -> None:
    by_code = index.search(SearchQuery("", {"format": ["JSON"], "theme": ["HEAL"]}))
    by_iri = index.search(
        SearchQuery("", {"format": [f"{EU}file-type/JSON"], "theme": [f"{EU}data-theme/HEAL"]})
    )
    assert by_code.total == by_iri.total == 10
    assert [hit.id for hit in by_code.hits] == [hit.id for hit in by_iri.hits]
    assert index.search(SearchQuery("", {"format": ["PDF"]})).total == 0
    either = index.search(SearchQuery("", {"format": ["JSON", "CSV"]}))
    assert either.total == 40


def test_user_words_cannot_inject_fts_syntax(index: SearchIndex) -> None:
    assert index.search(SearchQuery('energy" OR title:*')).total == 0
    with pytest.raises(SearchError) as refused:
        index.search(SearchQuery("!!! ???"))
    assert refused.value.field == "q"


def test_tombstone_removes_record_from_search_and_counts(index: SearchIndex) -> None:
    with index.transaction() as transaction:
        transaction.tombstone("r0", record_modified="2025-03-01T00:00:00.000000Z", version=2)
    assert index.search(SearchQuery()).total == 39
    counts = {entry["code"]: entry["count"] for entry in index.search(SearchQuery()).facets["theme"]}
    assert counts == {"ENER": 30, "HEAL": 9}
    total, changes = index.changes(modified_since="2025-03-01T00:00:00.000000Z", offset=0, limit=10)
    assert total == 1
    assert changes[0].deleted
