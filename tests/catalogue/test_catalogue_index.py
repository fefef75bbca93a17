"""The search index on its own: facet counts, filters by code or IRI, estimates past the sample limit.

Every test runs on both implementations: SQLite FTS5 (embedded) and PostgreSQL (shared by replicas).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogue.index import IndexRow, SearchError, SearchIndex, SearchQuery
from catalogue.search_backend import SearchBackend

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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchBackend]:
    """An empty index of each implementation (facet counts sampled past 10 hits)."""
    built: SearchBackend
    if request.param == "sqlite":
        built = SearchIndex(tmp_path / "index.sqlite", facet_sample_limit=10)
    else:
        from catalogue.index_postgres import PostgresIndex

        built = PostgresIndex(request.getfixturevalue("postgres_url"), facet_sample_limit=10)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def index(empty_index: SearchBackend) -> SearchBackend:
    built = empty_index
    with built.transaction() as transaction:
        for n in range(40):
            transaction.upsert(_row(n, "ENER" if n % 4 else "HEAL", "CSV" if n % 2 else "JSON"))
    return built


def test_facet_counts_are_exact_under_the_sample_limit_and_estimated_past_it(index: SearchBackend) -> None:
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


def test_filters_take_codes_or_iris_and_unknown_values_match_nothing(index: SearchBackend) -> None:
    by_code = index.search(SearchQuery("", {"format": ["JSON"], "theme": ["HEAL"]}))
    by_iri = index.search(
        SearchQuery("", {"format": [f"{EU}file-type/JSON"], "theme": [f"{EU}data-theme/HEAL"]})
    )
    assert by_code.total == by_iri.total == 10
    assert [hit.id for hit in by_code.hits] == [hit.id for hit in by_iri.hits]
    assert index.search(SearchQuery("", {"format": ["PDF"]})).total == 0
    either = index.search(SearchQuery("", {"format": ["JSON", "CSV"]}))
    assert either.total == 40


def test_user_words_cannot_inject_fts_syntax(index: SearchBackend) -> None:
    assert index.search(SearchQuery('energy" OR title:*')).total == 0
    with pytest.raises(SearchError) as refused:
        index.search(SearchQuery("!!! ???"))
    assert refused.value.field == "q"


def test_tombstone_removes_record_from_search_and_counts(index: SearchBackend) -> None:
    with index.transaction() as transaction:
        transaction.tombstone("r0", record_modified="2025-03-01T00:00:00.000000Z", version=2)
    assert index.search(SearchQuery()).total == 39
    counts = {entry["code"]: entry["count"] for entry in index.search(SearchQuery()).facets["theme"]}
    assert counts == {"ENER": 30, "HEAL": 9}
    total, changes = index.changes(modified_since="2025-03-01T00:00:00.000000Z", offset=0, limit=10)
    assert total == 1
    assert changes[0].deleted


def test_a_replaced_record_is_found_by_its_new_words_only_and_counted_once(index: SearchBackend) -> None:
    with index.transaction() as transaction:
        transaction.upsert(
            IndexRow(
                **{**_row(1, "HEAL", "CSV").__dict__, "title": "Zürich tram punctuality", "version": 2}
            )
        )
    assert [hit.id for hit in index.search(SearchQuery("zurich tram")).hits] == ["r1"]
    assert index.search(SearchQuery("balance 1")).total == 0
    counts = {entry["code"]: entry["count"] for entry in index.search(SearchQuery()).facets["theme"]}
    assert counts == {"ENER": 29, "HEAL": 11}
    assert index.count() == 40
    assert index.get("r1") is not None
    assert index.get("r1").version == 2  # type: ignore[union-attr]


def test_a_failed_transaction_leaves_nothing(index: SearchBackend) -> None:
    def write_then_fail() -> None:
        with index.transaction() as transaction:
            transaction.upsert(IndexRow(**{**_row(99, "TRAN", "PDF").__dict__, "title": "Ferry timetable"}))
            raise RuntimeError("the store refused the write")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert index.search(SearchQuery("ferry")).total == 0
    assert index.search(SearchQuery("", {"theme": ["TRAN"]})).total == 0
    assert index.get("r99") is None


def test_pages_sorts_and_the_change_listing(index: SearchBackend) -> None:
    by_title = index.search(SearchQuery("", sort="title", page=2, page_size=5))
    assert [hit.title for hit in by_title.hits] == sorted(
        (f"Energy balance {n}" for n in range(40)), key=str.casefold
    )[5:10]
    newest = index.search(SearchQuery("", sort="modified", page_size=3)).hits
    assert [hit.modified for hit in newest] == sorted((hit.modified for hit in newest), reverse=True)
    with pytest.raises(SearchError) as past:
        index.search(SearchQuery("", page=9, page_size=5))
    assert past.value.field == "page"
    with pytest.raises(SearchError) as sort:
        index.search(SearchQuery("", sort="random"))
    assert sort.value.field == "sort"
    with pytest.raises(SearchError) as facet:
        index.search(SearchQuery("", {"colour": ["red"]}))
    assert facet.value.field == "colour"
    total, page = index.changes(modified_since=None, offset=38, limit=10)
    assert total == 40
    assert len(page) == 2
    hospital = index.search(SearchQuery("hospital admissions"))
    assert hospital.total == 20
    assert "hospital" in hospital.hits[0].snippet.lower()
