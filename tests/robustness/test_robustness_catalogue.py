"""The catalogue's own bad inputs (issue 4): unparsable RDF, documents without a dataset, wrong media
types, paging past the end, unknown sort keys, SPARQL updates — each a clean 4xx naming the
field, and nothing half-stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rdflib import Graph, Literal, URIRef

from catalogue.config import MAX_SEARCH_PAGE_SIZE, MAX_SPARQL_QUERY_CHARS
from catalogue.seed import dataset_iri, seed_files
from tests.robustness.hostile import Rejection, Reply, assert_rejected
from tests.robustness.known_bugs import case
from tests.robustness.worlds import CatalogueWorld
from vocab.namespaces import DCT, XSD


@pytest.fixture
def unchanged(catalogue: CatalogueWorld) -> Iterator[None]:
    """Whatever the test sends, the catalogue is exactly as before, by store and over HTTP."""
    before = catalogue.snapshot(), catalogue.http_snapshot()
    yield
    assert (catalogue.snapshot(), catalogue.http_snapshot()) == before, (
        "a refused request changed the catalogue"
    )


def _publish(world: CatalogueWorld, body: bytes, media_type: str) -> Reply:
    return Reply.of(
        world.client.post(
            "/catalogue/datasets", content=body, headers={**world.auth(), "Content-Type": media_type}
        )
    )


TWO_DATASETS = b"""
@prefix dcat: <http://www.w3.org/ns/dcat#> . @prefix dct: <http://purl.org/dc/terms/> .
<https://data.sluis.example/dataset/a> a dcat:Dataset ; dct:title "A"@en ; dct:description "A"@en .
<https://data.sluis.example/dataset/b> a dcat:Dataset ; dct:title "B"@en ; dct:description "B"@en .
"""
NO_DATASET = b"""@prefix dct: <http://purl.org/dc/terms/> . <urn:x> dct:title "nothing here"@en ."""


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("body", "media_type", "fields"),
    [
        pytest.param(
            b'@prefix dct: <http://purl.org/dc/terms/> .\n<urn:a> dct:title "unclosed .\n',
            "text/turtle",
            {"line", "body"},
            id="broken-turtle",
        ),
        pytest.param(
            b'{"@context": {"dcat": "http://www.w3.org/ns/dcat#"}, "@type": ',
            "application/ld+json",
            {"body", "json", "line"},
            id="broken-json-ld",
        ),
        pytest.param(
            b'{"@context": "https://evil.example/ctx.jsonld", "@type": "Dataset"}',
            "application/ld+json",
            {"context", "evil.example", "body"},
            id="remote-context",
        ),
        pytest.param(
            b'{"@context": "file:///etc/passwd", "@type": "Dataset"}',
            "application/ld+json",
            {"context", "file:", "body"},
            id="file-context",
        ),
        pytest.param(
            b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><unclosed>",
            "application/rdf+xml",
            {"line", "body"},
            id="broken-rdf-xml",
        ),
        pytest.param(NO_DATASET, "text/turtle", {"dataset"}, id="no-dataset"),
        pytest.param(b"", "text/turtle", {"body", "dataset"}, id="empty-body"),
        pytest.param(b"%PDF-1.7", "application/pdf", {"content-type", "media type"}, id="pdf-media-type"),
        pytest.param(b"<a/>", "text/html", {"content-type", "media type"}, id="html-media-type"),
    ],
)
def test_bad_records_are_refused_naming_what_is_wrong(
    catalogue: CatalogueWorld, body: bytes, media_type: str, fields: set[str]
) -> None:
    reply = _publish(catalogue, body, media_type)
    assert_rejected(reply, Rejection(fields=fields), f"publishing {body[:30]!r} as {media_type}")


@pytest.mark.usefixtures("unchanged")
def test_replacing_a_record_with_garbage_keeps_the_current_version(catalogue: CatalogueWorld) -> None:
    reply = Reply.of(
        catalogue.client.put(
            f"/catalogue/datasets/{catalogue.record_id}",
            content=b"<not> <turtle",
            headers={**catalogue.auth(), "Content-Type": "text/turtle"},
        )
    )
    assert_rejected(reply, Rejection(fields={"line", "body"}), "PUT with unparsable Turtle")


@pytest.mark.usefixtures("unchanged")
def test_replacing_a_record_with_another_dataset_is_refused(catalogue: CatalogueWorld) -> None:
    other = seed_files()[1].read_bytes()
    reply = Reply.of(
        catalogue.client.put(
            f"/catalogue/datasets/{catalogue.record_id}",
            content=other,
            headers={**catalogue.auth(), "Content-Type": "text/turtle"},
        )
    )
    assert_rejected(reply, Rejection(), "PUT of a different dataset (and publisher) over a record")


def test_a_catalogue_dump_is_split_into_one_record_per_dataset(catalogue: CatalogueWorld) -> None:
    reply = catalogue.client.post(
        "/catalogue/datasets",
        content=TWO_DATASETS,
        headers={**catalogue.auth(), "Content-Type": "text/turtle"},
    )
    assert reply.status_code == 201, reply.text
    stored = {r["dataset"]: r["id"] for r in reply.json()["records"] if r["status"] == "stored"}
    assert set(stored) == {"https://data.sluis.example/dataset/a", "https://data.sluis.example/dataset/b"}
    for dataset, record_id in stored.items():
        record = catalogue.client.get(f"/catalogue/datasets/{record_id}", headers={"Accept": "text/turtle"})
        assert record.status_code == 200
        graph = Graph().parse(data=record.text, format="turtle")
        titled = set(graph.subjects(DCT.title, None))
        assert titled == {URIRef(dataset)}, "each record holds its own dataset only"


@pytest.mark.usefixtures("unchanged")
def test_replacing_a_record_with_a_dump_is_refused(catalogue: CatalogueWorld) -> None:
    reply = Reply.of(
        catalogue.client.put(
            f"/catalogue/datasets/{catalogue.record_id}",
            content=TWO_DATASETS,
            headers={**catalogue.auth(), "Content-Type": "text/turtle"},
        )
    )
    assert_rejected(reply, Rejection(), "PUT of a two-dataset document over one record")


SEARCH_CASES = {
    "unknown-sort": ({"sort": "password"}, {"sort"}),
    "sort-injection": ({"sort": "title; DROP TABLE record"}, {"sort"}),
    "page-past-end": ({"page": "9999"}, {"page"}),
    "page-zero": ({"page": "0"}, {"page"}),
    "page-size-negative": ({"page_size": "-5"}, {"page_size"}),
    "page-size-over-max": ({"page_size": str(MAX_SEARCH_PAGE_SIZE + 1)}, {"page_size"}),
    "page-size-huge": ({"page_size": "9" * 40}, {"page_size"}),
    "unknown-facet": ({"colour": "red"}, {"colour"}),
    "fts-syntax": ({"q": '"unbalanced AND (NEAR'}, {"q"}),
}


@pytest.mark.parametrize(("params", "fields"), list(SEARCH_CASES.values()), ids=list(SEARCH_CASES))
def test_bad_search_parameters_are_refused_naming_the_parameter(
    catalogue: CatalogueWorld, params: dict[str, str], fields: set[str]
) -> None:
    reply = Reply.of(catalogue.client.get("/catalogue/search", params=params))
    if params.get("q"):
        # Full-text syntax errors may be read as plain words instead; never a server error.
        assert reply.status < 500, reply.describe()
        if reply.status >= 400:
            assert_rejected(reply, Rejection(fields=fields), f"search {params}")
        return
    assert_rejected(reply, Rejection(fields=fields), f"search {params}")


CATALOG_CASES = {
    "page-past-end": ({"page": "9999"}, {"page"}),
    "page-huge": ({"page": "9" * 30}, {"page"}),
    "page-size-zero": ({"page_size": "0"}, {"page_size"}),
    "modified-since-garbage": ({"modified_since": "yesterday-ish"}, {"modified_since"}),
}


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        case("test_bad_catalog_paging_is_refused_naming_the_parameter", *value, id=name)
        for name, value in CATALOG_CASES.items()
    ],
)
def test_bad_catalog_paging_is_refused_naming_the_parameter(
    catalogue: CatalogueWorld, params: dict[str, str], fields: set[str]
) -> None:
    reply = Reply.of(catalogue.client.get("/catalogue/catalog", params=params))
    assert_rejected(reply, Rejection(fields=fields), f"catalog {params}")


def test_an_unsatisfiable_accept_header_is_406_naming_accept(catalogue: CatalogueWorld) -> None:
    reply = Reply.of(
        catalogue.client.get(
            f"/catalogue/datasets/{catalogue.record_id}", headers={"Accept": "application/x-spreadsheet"}
        )
    )
    assert_rejected(reply, Rejection(statuses={406}, fields={"accept"}), "Accept: application/x-spreadsheet")


SPARQL_CASES = {
    "update-form": ("application/sparql-update", b"DELETE WHERE { ?s ?p ?o }", {"update"}),
    "update-in-query": ("application/sparql-query", b"DELETE WHERE { ?s ?p ?o }", {"query", "update"}),
    "two-operations": ("application/sparql-query", b"SELECT * WHERE { ?s ?p ?o } ; DROP ALL", {"query"}),
    "not-sparql": ("application/sparql-query", b"SELECT FROM WHERE {{{", {"query"}),
    "load-remote": ("application/sparql-query", b"LOAD <http://evil.example/data.ttl>", {"query", "update"}),
    "service-remote": (
        "application/sparql-query",
        b"SELECT * WHERE { SERVICE <http://evil.example/sparql> { ?s ?p ?o } }",
        {"query", "service"},
    ),
    "too-long": (
        "application/sparql-query",
        b"SELECT * WHERE { ?s ?p ?o } #" + b"x" * (MAX_SPARQL_QUERY_CHARS + 10),
        {"query"},
    ),
    "json-body": ("application/json", b'{"query": "SELECT * WHERE {?s ?p ?o}"}', {"content-type"}),
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("media_type", "body", "fields"), list(SPARQL_CASES.values()), ids=list(SPARQL_CASES)
)
def test_sparql_refuses_updates_and_garbage_naming_the_field(
    catalogue: CatalogueWorld, media_type: str, body: bytes, fields: set[str]
) -> None:
    reply = Reply.of(
        catalogue.client.post("/catalogue/sparql", content=body, headers={"Content-Type": media_type})
    )
    assert_rejected(reply, Rejection(fields=fields), f"SPARQL {body[:40]!r} as {media_type}")


def test_sparql_get_without_query_or_with_update_is_refused(catalogue: CatalogueWorld) -> None:
    for params, fields in (
        ({}, {"query"}),
        ({"update": "DROP ALL"}, {"update"}),
        ({"query": "ASK {"}, {"query"}),
    ):
        reply = Reply.of(catalogue.client.get("/catalogue/sparql", params=params))
        assert_rejected(reply, Rejection(fields=fields), f"GET /catalogue/sparql {params}")


def _seed_graph_without(catalogue: CatalogueWorld, predicate: URIRef) -> tuple[Graph, URIRef]:
    seed = seed_files()[0]
    graph = Graph()
    graph.parse(seed, format="turtle")
    dataset = URIRef(dataset_iri(seed))
    graph.remove((dataset, predicate, None))
    return graph, dataset


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("predicate", "value", "field"),
    [
        pytest.param(DCT.title, None, "title", id="title-missing"),
        pytest.param(DCT.description, None, "description", id="description-missing"),
        pytest.param(
            DCT.issued, Literal("last tuesday", datatype=XSD.dateTime), "issued", id="issued-not-a-date"
        ),
    ],
)
def test_a_record_with_a_wrong_or_missing_field_is_refused_naming_it(
    catalogue: CatalogueWorld, predicate: URIRef, value: Literal | None, field: str
) -> None:
    graph, dataset = _seed_graph_without(catalogue, predicate)
    if value is not None:
        graph.add((dataset, predicate, value))
    reply = Reply.of(
        catalogue.client.put(
            f"/catalogue/datasets/{catalogue.record_id}",
            content=graph.serialize(format="turtle").encode(),
            headers={**catalogue.auth(), "Content-Type": "text/turtle"},
        )
    )
    assert_rejected(
        reply, Rejection(statuses={400, 422}, fields={field}), f"a record whose {field} is {value!r}"
    )


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/catalogue/datasets/abc%00def", 404),
        ("/catalogue/datasets/abc%00def/versions", 404),
        ("/catalogue/search?q=energy%00", 400),
        ("/catalogue/search?publisher=%00", 400),
    ],
)
def test_a_url_holding_nul_is_refused_before_any_lookup(
    catalogue: CatalogueWorld, url: str, status: int
) -> None:
    """No id or filter can hold U+0000, and a PostgreSQL index could not even be asked."""
    reply = Reply.of(catalogue.client.get(url))
    assert reply.status == status, reply.describe()
    assert reply.headers["content-type"].startswith("application/problem+json")


STRICT_JSON_CASES = [
    pytest.param(b'{"@id": "urn:a", "@id": "urn:b"}', id="duplicate-key"),
    pytest.param(b'{"@id": "urn:a", "http://purl.org/dc/terms/title": NaN}', id="nan"),
    pytest.param(b'{"@id": "urn:a", "http://purl.org/dc/terms/title": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b'{"@id": "urn:a", "http://purl.org/dc/terms/title": "a\\u0000b"}', id="nul"),
    pytest.param(b'{"@id": "urn:a", "x": 1e999}', id="infinity"),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("body", STRICT_JSON_CASES)
@pytest.mark.parametrize("path", ["/catalogue/datasets", "/catalogue/sources"])
def test_json_bodies_get_the_strict_reading(catalogue: CatalogueWorld, path: str, body: bytes) -> None:
    """Keys twice, NaN, lone surrogates and NUL are refused with a 400 naming the body, never a 500."""
    for media_type in ("application/ld+json", "application/json"):
        headers = {**catalogue.auth(), "Content-Type": media_type}
        reply = Reply.of(catalogue.client.post(path, content=body, headers=headers))
        assert_rejected(reply, Rejection(fields={"body"}, statuses={400}), f"{path} {media_type}")
