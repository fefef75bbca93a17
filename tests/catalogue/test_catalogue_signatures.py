"""Every stored record carries the node's eddsa-jcs-2022 proof; tampering is detected."""

from __future__ import annotations

import copy

import pytest
from rdflib import URIRef

from catalogue.publish import record_graph_of
from catalogue.signing import TrustedKeys, did_key_for, record_document, sign_as_publisher, verify_record
from connector.identity import KeyPair, ProofError, public_key_from_multibase, verify_document
from tests.catalogue.catalogue_records import dataset_iri, dataset_turtle
from tests.catalogue.conftest import RunningNode
from vocab.rdfio import parse_rdf


def _node_keys(node: RunningNode) -> TrustedKeys:
    identity = node.client.get("/catalogue/node").json()
    return TrustedKeys(
        {identity["verification_method"]: public_key_from_multibase(identity["public_key_multibase"])}
    )


def test_stored_record_carries_a_proof_anyone_can_verify_with_the_node_key(
    catalogue_node: RunningNode,
) -> None:
    record_id = catalogue_node.publish(dataset_turtle("grid-load")).json()["id"]
    signed = catalogue_node.client.get(f"/catalogue/datasets/{record_id}/proof").json()
    assert signed["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert signed["id"] == dataset_iri("grid-load")
    keys = _node_keys(catalogue_node)
    assert verify_document(signed, keys) == [catalogue_node.node.signer.verification_method]

    # the proof covers what GET serves: rebuild the signed form from the Turtle a client received
    served = catalogue_node.client.get(f"/catalogue/datasets/{record_id}.ttl").text
    graph = parse_rdf(served, "text/turtle", catalogue_node.url)
    stored = catalogue_node.node.store.current(record_id)
    assert stored is not None
    assert verify_record(record_graph_of(stored, with_quality=False), stored.dataset, signed["proof"], keys)
    assert len(graph) > len(signed["statements"])  # served = record + DQV measurements

    tampered = copy.deepcopy(signed)
    tampered["statements"][0] = tampered["statements"][0].replace("grid", "grit")
    with pytest.raises(ProofError):
        verify_document(tampered, keys)


def test_tampering_with_the_stored_record_is_detected(catalogue_node: RunningNode) -> None:
    record_id = catalogue_node.publish(dataset_turtle("grid-load")).json()["id"]
    stored = catalogue_node.node.store.current(record_id)
    assert stored is not None
    keys = _node_keys(catalogue_node)
    graph = record_graph_of(stored, with_quality=False)
    verify_record(graph, stored.dataset, stored.proof, keys)
    graph.set((URIRef(stored.dataset), URIRef("http://purl.org/dc/terms/title"), URIRef("urn:forged")))
    with pytest.raises(ProofError):
        verify_record(graph, stored.dataset, stored.proof, keys)


def test_publisher_proof_is_verified_on_publish_and_kept(catalogue_node: RunningNode) -> None:
    publisher_key = KeyPair.generate()
    body = dataset_turtle("signed-by-publisher")
    graph = parse_rdf(body, "text/turtle", "https://data.example.eu/")
    proof_json = sign_as_publisher(graph, dataset_iri("signed-by-publisher"), publisher_key)
    escaped = proof_json.replace("\\", "\\\\").replace('"', '\\"')
    signed_body = body + (
        f'\n<{dataset_iri("signed-by-publisher")}> <https://w3id.org/sluis/ns#recordProof> "{escaped}" .\n'
    )
    response = catalogue_node.publish(signed_body)
    assert response.status_code == 201, response.text
    assert response.json()["quality"]["trust"]["signed"] is True
    record_id = response.json()["id"]
    signed = catalogue_node.client.get(f"/catalogue/datasets/{record_id}/proof").json()
    assert isinstance(signed["proof"], list)
    assert len(signed["proof"]) == 2
    methods = verify_document(signed, _node_keys(catalogue_node))
    assert did_key_for(publisher_key)[1] in methods
    assert "recordProof" not in catalogue_node.client.get(f"/catalogue/datasets/{record_id}.ttl").text

    forged_body = body.replace("signed-by-publisher", "forged") + (
        f'\n<{dataset_iri("forged")}> <https://w3id.org/sluis/ns#recordProof> "{escaped}" .\n'
    )
    before = catalogue_node.snapshot()
    forged = catalogue_node.publish(forged_body)
    assert forged.status_code == 422
    assert forged.json()["errors"][0]["field"] == "sluis:recordProof"
    assert catalogue_node.snapshot() == before


def test_signed_form_is_the_same_for_the_same_statements_in_any_order_or_labels() -> None:
    first = parse_rdf(dataset_turtle("grid-load"), "text/turtle", "https://x.example/")
    second = parse_rdf(dataset_turtle("grid-load"), "text/turtle", "https://x.example/")
    assert record_document(first, "urn:a") == record_document(second, "urn:a")
