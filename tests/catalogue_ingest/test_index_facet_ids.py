"""The index writer remembers facet value ids; counts and filters stay exact, rollbacks included.

A known (facet, value) costs no statement per record: its count is raised once when the
transaction ends. The attack: a value first written in a transaction that rolls back loses its
id, SQLite gives that id to the next new value, and a writer still remembering the old id would
tag later records with the wrong value (filters and counts wrong from then on).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogue.index import IndexRow, SearchIndex, SearchQuery

THEME = "http://publications.europa.eu/resource/authority/data-theme/"


def _row(n: int, *themes: str) -> IndexRow:
    return IndexRow(
        record_id=f"r{n}",
        dataset=f"https://data.example.eu/dataset/{n}",
        kind="dataset",
        title=f"Record {n}",
        description="",
        keywords=(),
        publisher=None,
        publisher_name=None,
        modified="2025-01-01T00:00:00+00:00",
        record_modified="2025-02-01T00:00:00.000000Z",
        version=1,
        facets={"theme": tuple(THEME + theme for theme in themes)},
    )


def _write_then_fail(index: SearchIndex, row: IndexRow) -> None:
    with index.transaction() as transaction:
        transaction.upsert(row)
        raise RuntimeError("the store refused the write")


def _counts(index: SearchIndex) -> dict[str, int]:
    return {entry["code"]: entry["count"] for entry in index.search(SearchQuery()).facets["theme"]}


def test_ids_of_a_rolled_back_value_are_not_reused_for_another(tmp_path: Path) -> None:
    index = SearchIndex(tmp_path / "index.sqlite")
    try:
        with index.transaction() as transaction:
            transaction.upsert(_row(1, "ENER"))
        with pytest.raises(RuntimeError):
            _write_then_fail(index, _row(2, "TRAN"))  # a new value, its id gone with the rollback
        with index.transaction() as transaction:
            transaction.upsert(_row(3, "AGRI"))  # takes the id TRAN had
        with index.transaction() as transaction:
            transaction.upsert(_row(4, "TRAN"))
            transaction.upsert(_row(5, "ENER", "AGRI"))
        assert _counts(index) == {"ENER": 2, "AGRI": 2, "TRAN": 1}
        for code, records in {"TRAN": {"r4"}, "AGRI": {"r3", "r5"}, "ENER": {"r1", "r5"}}.items():
            hits = index.search(SearchQuery("", {"theme": [code]}))
            assert {hit.id for hit in hits.hits} == records, code
    finally:
        index.close()


def test_counts_of_known_values_match_the_rows_after_replacements(tmp_path: Path) -> None:
    index = SearchIndex(tmp_path / "index.sqlite")
    try:
        themes = ["ENER", "HEAL", "TRAN"]
        expected: dict[str, str] = {}
        for round_ in range(4):
            with index.transaction() as transaction:
                for n in range(12):
                    theme = themes[(n + round_) % 3]
                    transaction.upsert(_row(n, theme))  # replaces the row of the round before
                    expected[f"r{n}"] = theme
                transaction.upsert(_row(0, "HEAL"))  # twice in one transaction
                expected["r0"] = "HEAL"
        brute = {theme: sum(1 for value in expected.values() if value == theme) for theme in themes}
        assert _counts(index) == {theme: count for theme, count in brute.items() if count}
    finally:
        index.close()
