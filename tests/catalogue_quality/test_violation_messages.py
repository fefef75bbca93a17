"""A violation says what to change: the property, the offending value, the vocabulary, allowed values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rdflib import Graph

from catalogue.api import CatalogueNode, open_node
from catalogue.publish import PublishError
from catalogue.validation import explain, validate_record
from tests.catalogue.catalogue_records import dataset_turtle
from vocab.authority import tables

EU = "http://publications.europa.eu/resource/authority/"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[CatalogueNode]:
    opened = open_node(tmp_path / "node")
    try:
        yield opened
    finally:
        opened.close()


def _violations(turtle: str) -> list:  # type: ignore[type-arg]
    report = validate_record(Graph().parse(data=turtle, format="turtle"))
    return report.violations


def test_a_code_outside_the_eu_table_names_the_table_and_close_codes() -> None:
    # WFS is a common publisher error: the EU file-type table has WFS_SRVC.
    found = _violations(dataset_turtle("wfs", file_type="WFS"))
    [result] = [r for r in found if r.constraint.endswith("NodeConstraintComponent")]
    explanation = explain(result)
    assert explanation.vocabulary == EU + "file-type"
    assert explanation.value == EU + "file-type/WFS"
    assert EU + "file-type/WFS_SRVC" in explanation.allowed
    assert all(tables().in_scheme(value, EU + "file-type") for value in explanation.allowed)
    assert explanation.allowed_total > 200
    assert "dct:format" in explanation.text
    assert "file-type/WFS>" in explanation.text
    # the class violation on the same value names the table too
    [by_class] = [r for r in found if r.constraint.endswith("ClassConstraintComponent")]
    assert explain(by_class).vocabulary == EU + "file-type"
    assert "WFS_SRVC" in explanation.text


def test_the_allowed_values_are_shown_with_their_label_in_the_users_language() -> None:
    found = _violations(dataset_turtle("theme", theme="ENERGY"))
    [result] = [r for r in found if r.path == "http://www.w3.org/ns/dcat#theme"]
    dutch = explain(result, ("nl",))
    assert dutch.vocabulary == EU + "data-theme"
    assert "Energie" in dutch.text  # the Dutch prefLabel of ENER, offered because ENERGY starts like it
    assert EU + "data-theme/ENER" in dutch.allowed


def test_a_missing_property_and_a_wrong_datatype_say_so_with_the_property(node: CatalogueNode) -> None:
    body = dataset_turtle("dates").replace('"2024-01-15"^^xsd:date', '"15 January 2024"@en')
    body = body.replace('dct:description "Hourly load on the transmission grid, per bidding zone."@en ;', "")
    with pytest.raises(PublishError) as raised:
        node.publisher.publish(body.encode(), "text/turtle", owner=None)
    problem = raised.value
    assert problem.status == 422
    reasons = dict(problem.errors)
    assert "dct:description is missing" in reasons["http://purl.org/dc/terms/description"]
    assert '"15 January 2024"' in reasons["http://purl.org/dc/terms/issued"]
    entries = {entry["path"]: entry for entry in problem.extra["violations"]}
    assert entries["http://purl.org/dc/terms/issued"]["expected"]
    assert entries["http://purl.org/dc/terms/description"]["profile"] == "dcat-ap-3"
