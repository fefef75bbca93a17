"""Publishing needs the publisher's token; reading and querying are public."""

from __future__ import annotations

import json

from tests.catalogue.catalogue_records import OTHER_PUBLISHER, PUBLISHER, dataset_turtle
from tests.catalogue.conftest import NodeFactory, RunningNode


def test_writes_need_a_valid_token_and_reads_are_public(catalogue_node: RunningNode) -> None:
    body = dataset_turtle("grid-load")
    before = catalogue_node.snapshot()
    anonymous = catalogue_node.client.post(
        "/catalogue/datasets", content=body, headers={"Content-Type": "text/turtle"}
    )
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["field"] == "Authorization"
    forged = catalogue_node.publish(body, token="sluis_pub_0000_forged")
    assert forged.status_code == 401
    assert catalogue_node.snapshot() == before

    record_id = catalogue_node.publish(body).json()["id"]
    public = catalogue_node.client.get(f"/catalogue/datasets/{record_id}")
    assert public.status_code == 200
    assert catalogue_node.client.get("/catalogue/search").json()["total"] == 1
    assert catalogue_node.client.get("/catalogue/catalog").status_code == 200
    assert catalogue_node.client.delete(f"/catalogue/datasets/{record_id}").status_code == 401


def test_a_publisher_cannot_publish_or_change_another_publishers_records(catalogue_node: RunningNode) -> None:
    body = dataset_turtle("grid-load", publisher=PUBLISHER)
    before = catalogue_node.snapshot()
    impostor = catalogue_node.publish(body, token=catalogue_node.other_token)
    assert impostor.status_code == 403
    assert impostor.json()["errors"][0]["field"] == "dct:publisher"
    assert catalogue_node.snapshot() == before

    record_id = catalogue_node.publish(body).json()["id"]
    before = catalogue_node.snapshot()
    takeover = catalogue_node.replace(
        record_id, dataset_turtle("grid-load", publisher=OTHER_PUBLISHER), token=catalogue_node.other_token
    )
    assert takeover.status_code == 403
    deletion = catalogue_node.client.delete(
        f"/catalogue/datasets/{record_id}", headers=catalogue_node.auth(catalogue_node.other_token)
    )
    assert deletion.status_code == 403
    assert catalogue_node.snapshot() == before


def test_revoked_token_no_longer_publishes(catalogue_node: RunningNode) -> None:
    issued = catalogue_node.node.tokens.create(PUBLISHER)
    assert catalogue_node.publish(dataset_turtle("first"), token=issued.token).status_code == 201
    assert catalogue_node.node.tokens.revoke(issued.token_id)
    assert catalogue_node.publish(dataset_turtle("second"), token=issued.token).status_code == 401


def test_tokens_are_stored_hashed(catalogue_node: RunningNode) -> None:
    raw = (catalogue_node.data_dir / "tokens.sqlite").read_bytes()
    wal = catalogue_node.data_dir / "tokens.sqlite-wal"
    stored = raw + (wal.read_bytes() if wal.exists() else b"")
    assert catalogue_node.token.encode() not in stored
    assert PUBLISHER.encode() in stored


def test_sparql_answers_select_ask_and_construct_with_a_result_cap(start_node: NodeFactory) -> None:
    with start_node(sparql_max_results=3) as node:
        for n in range(5):
            assert node.publish(dataset_turtle(f"set-{n}", title=f"Set {n}")).status_code == 201
        select = """PREFIX dcat: <http://www.w3.org/ns/dcat#> PREFIX dct: <http://purl.org/dc/terms/>
            SELECT ?d ?title WHERE { ?d a dcat:Dataset ; dct:title ?title } ORDER BY ?title"""
        response = node.client.get("/catalogue/sparql", params={"query": select})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/sparql-results+json")
        rows = response.json()["results"]["bindings"]
        assert [row["title"]["value"] for row in rows] == ["Set 0", "Set 1", "Set 2"]
        assert rows[0]["title"]["xml:lang"] == "en"
        assert response.headers["sluis-results-truncated"] == "true"

        posted = node.client.post(
            "/catalogue/sparql",
            content=select + " LIMIT 2",
            headers={"Content-Type": "application/sparql-query"},
        )
        assert len(posted.json()["results"]["bindings"]) == 2
        assert posted.headers["sluis-results-truncated"] == "false"
        form = node.client.post("/catalogue/sparql", data={"query": "ASK { ?s ?p ?o }"})
        assert json.loads(form.text)["boolean"] is True
        construct = node.client.get(
            "/catalogue/sparql",
            params={
                "query": "CONSTRUCT { ?d a <http://www.w3.org/ns/dcat#Dataset> } "
                "WHERE { ?d a <http://www.w3.org/ns/dcat#Dataset> }"
            },
        )
        assert construct.headers["content-type"].startswith("application/n-triples")
        assert construct.text.count("<http://www.w3.org/ns/dcat#Dataset> .") == 3
