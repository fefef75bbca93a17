"""What only the PostgreSQL index does: language-aware matching, and replicas sharing one index."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from catalogue.index import IndexRow, SearchQuery
from catalogue.index_postgres import PostgresIndex

pytestmark = pytest.mark.postgres


def _row(record_id: str, title: str, description: str = "", keywords: tuple[str, ...] = ()) -> IndexRow:
    return IndexRow(
        record_id=record_id,
        dataset=f"https://data.example.eu/dataset/{record_id}",
        kind="dataset",
        title=title,
        description=description,
        keywords=keywords,
        publisher=None,
        publisher_name=None,
        modified="2025-01-01T00:00:00+00:00",
        record_modified="2025-02-01T00:00:00.000000Z",
        version=1,
        facets={"theme": ("http://publications.europa.eu/resource/authority/data-theme/HEAL",)},
    )


@pytest.fixture
def replicas(postgres_url: str) -> Iterator[tuple[PostgresIndex, PostgresIndex]]:
    one, other = PostgresIndex(postgres_url), PostgresIndex(postgres_url)
    try:
        yield one, other
    finally:
        one.close()
        other.close()


def test_words_match_across_inflections_languages_and_diacritics(
    replicas: tuple[PostgresIndex, PostgresIndex],
) -> None:
    index, _ = replicas
    with index.transaction() as transaction:
        transaction.upsert(_row("en", "Hospital admissions by region"))
        transaction.upsert(_row("de", "Krankenhäuser in Bayern", "Betten je Einwohner"))
        transaction.upsert(_row("fr", "Qualité de l'eau", "Réseaux de surveillance", ("rivières",)))

    def found(words: str) -> list[str]:
        return sorted(hit.id for hit in index.search(SearchQuery(words)).hits)

    assert found("hospitals admission") == ["en"]
    assert found("Krankenhaus") == ["de"]
    assert found("qualite reseau") == ["fr"]
    assert found("riviere") == ["fr"]
    assert found("the hospital") == []  # every word must occur; a stop word is still a word
    assert found("hospital bayern") == []
    title_hit = index.search(SearchQuery("admissions")).hits[0]
    assert title_hit.title == "Hospital admissions by region"


def test_what_one_replica_commits_the_other_finds_and_a_rollback_leaves_nothing(
    replicas: tuple[PostgresIndex, PostgresIndex],
) -> None:
    one, other = replicas
    with one.transaction() as transaction:
        transaction.upsert(_row("a", "Tram punctuality"))
        assert other.search(SearchQuery("tram")).total == 0  # not before the commit
    assert [hit.id for hit in other.search(SearchQuery("tram")).hits] == ["a"]

    def replace_then_fail() -> None:
        with other.transaction() as transaction:
            transaction.upsert(_row("a", "Bus punctuality"))
            raise RuntimeError("the store refused the write")

    with pytest.raises(RuntimeError):
        replace_then_fail()
    assert [hit.id for hit in one.search(SearchQuery("tram")).hits] == ["a"]
    assert one.search(SearchQuery("bus")).total == 0

    with other.transaction() as transaction:
        transaction.tombstone("a", record_modified="2025-03-01T00:00:00.000000Z", version=2)
    assert one.search(SearchQuery("tram")).total == 0
    assert one.search(SearchQuery()).facets["theme"] == []
    listed = one.get("a")
    assert listed is not None
    assert listed.deleted
