"""Our minimal credentials v2, DID v1 and Multikey contexts give the terms Sluis uses their W3C IRIs."""

from __future__ import annotations

from rdflib import Literal, URIRef

from vocab import jsonld

SEC = "https://w3id.org/security#"
CRED = "https://www.w3.org/2018/credentials#"
DID = "did:web:127.0.0.1%3A9191"
KEY = DID + "#key-1"


def test_did_document_with_multikey_and_service_expands_to_the_did_vocabulary() -> None:
    document = {
        "@context": [jsonld.DID_V1_CONTEXT, jsonld.MULTIKEY_V1_CONTEXT],
        "id": DID,
        "verificationMethod": [
            {"id": KEY, "type": "Multikey", "controller": DID, "publicKeyMultibase": "z6MkExample"}
        ],
        "authentication": [KEY],
        "assertionMethod": [KEY],
        "service": [{"id": DID + "#dsp", "type": "DataService", "serviceEndpoint": "http://127.0.0.1:9191/dsp"}],
    }
    graph = jsonld.to_graph(document, base="https://participant.example/")
    did, key = URIRef(DID), URIRef(KEY)
    assert (did, URIRef(SEC + "assertionMethod"), key) in graph
    assert (did, URIRef(SEC + "authenticationMethod"), key) in graph
    assert (key, URIRef(SEC + "controller"), did) in graph
    multibase = Literal("z6MkExample", datatype=URIRef(SEC + "multibase"))
    assert (key, URIRef(SEC + "publicKeyMultibase"), multibase) in graph
    endpoint = URIRef("https://www.w3.org/ns/did#serviceEndpoint")
    assert (URIRef(DID + "#dsp"), endpoint, URIRef("http://127.0.0.1:9191/dsp")) in graph


def test_signed_credential_keeps_its_proof_in_a_graph_of_its_own() -> None:
    credential = {
        "@context": [jsonld.CREDENTIALS_V2_CONTEXT, jsonld.SLUIS_CONTEXT],
        "id": "urn:uuid:5f1c",
        "type": ["VerifiableCredential"],
        "issuer": DID,
        "validFrom": "2025-01-01T00:00:00Z",
        "credentialSubject": {
            "id": "did:web:consumer.example",
            "computeSite": "https://w3id.org/sluis/place/NL-NH",
        },
        "proof": {
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-jcs-2022",
            "verificationMethod": KEY,
            "proofPurpose": "assertionMethod",
            "created": "2025-01-01T00:00:00Z",
            "proofValue": "z3FXQjecWufY46",
        },
    }
    dataset = jsonld.to_dataset(credential, base="https://participant.example/")
    vc = URIRef("urn:uuid:5f1c")
    default = dataset.default_graph
    assert (vc, URIRef(CRED + "issuer"), URIRef(DID)) in default
    compute_site = URIRef("https://w3id.org/sluis/ns#computeSite")
    assert (URIRef("did:web:consumer.example"), compute_site, None) in default
    (proof_graph,) = [g for g in dataset.graphs() if g.identifier != default.identifier and len(g)]
    assert (None, URIRef(SEC + "proofPurpose"), URIRef(SEC + "assertionMethod")) in proof_graph
    assert (None, URIRef(SEC + "verificationMethod"), URIRef(KEY)) in proof_graph
    assert (None, URIRef(SEC + "cryptosuite"), None) in proof_graph
