"""Counts kept with the rows, and counting and ranking bounded past their limits, on both indexes.

Each answer is checked against a brute-force count over the rows the test wrote (the limits are
made small, so a few dozen records cross them): exact where the index says exact, "more than"
where it says so, never a wrong number presented as exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogue.index import IndexRow, SearchError, SearchIndex, SearchQuery
from catalogue.search_backend import SearchBackend

EU = "http://publications.europa.eu/resource/authority/"
THEMES = ("ENER", "HEAL", "TRAN")
FORMATS = ("CSV", "JSON", "PDF")
COUNT_LIMIT = 12
RANK_CANDIDATES = 5
SAMPLE = 8


def _row(n: int) -> IndexRow:
    themes = {THEMES[n % 3], THEMES[(n * 7) % 3]}
    formats = {FORMATS[n % 3]} | ({"PDF"} if n % 5 == 0 else set())
    words = ["tram", "bus"][n % 2]
    return IndexRow(
        record_id=f"r{n:03d}",
        dataset=f"https://data.example.eu/dataset/{n}",
        kind="dataset",
        title=f"Punctuality {n}\nPünktlichkeit {n}",
        description=f"{words} punctuality of line {n}" + (" with delays" if n % 4 == 0 else ""),
        keywords=("transport",) if n % 3 else ("mobility", "delays"),
        publisher="https://data.example.eu/org/1",
        publisher_name="Transport office",
        modified=f"2025-01-{1 + n % 28:02d}T00:00:00+00:00",
        record_modified="2025-02-01T00:00:00.000000Z",
        version=1,
        facets={
            "theme": tuple(sorted(f"{EU}data-theme/{theme}" for theme in themes)),
            "format": tuple(sorted(f"{EU}file-type/{file_type}" for file_type in formats)),
        },
        texts={"en": (f"Punctuality {n}", "punctuality"), "de": (f"Pünktlichkeit {n}", "Pünktlichkeit")},
    )


ROWS = [_row(n) for n in range(40)]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchBackend]:
    """Each implementation with small limits, holding ROWS, one replaced and one tombstoned."""
    built: SearchBackend
    limits = {"count_limit": COUNT_LIMIT, "rank_candidates": RANK_CANDIDATES, "facet_sample_limit": SAMPLE}
    if request.param == "sqlite":
        built = SearchIndex(tmp_path / "index.sqlite", **limits)
    else:
        from catalogue.index_postgres import PostgresIndex

        built = PostgresIndex(request.getfixturevalue("postgres_url"), **limits)
    try:
        with built.transaction() as transaction:
            for row in ROWS:
                transaction.upsert(row)
        with built.transaction() as transaction:
            transaction.upsert(ROWS[1])  # written again: counted once
            transaction.tombstone("r002", record_modified="2025-03-01T00:00:00.000000Z", version=2)
        yield built
    finally:
        built.close()


LIVE = [row for row in ROWS if row.record_id != "r002"]


def _holds(row: IndexRow, facet: str, code: str) -> bool:
    return any(value.rsplit("/", 1)[1] == code for value in row.facets.get(facet, ()))


def _brute(words: tuple[str, ...] = (), **filters: str) -> list[IndexRow]:
    def text(row: IndexRow) -> str:
        return f"{row.title} {row.description} {' '.join(row.keywords)}".lower()

    return [
        row
        for row in LIVE
        if all(word in text(row).split() for word in words)
        and all(_holds(row, facet, code) for facet, code in filters.items())
    ]


def _newest_first(rows: list[IndexRow]) -> list[IndexRow]:
    """The ``modified`` sort: newest first, then by id."""
    return sorted(rows, key=lambda row: (row.modified, [-ord(c) for c in row.record_id]), reverse=True)


def _counts(rows: list[IndexRow], facet: str) -> dict[str, int]:
    return dict(Counter(value.rsplit("/", 1)[1] for row in rows for value in row.facets.get(facet, ())))


def test_the_landing_page_counts_are_the_maintained_counts(index: SearchBackend) -> None:
    landing = index.search(SearchQuery())
    assert (landing.total, landing.total_exact, landing.facets_exact) == (len(LIVE), True, True)
    assert index.count() == len(LIVE)
    for facet in ("theme", "format"):
        assert {entry["code"]: entry["count"] for entry in landing.facets[facet]} == _counts(LIVE, facet)


def test_under_the_limits_totals_and_facet_counts_are_exact(index: SearchBackend) -> None:
    query = SearchQuery("delays", {"theme": ["HEAL"]})
    expected = _brute(("delays",), theme="HEAL")
    assert 0 < len(expected) <= SAMPLE
    result = index.search(query)
    assert (result.total, result.total_exact, result.facets_exact) == (len(expected), True, True)
    assert sorted(hit.id for hit in result.hits) == sorted(row.record_id for row in expected)
    assert {entry["code"]: entry["count"] for entry in result.facets["format"]} == _counts(expected, "format")


def test_one_facet_value_is_counted_exactly_from_its_counter(index: SearchBackend) -> None:
    expected = _brute(format="PDF")
    assert len(expected) > COUNT_LIMIT
    result = index.search(SearchQuery("", {"format": ["PDF"]}, sort="modified"))
    assert (result.total, result.total_exact) == (len(expected), True)
    assert [hit.id for hit in result.hits] == [row.record_id for row in _newest_first(expected)][:20]


def test_past_the_count_limit_the_total_says_more_than(index: SearchBackend) -> None:
    expected = _brute(("punctuality",), theme="ENER")
    assert len(expected) > COUNT_LIMIT
    result = index.search(SearchQuery("punctuality", {"theme": ["ENER"]}, page_size=5))
    assert (result.total, result.total_exact, result.facets_exact) == (COUNT_LIMIT, False, False)
    assert {hit.id for hit in result.hits} <= {row.record_id for row in expected}
    newest = index.search(SearchQuery("punctuality", {"theme": ["ENER"]}, sort="modified", page_size=5))
    assert [hit.id for hit in newest.hits] == [row.record_id for row in _newest_first(expected)][:5]
    with pytest.raises(SearchError) as refused:
        index.search(SearchQuery("punctuality", {"theme": ["ENER"]}, page=COUNT_LIMIT // 5 + 2, page_size=5))
    assert refused.value.field == "page"


def test_bounded_ranking_still_puts_a_title_match_first(index: SearchBackend) -> None:
    many = index.search(SearchQuery("punctuality"))
    assert not many.ranking_exact  # 39 hits, 5 candidates
    titled = index.search(SearchQuery("punctuality 37"))
    assert titled.hits[0].id == "r037"  # past the first candidates, but both words are in its title
    few = index.search(SearchQuery("delays", {"theme": ["HEAL"]}))
    assert few.ranking_exact
    assert {hit.id for hit in few.hits} == {row.record_id for row in _brute(("delays",), theme="HEAL")}
    with pytest.raises(SearchError) as refused:
        index.search(SearchQuery("punctuality", page=3, page_size=5))
    assert refused.value.field == "page"


def test_titles_are_shown_in_the_readers_language(index: SearchBackend) -> None:
    german = index.search(SearchQuery("pünktlichkeit", {"format": ["JSON"]}, languages=("de",)))
    assert german.hits
    assert all(hit.title.startswith("Pünktlichkeit") for hit in german.hits)
    assert {hit.language for hit in german.hits} == {"de"}
    english = index.search(SearchQuery("punctuality", {"format": ["JSON"]}, languages=("en-GB", "de")))
    assert english.hits
    assert all(hit.title.startswith("Punctuality") for hit in english.hits)
