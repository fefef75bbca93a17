"""A version's text made ahead in a worker is written exactly as the store would write it.

The ingest workers make the costly parts of a stored version (the content as a literal, the
content as N-Quads in the record's graph, the quality as a literal) so the node's one writer only
joins them. The store must write the same bytes either way, and must not use text made for
another content, quality or record (a quarantine noted while settling changes the quality).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from catalogue.store import OxigraphStore, RecordVersion, prepare_text
from catalogue.store.records import _version_statements

CONTENT = "\n".join(
    [
        '<https://d.example/1> <http://purl.org/dc/terms/title> "Tab\\tquote \\" back\\\\slash"@en .',
        '<https://d.example/1> <http://purl.org/dc/terms/description> "Two\\nlines, Ünïcödé"@de .',
        "<https://d.example/1> <http://purl.org/dc/terms/publisher> _:b0 .",
        '_:b0 <http://xmlns.com/foaf/0.1/name> "x" .',
    ]
)
QUALITY = {"quality": {"total": 120, "band": "good", "note": 'a "quote" \\ é'}, "warnings": [{"w": 1}]}


def _version(**changes: object) -> RecordVersion:
    version = RecordVersion(
        "r1", 1, "https://d.example/1", datetime(2026, 1, 2, tzinfo=UTC), False, "https://p", "urn:s",
        content=CONTENT, quality=QUALITY,
    )  # fmt: skip
    return replace(version, **changes)  # type: ignore[arg-type]


def test_prepared_text_writes_the_same_quads() -> None:
    prepared = prepare_text("r1", CONTENT, QUALITY)
    assert prepared is not None
    plain, ahead = _version(), _version(prepared=prepared)
    assert OxigraphStore._nquads_for([ahead]) == OxigraphStore._nquads_for([plain])
    assert _version_statements(ahead) == _version_statements(plain)
    # And the store reads back what it was given.
    store = OxigraphStore(None)
    store.write([ahead], bulk=True)
    stored = store.current("r1")
    assert stored is not None
    assert (stored.content, stored.quality) == (CONTENT, QUALITY)


def test_text_made_for_something_else_is_not_used() -> None:
    prepared = prepare_text("r1", CONTENT, QUALITY)
    assert prepared is not None
    quarantined = {**QUALITY, "quality": {"total": 120, "band": "good", "quarantined": "proof fails"}}
    for changed in (
        {"quality": quarantined},
        {"content": CONTENT.replace("Two", "Three")},
        {"record_id": "r2"},
    ):
        plain, ahead = _version(**changed), _version(**changed, prepared=prepared)
        assert OxigraphStore._nquads_for([ahead]) == OxigraphStore._nquads_for([plain])


def test_content_that_is_not_one_statement_a_line_is_not_prepared() -> None:
    assert prepare_text("r1", "<https://d.example/1> <https://p> <https://o>", QUALITY) is None
