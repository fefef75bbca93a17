"""A record stating neither ``dct:modified`` nor ``dct:issued`` is dated by when it was recorded.

The search's "modified" order and every hit's date fall back to the record's own timestamp; a
record with an empty date sorted by id instead, so the newest publication no longer came first.
"""

from __future__ import annotations

from tests.catalogue.catalogue_records import dataset_turtle
from tests.catalogue.conftest import RunningNode


def test_undated_records_are_dated_and_ordered_by_when_they_were_recorded(
    catalogue_node: RunningNode,
) -> None:
    for slug in ("zz-first-undated", "aa-second-undated"):  # ids sort opposite to publication order
        turtle = dataset_turtle(slug, title=f"Grid load {slug}")
        undated = "\n".join(
            line for line in turtle.splitlines() if "dct:issued" not in line and "dct:modified" not in line
        )
        assert "dct:modified" not in undated
        reply = catalogue_node.publish(undated)
        assert reply.status_code == 201, reply.text

    for sort in ("modified", "relevance"):  # no words: relevance is the newest first too
        hits = catalogue_node.client.get(
            "/catalogue/search", params={"sort": sort}, headers={"Accept": "application/json"}
        ).json()["hits"]
        assert all(hit["modified"] for hit in hits), hits
        titles = [hit["title"] for hit in hits]
        assert titles.index("Grid load aa-second-undated") < titles.index("Grid load zz-first-undated")
