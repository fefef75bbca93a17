"""A record with ill-typed dates gets its verdict; the log gets one structured line, no traceback.

rdflib logged the converter's traceback for every literal whose lexical form is not valid for
its datatype (``"2024-13-45"^^xsd:date``): hostile input wrote tracebacks into the node's log.
"""

from __future__ import annotations

import logging

import pytest

from tests.catalogue.catalogue_records import dataset_turtle
from tests.catalogue.conftest import RunningNode
from vocab.literal_warnings import INSTALLED, MAX_WARNINGS, MESSAGE

BAD_DATES = ("2024-13-45", "not a date", "2024-02-30\u202e")


def test_ill_typed_dates_are_judged_and_logged_without_a_traceback(
    catalogue_node: RunningNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    INSTALLED.new_window()  # lines other tests caused do not count against this one
    turtle = dataset_turtle("bad-dates", title="Badly dated")
    extra = "\n".join(
        f'<https://example.org/bad-dates/{n}> <http://purl.org/dc/terms/issued> "{value}"'
        "^^<http://www.w3.org/2001/XMLSchema#date> ."
        for n, value in enumerate(BAD_DATES)
    )
    bad = turtle.replace('dct:issued "', 'dct:issued "2024-13-45"^^xsd:date ; dct:created "')
    bad += "\n" + extra + "\n"
    reply = catalogue_node.publish(bad)
    assert reply.status_code == 422, reply.text  # the verdict, naming the field and the value
    fields = {error["field"]: error["reason"] for error in reply.json()["errors"]}
    assert "2024-13-45" in fields["http://purl.org/dc/terms/issued"]

    from_rdflib = [record for record in caplog.records if record.name.startswith("rdflib")]
    assert from_rdflib, "the ill-typed literals were not reported at all"
    for record in from_rdflib:
        assert record.exc_info is None
        assert not record.exc_text
        assert "Traceback" not in caplog.text
    warned = [record for record in from_rdflib if record.getMessage() == MESSAGE]
    assert warned
    assert all("date" in str(getattr(record, "datatype", "")) for record in warned)
    assert all(str(getattr(record, "reason", "")) for record in warned)
    assert all(str(getattr(record, "reason", "")).isprintable() for record in warned)
    assert len(from_rdflib) <= MAX_WARNINGS


def test_a_flood_of_ill_typed_literals_is_a_few_lines() -> None:
    from rdflib import XSD, Literal

    from vocab.literal_warnings import IllTypedLiteralWarnings

    now = [0.0]
    kept = IllTypedLiteralWarnings(clock=lambda: now[0])
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("rdflib.term")

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger.removeFilter(INSTALLED)  # this test counts with its own clock
    logger.addFilter(kept)
    logger.addHandler(handler)
    try:
        for n in range(MAX_WARNINGS * 5):
            Literal(f"2024-13-{n}", datatype=XSD.date)
        assert len(records) == MAX_WARNINGS
        now[0] = 60.0
        Literal("nope", datatype=XSD.date)
        assert getattr(records[-1], "suppressed", 0) == MAX_WARNINGS * 4
    finally:
        logger.removeFilter(kept)
        logger.removeHandler(handler)
        logger.addFilter(INSTALLED)
