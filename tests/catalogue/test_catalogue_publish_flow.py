"""A data provider publishes, revises and retracts a record; an AI team finds and reads it."""

from __future__ import annotations

import json

from rdflib import BNode, Graph, Literal, URIRef

from tests.catalogue.catalogue_records import EU, PUBLISHER, dataset_iri, dataset_turtle
from tests.catalogue.conftest import RunningNode
from vocab.namespaces import ADMS, DCAT, DCT, DQV, FOAF, HYDRA, RDF, XSD
from vocab.rdfio import parse_rdf

FORMATS = {
    ".ttl": "text/turtle",
    ".jsonld": "application/ld+json",
    ".rdf": "application/rdf+xml",
    ".nt": "application/n-triples",
}


def _graph(response_text: str, media_type: str, base: str) -> Graph:
    return parse_rdf(response_text.encode(), media_type, base)


def test_provider_publishes_record_and_reads_it_back_in_every_format_with_datatypes(
    catalogue_node: RunningNode,
) -> None:
    sent = dataset_turtle("grid-load", byte_size=2048)
    response = catalogue_node.publish(sent)
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    record_id = response.json()["id"]
    assert location == f"{catalogue_node.url}/catalogue/datasets/{record_id}"
    assert response.json()["quality"]["maximum"] == 405

    original = parse_rdf(sent.encode(), "text/turtle", location)
    distribution = URIRef(dataset_iri("grid-load") + "/csv")
    for suffix, media_type in FORMATS.items():
        for headers, path in (({}, f"{location}{suffix}"), ({"Accept": media_type}, location)):
            got = catalogue_node.client.get(path, headers=headers)
            assert got.status_code == 200, got.text
            assert got.headers["content-type"].startswith(media_type)
            graph = _graph(got.text, media_type, location)
            # the datatype the publisher sent survives the store (Oxigraph would make it xsd:integer)
            assert (distribution, DCAT.byteSize, Literal("2048", datatype=XSD.nonNegativeInteger)) in graph
            assert (distribution, DCAT.byteSize, Literal("2048", datatype=XSD.integer)) not in graph
            for subject, predicate, value in original:
                if not isinstance(subject, BNode) and not isinstance(value, BNode):
                    assert (subject, predicate, value) in graph, (suffix, subject, predicate, value)
            # the quality measurements come with the record
            assert any(graph.triples((None, DQV.isMeasurementOf, None)))


def test_ai_team_finds_record_by_text_and_two_facets_with_counts(catalogue_node: RunningNode) -> None:
    catalogue_node.publish(
        dataset_turtle("grid-load", title="Hourly grid load", theme="ENER", file_type="CSV")
    )
    catalogue_node.publish(
        dataset_turtle(
            "grid-capacity",
            title="Grid connection capacity",
            theme="ENER",
            file_type="JSON",
            keywords=("capacity", "grid"),
        )
    )
    catalogue_node.publish(
        dataset_turtle(
            "mortality",
            title="Weekly mortality",
            description="Deaths per week and region.",
            theme="HEAL",
            file_type="CSV",
            country="BEL",
            keywords=("mortality",),
        )
    )
    found = catalogue_node.client.get("/catalogue/search", params={"q": "grid"}).json()
    assert found["total"] == 2
    assert {hit["title"] for hit in found["hits"]} == {"Hourly grid load", "Grid connection capacity"}
    assert set(found["hits"][0]) >= {"id", "title", "snippet", "publisher", "modified", "quality"}
    formats = {entry["code"]: entry["count"] for entry in found["facets"]["format"]}
    assert formats == {"CSV": 1, "JSON": 1}
    assert set(found["facets"]) == {
        "theme",
        "publisher",
        "format",
        "license",
        "access_rights",
        "spatial",
        "health_category",
        "quality_band",
        "trust",
        "ehds_minimum",
    }

    narrowed = catalogue_node.client.get(
        "/catalogue/search", params={"q": "grid", "theme": "ENER", "format": f"{EU}file-type/JSON"}
    ).json()
    assert [hit["title"] for hit in narrowed["hits"]] == ["Grid connection capacity"]
    assert narrowed["facets"]["theme"] == [
        {"value": f"{EU}data-theme/ENER", "code": "ENER", "count": 1, "label": "Energy"}
    ]

    everything = catalogue_node.client.get("/catalogue/search").json()
    assert everything["total"] == 3
    themes = {entry["code"]: entry["count"] for entry in everything["facets"]["theme"]}
    assert themes == {"ENER": 2, "HEAL": 1}
    bands = everything["facets"]["quality_band"]
    assert sum(entry["count"] for entry in bands) == 3

    by_title = catalogue_node.client.get("/catalogue/search", params={"sort": "title"}).json()
    assert [hit["title"] for hit in by_title["hits"]] == [
        "Grid connection capacity",
        "Hourly grid load",
        "Weekly mortality",
    ]
    paged = catalogue_node.client.get(
        "/catalogue/search", params={"sort": "title", "page": 2, "page_size": 2}
    ).json()
    assert [hit["title"] for hit in paged["hits"]] == ["Weekly mortality"]


def test_revision_keeps_earlier_versions_and_retraction_leaves_a_tombstone_for_harvesters(
    catalogue_node: RunningNode,
) -> None:
    created = catalogue_node.publish(dataset_turtle("grid-load", title="Grid load 2024")).json()
    record_id = created["id"]
    revised = catalogue_node.replace(record_id, dataset_turtle("grid-load", title="Grid load 2024 (revised)"))
    assert revised.status_code == 200, revised.text
    assert revised.json()["version"] == 2

    versions = catalogue_node.client.get(f"/catalogue/datasets/{record_id}/versions").json()["versions"]
    assert [(v["version"], v["deleted"]) for v in versions] == [(1, False), (2, False)]
    first = catalogue_node.client.get(f"/catalogue/datasets/{record_id}/versions/1.ttl")
    assert 'Grid load 2024"@en' in first.text
    assert "revised" not in first.text
    assert "revised" in catalogue_node.client.get(f"/catalogue/datasets/{record_id}.ttl").text
    hits = catalogue_node.client.get("/catalogue/search", params={"q": "revised"}).json()
    assert hits["total"] == 1

    deleted = catalogue_node.client.delete(f"/catalogue/datasets/{record_id}", headers=catalogue_node.auth())
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True
    gone = catalogue_node.client.get(f"/catalogue/datasets/{record_id}")
    assert gone.status_code == 410
    assert gone.headers["content-type"].startswith("application/problem+json")
    assert catalogue_node.client.get("/catalogue/search", params={"q": "revised"}).json()["total"] == 0
    versions = catalogue_node.client.get(f"/catalogue/datasets/{record_id}/versions").json()["versions"]
    assert [(v["version"], v["deleted"]) for v in versions] == [(1, False), (2, False), (3, True)]

    listing = catalogue_node.client.get(
        "/catalogue/catalog", params={"modified_since": versions[2]["modified"]}
    )
    graph = _graph(listing.text, "text/turtle", catalogue_node.url)
    records = list(graph.subjects(FOAF.primaryTopic, URIRef(dataset_iri("grid-load"))))
    assert len(records) == 1
    assert (records[0], ADMS.status, URIRef("http://purl.org/adms/changetype/deleted")) in graph
    assert not list(graph.objects(None, DCAT.dataset))


def test_catalog_pages_with_hydra_links_and_modified_since(catalogue_node: RunningNode) -> None:
    ids = [
        catalogue_node.publish(dataset_turtle(f"set-{n}", title=f"Set {n}")).json()["id"] for n in range(5)
    ]
    assert len(set(ids)) == 5
    first = catalogue_node.client.get("/catalogue/catalog", params={"page": 1, "page_size": 2})
    graph = _graph(first.text, "text/turtle", catalogue_node.url)
    catalog = URIRef(f"{catalogue_node.url}/catalogue/catalog")
    assert (catalog, RDF.type, DCAT.Catalog) in graph
    assert (catalog, HYDRA.totalItems, Literal("5", datatype=XSD.nonNegativeInteger)) in graph
    view = graph.value(catalog, HYDRA.view)
    assert (view, RDF.type, HYDRA.PartialCollectionView) in graph
    assert "page=3" in str(graph.value(view, HYDRA.last))
    assert "page=2" in str(graph.value(view, HYDRA.next))
    assert len(list(graph.objects(catalog, DCAT.dataset))) == 2

    seen: set[str] = set()
    page_url: str | None = f"{catalogue_node.url}/catalogue/catalog?page=1&page_size=2"
    while page_url:
        page = _graph(catalogue_node.client.get(page_url).text, "text/turtle", catalogue_node.url)
        seen |= {str(dataset) for dataset in page.objects(catalog, DCAT.dataset)}
        view = page.value(catalog, HYDRA.view)
        following = page.value(view, HYDRA.next)
        page_url = str(following) if following else None
    assert seen == {dataset_iri(f"set-{n}") for n in range(5)}

    as_jsonld = catalogue_node.client.get("/catalogue/catalog", headers={"Accept": "application/ld+json"})
    assert as_jsonld.headers["content-type"].startswith("application/ld+json")
    assert json.loads(as_jsonld.text)
    future = catalogue_node.client.get(
        "/catalogue/catalog", params={"modified_since": "2999-01-01T00:00:00Z"}
    )
    assert not list(_graph(future.text, "text/turtle", catalogue_node.url).objects(catalog, DCAT.dataset))


def test_dataset_series_and_data_service_are_published(catalogue_node: RunningNode) -> None:
    series = dataset_turtle("grid-load-series", title="Grid load, yearly releases", kind="dcat:DatasetSeries")
    response = catalogue_node.publish(series)
    assert response.status_code == 201, response.text
    member = dataset_turtle(
        "grid-load-2023", title="Grid load 2023", extra=f"; dcat:inSeries <{dataset_iri('grid-load-series')}>"
    )
    published_member = catalogue_node.publish(member)
    assert published_member.status_code == 201, published_member.text
    service = f"""@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
<https://data.example.eu/service/grid-api> a dcat:DataService ;
    dct:title "Grid load API"@en ;
    dct:publisher <{PUBLISHER}> ;
    dcat:endpointURL <https://api.example.eu/grid> .
<{PUBLISHER}> a foaf:Agent ; foaf:name "Example Transmission System Operator"@en .
"""
    published = catalogue_node.publish(service)
    assert published.status_code == 201, published.text
    got = catalogue_node.client.get(published.headers["location"] + ".nt")
    assert "<https://api.example.eu/grid>" in got.text
    titles = {hit["title"] for hit in catalogue_node.client.get("/catalogue/search").json()["hits"]}
    assert titles == {"Grid load, yearly releases", "Grid load 2023", "Grid load API"}
    again = catalogue_node.publish(member)
    assert again.status_code == 409, "publishing the same dataset twice is a conflict; PUT replaces"
    # the member's record links to the series without copying the series' description
    member_id = catalogue_node.client.get("/catalogue/search", params={"q": "2023"}).json()["hits"][0]["id"]
    member_graph = _graph(
        catalogue_node.client.get(f"/catalogue/datasets/{member_id}.nt").text, "application/n-triples", ""
    )
    series_iri = URIRef(dataset_iri("grid-load-series"))
    assert (URIRef(dataset_iri("grid-load-2023")), DCAT.inSeries, series_iri) in member_graph
    assert (series_iri, DCT.title, None) not in member_graph


def test_jsonld_and_rdfxml_bodies_are_published(catalogue_node: RunningNode) -> None:
    source = Graph().parse(data=dataset_turtle("as-jsonld", title="Sent as JSON-LD"), format="turtle")
    jsonld = source.serialize(format="json-ld")
    assert catalogue_node.publish(jsonld, "application/ld+json").status_code == 201
    source = Graph().parse(data=dataset_turtle("as-rdfxml", title="Sent as RDF/XML"), format="turtle")
    assert catalogue_node.publish(source.serialize(format="xml"), "application/rdf+xml").status_code == 201
    titles = {hit["title"] for hit in catalogue_node.client.get("/catalogue/search").json()["hits"]}
    assert titles == {"Sent as JSON-LD", "Sent as RDF/XML"}
