"""Hostile publishers against a real catalogue node.

A publisher may only speak for its own records. It could not name another publisher, replace or
retract another's record, or re-publish another's dataset IRI; but a record could *describe*
another publisher's dataset: leave out the type (which makes another dataset a boundary of the
record) and give it a title and a publisher. Those statements went into the attacker's record
graph, and the public SPARQL endpoint and the ``/catalog`` feed harvesters read showed the
victim's dataset with the attacker's title and publisher. Now such a record is refused, whatever
the statements pretend the resource is; linking to another record stays allowed.

Blank nodes cost the node in proportion to their shape, not their number of statements: a chain
of 2,000 written flat (no nesting for the parser's depth limit to count) overflowed the stack of
the labelling (a 500); 30 blank nodes all linked to each other, two rings of 100, or 100 alike
``[ dct:title "CSV" ]`` kept a worker in rdflib's canonical labelling for minutes. Such records
are refused with 400 now; trees of distinct blank nodes, however many, are signed as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.catalogue.catalogue_records import OTHER_PUBLISHER, PUBLISHER, dataset_iri, dataset_turtle
from tests.catalogue.conftest import RunningNode, running_node

THEIRS = dataset_iri("theirs")
DCT = "http://purl.org/dc/terms/"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("rt2-publishing")) as running:
        published = running.publish(
            dataset_turtle("theirs", title="Their data", publisher=OTHER_PUBLISHER), token=running.other_token
        )
        assert published.status_code == 201, published.text
        yield running


def _titles_and_publishers(node: RunningNode) -> tuple[set[str], set[str]]:
    query = f"SELECT ?p ?o WHERE {{ <{THEIRS}> ?p ?o FILTER(?p IN (<{DCT}title>, <{DCT}publisher>)) }}"
    reply = node.client.get("/catalogue/sparql", params={"query": query})
    assert reply.status_code == 200, reply.text
    rows = reply.json()["results"]["bindings"]
    titles = {row["o"]["value"] for row in rows if row["p"]["value"] == f"{DCT}title"}
    publishers = {row["o"]["value"] for row in rows if row["p"]["value"] == f"{DCT}publisher"}
    return titles, publishers


def _feed(node: RunningNode) -> str:
    reply = node.client.get("/catalogue/catalog", headers={"Accept": "application/n-triples"})
    assert reply.status_code == 200
    return reply.text


HIJACKS = {
    "untyped": "",
    "posing-as-a-distribution": "a <http://www.w3.org/ns/dcat#Distribution> ;",
    "posing-as-an-agent": "a <http://xmlns.com/foaf/0.1/Agent> ;",
}


@pytest.mark.parametrize("pose", list(HIJACKS.values()), ids=list(HIJACKS))
def test_a_record_cannot_describe_another_publishers_dataset(node: RunningNode, pose: str) -> None:
    before = (
        _titles_and_publishers(node),
        node.client.get("/catalogue/search", params={"q": "hourly"}).json(),
    )
    slug = f"hijack-{len(pose)}"
    body = dataset_turtle(slug, extra=f"; <{DCT}relation> <{THEIRS}>") + (
        f'\n<{THEIRS}> {pose} <{DCT}title> "HIJACKED"@en ; <{DCT}publisher> <{PUBLISHER}> .\n'
    )
    reply = node.publish(body)
    assert reply.status_code == 403, reply.text
    problem = reply.json()
    assert problem["type"].endswith("/describes-another-record")
    assert THEIRS in problem["detail"]
    assert [error["field"] for error in problem["errors"]] == ["body"]
    after = (
        _titles_and_publishers(node),
        node.client.get("/catalogue/search", params={"q": "hourly"}).json(),
    )
    assert after == before  # nothing of the refused record was kept
    assert after[0] == ({"Their data"}, {OTHER_PUBLISHER})
    assert "HIJACKED" not in _feed(node)


def test_a_dump_entry_describing_another_record_is_refused(node: RunningNode) -> None:
    dump = (
        dataset_turtle("dump-own")
        + dataset_turtle("dump-two").split("\n", 7)[-1]
        + (
            f"\n<{dataset_iri('dump-two')}> <{DCT}relation> <{THEIRS}> .\n"
            f'<{THEIRS}> <{DCT}title> "HIJACKED"@en .\n'
        )
    )
    reply = node.publish(dump)
    assert reply.status_code in (201, 403), reply.text
    if reply.status_code == 201:
        statuses = {entry["dataset"]: entry for entry in reply.json()["records"]}
        assert statuses[dataset_iri("dump-two")]["status"] == "rejected", statuses
    assert _titles_and_publishers(node) == ({"Their data"}, {OTHER_PUBLISHER})


def test_linking_to_another_record_without_describing_it_is_allowed(node: RunningNode) -> None:
    reply = node.publish(dataset_turtle("links-only", extra=f"; <{DCT}relation> <{THEIRS}>"))
    assert reply.status_code == 201, reply.text
    record = node.client.get(f"/catalogue/datasets/{reply.json()['id']}.nt")
    assert f"<{THEIRS}>" in record.text
    assert _titles_and_publishers(node) == ({"Their data"}, {OTHER_PUBLISHER})


def test_the_owner_can_still_replace_its_record(node: RunningNode) -> None:
    """The check names *other* records: a record's own dataset (and a PUT of it) is its own."""
    hits = node.client.get("/catalogue/search", params={"q": "their"}).json()["hits"]
    (record_id,) = [hit["id"] for hit in hits if hit["dataset"] == THEIRS]
    reply = node.client.put(
        f"/catalogue/datasets/{record_id}",
        content=dataset_turtle("theirs", title="Their data", publisher=OTHER_PUBLISHER),
        headers={"Content-Type": "text/turtle", **node.auth(node.other_token)},
    )
    assert reply.status_code == 200, reply.text
    assert json.loads(reply.text)["version"] == 2


RELATION = f"<{DCT}relation>"


def _blank_structure(kind: str, size: int) -> tuple[str, str]:
    """(the blank node the dataset links to, the statements of a blank-node structure)."""
    if kind == "chain":  # written flat: no nesting for the parser's depth limit to see
        lines = [f"_:b{i} {RELATION} _:b{i + 1} ." for i in range(size)]
        return "_:b0", "\n".join([*lines, f'_:b{size} <{DCT}title> "end" .'])
    if kind == "clique":
        edges = [f"_:b{i} {RELATION} _:b{j} ." for i in range(size) for j in range(size) if i != j]
        return "_:b0", "\n".join(edges)
    if kind == "two-rings":
        half = size // 2
        ring = [f"_:{n}{i} {RELATION} _:{n}{(i + 1) % half} ." for n in "ac" for i in range(half)]
        return "_:x", "\n".join([*ring, f"_:x {RELATION} _:a0 .", f"_:x {RELATION} _:c0 ."])
    raise ValueError(kind)


BLANK_BOMBS = {"chain": ("chain", 2_000), "clique": ("clique", 30), "two-rings": ("two-rings", 200)}


@pytest.mark.parametrize(("kind", "size"), list(BLANK_BOMBS.values()), ids=list(BLANK_BOMBS))
def test_blank_node_structures_that_cannot_be_labelled_cheaply_are_refused(
    node: RunningNode, kind: str, size: int
) -> None:
    """Each of these took the node's stack (a 500) or minutes of CPU before a verdict."""
    head, statements = _blank_structure(kind, size)
    body = dataset_turtle(f"bomb-{kind}", extra=f"; {RELATION} {head}") + statements + "\n"
    reply = node.publish(body)
    assert reply.status_code == 400, reply.text[:300]
    problem = reply.json()
    assert problem["type"].endswith("/blank-nodes-not-canonical"), problem
    assert [error["field"] for error in problem["errors"]] == ["body"]


def test_many_alike_blank_nodes_are_refused_and_few_are_signed(node: RunningNode) -> None:
    def alike(count: int, slug: str) -> str:
        links = " ; ".join(f'{RELATION} [ <{DCT}title> "CSV" ]' for _ in range(count))
        return dataset_turtle(slug, extra=f"; {links}")

    refused = node.publish(alike(100, "alike-many"))
    assert refused.status_code == 400, refused.text[:300]
    assert refused.json()["type"].endswith("/blank-nodes-not-canonical")
    kept = node.publish(alike(3, "alike-few"))
    assert kept.status_code == 201, kept.text[:300]
    proof = node.client.get(f"/catalogue/datasets/{kept.json()['id']}/proof")
    assert proof.status_code == 200


def test_a_blank_node_tree_as_deep_as_the_limit_is_published(node: RunningNode) -> None:
    head, statements = _blank_structure("chain", 60)
    reply = node.publish(dataset_turtle("chain-ok", extra=f"; {RELATION} {head}") + statements + "\n")
    assert reply.status_code == 201, reply.text[:300]


RESERVED = {
    "dataset-named-like-the-records-graph": ("urn:sluis:records", ""),
    "dataset-named-like-a-record-graph": ("urn:sluis:record:0123456789abcdef01234567", ""),
    "statements-about-a-version-node": (
        "",
        "; <http://purl.org/dc/terms/relation> <urn:sluis:record:0123456789abcdef01234567:version:1> .\n"
        "<urn:sluis:record:0123456789abcdef01234567:version:1> <https://w3id.org/sluis/ns#deleted> true",
    ),
    "a-link-to-the-history-graph": ("", "; <http://purl.org/dc/terms/source> <urn:sluis:history>"),
}


@pytest.mark.parametrize(("dataset", "extra"), list(RESERVED.values()), ids=list(RESERVED))
def test_the_stores_own_names_are_refused_in_records(node: RunningNode, dataset: str, extra: str) -> None:
    """The store names its graphs and version nodes ``urn:sluis:record…``, ``urn:sluis:history``…;
    in a record they read, to a SPARQL reader, as the node's own statements about them."""
    body = dataset_turtle("reserved", extra=extra)
    if dataset:
        body = body.replace(dataset_iri("reserved"), dataset)
    reply = node.publish(body)
    assert reply.status_code == 400, reply.text[:300]
    assert reply.json()["type"].endswith("/reserved-iri")
