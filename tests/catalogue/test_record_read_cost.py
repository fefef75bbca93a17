"""What an anonymous read of a record costs is bounded, whatever the record holds.

The attacker publishes (within the caps) a record with 45,000 keywords and one with 1,000
distributions, then reads them in every syntax, as a page and through the catalogue listing.
Each answer must be complete and correct, and the work bounded in ways that do not depend on
timing: a second read is served from the cache (the renderer's counter does not move), the page
shows at most so many values and says how many more there are, and a listing page holds at most
so many statements while every record is still listed exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic

from catalogue.api import CatalogueNode, create_catalogue_app
from catalogue.config import CatalogueConfig
from catalogue.pages.bounded import MAX_VALUES
from catalogue.pages.record import title_in
from catalogue.publish import record_graph_of
from catalogue.render import (
    MAX_PAGE_STATEMENTS,
    ByteLru,
    CacheKey,
    NotXmlError,
    RecordRenderer,
    stored_triples,
)
from catalogue.store import RecordVersion
from sluis.servers import free_port, serve_in_thread
from tests.catalogue.catalogue_records import EU, PUBLISHER, dataset_iri, dataset_turtle
from vocab.namespaces import DCAT, DCT, HYDRA, RDFS, XSD
from vocab.rdfio import JSON_LD, N_TRIPLES, RDF_XML, TURTLE, parse_rdf

SEED = Path(__file__).resolve().parents[2] / "catalogue" / "seed"
SEEDS = sorted(SEED.glob("*.ttl"))[:6]
KEYWORDS = 45_000
DISTRIBUTIONS = 1_000
FORMATS = (TURTLE, N_TRIPLES, RDF_XML, JSON_LD)
SUFFIX = {TURTLE: ".ttl", N_TRIPLES: ".nt", RDF_XML: ".rdf", JSON_LD: ".jsonld"}


@dataclass
class Served:
    url: str
    node: CatalogueNode
    renderer: RecordRenderer
    client: httpx.Client
    token: str
    ids: dict[str, str]

    def publish(self, body: str, token: str | None = None) -> str:
        answer = self.client.post(
            "/catalogue/datasets",
            content=body.encode("utf-8"),
            headers={"Content-Type": TURTLE, "Authorization": f"Bearer {token or self.token}"},
        )
        assert answer.status_code == 201, answer.text
        record_id: str = answer.json()["id"]
        return record_id


def many_distributions(slug: str, count: int) -> str:
    iri = dataset_iri(slug)
    links = " , ".join(f"<{iri}/d{n}>" for n in range(count))
    parts = [
        dataset_turtle(slug, extra=f", {links}"),
        *(
            f"<{iri}/d{n}> a dcat:Distribution ; dct:title \"Part {n}\"@en ;\n"
            f"    dcat:accessURL <https://files.example.eu/{slug}/{n}.csv> ;\n"
            f"    dct:format <{EU}file-type/CSV> ; dct:license <{EU}licence/CC_BY_4_0> .\n"
            for n in range(count)
        ),
    ]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    config = CatalogueConfig(public_url=f"http://127.0.0.1:{port}")
    app = create_catalogue_app(tmp_path_factory.mktemp("node"), config)
    node: CatalogueNode = app.state.catalogue
    token = node.tokens.create(PUBLISHER).token
    with serve_in_thread(app, port=port) as url, httpx.Client(base_url=url, timeout=300) as client:
        here = Served(url, node, app.state.record_renderer, client, token, {})
        here.ids["keywords"] = here.publish(
            dataset_turtle("many-keywords", keywords=tuple(f"word {n}" for n in range(KEYWORDS)))
        )
        here.ids["distributions"] = here.publish(many_distributions("many-parts", DISTRIBUTIONS - 1))
        for path in SEEDS:
            text = path.read_text(encoding="utf-8")
            publisher = next(parse_rdf(text, TURTLE, "urn:seed").objects(None, DCT.publisher))
            here.ids[path.stem] = here.publish(text, node.tokens.create(str(publisher)).token)
        yield here


def expected(served: Served, record_id: str) -> Graph:
    """What rdflib makes of the stored record and its quality statements (the old answer)."""
    record = served.node.store.current(record_id)
    assert record is not None
    return record_graph_of(record, with_quality=False) + served.node.publisher.quality_graph(record)


def plain_strings(graph: Graph) -> Graph:
    """RDF 1.1: ``"x"^^xsd:string`` and ``"x"`` are one term; rdflib keeps them apart."""
    out = Graph()
    for s, p, o in graph:
        if isinstance(o, Literal) and o.datatype == XSD.string:
            o = Literal(str(o))
        out.add((s, p, o))
    return out


@pytest.mark.parametrize("media_type", FORMATS)
def test_seed_records_read_as_the_same_graph_in_every_syntax(served: Served, media_type: str) -> None:
    for path in SEEDS:
        record_id = served.ids[path.stem]
        answer = served.client.get(f"/catalogue/datasets/{record_id}{SUFFIX[media_type]}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith(media_type)
        got = parse_rdf(answer.content, media_type, f"{served.url}/")
        assert isomorphic(plain_strings(got), plain_strings(expected(served, record_id))), path.name


@pytest.mark.parametrize("media_type", FORMATS)
def test_a_record_of_45000_keywords_is_served_whole_and_rendered_once(
    served: Served, media_type: str
) -> None:
    record_id = served.ids["keywords"]
    path = f"/catalogue/datasets/{record_id}{SUFFIX[media_type]}"
    first = served.client.get(path)
    assert first.status_code == 200, first.text
    renders = served.renderer.renders
    second = served.client.get(path)
    assert second.status_code == 200
    assert served.renderer.renders == renders, "the second read was rendered again"
    assert second.content == first.content
    if media_type == JSON_LD:  # reading 45,000 values back through the JSON-LD algorithms is slow
        assert first.content.count(b'"word ') == KEYWORDS
        return
    got = parse_rdf(first.content, media_type, f"{served.url}/", max_statements=100_000)
    keywords = {str(k) for k in got.objects(URIRef(dataset_iri("many-keywords")), DCAT.keyword)}
    assert keywords == {f"word {n}" for n in range(KEYWORDS)}
    if media_type in (TURTLE, RDF_XML):
        assert isomorphic(plain_strings(got), plain_strings(expected(served, record_id)))


def test_a_new_version_is_rendered_anew_never_served_stale(served: Served) -> None:
    record_id = served.publish(dataset_turtle("versioned"))
    before = served.client.get(f"/catalogue/datasets/{record_id}.ttl")
    text = dataset_turtle("versioned", title="A title of the second version")
    answer = served.client.put(
        f"/catalogue/datasets/{record_id}",
        content=text,
        headers={"Content-Type": TURTLE, "Authorization": f"Bearer {served.token}"},
    )
    assert answer.status_code == 200, answer.text
    renders = served.renderer.renders
    after = served.client.get(f"/catalogue/datasets/{record_id}.ttl")
    assert served.renderer.renders == renders + 1
    assert b"A title of the second version" in after.content
    assert b"A title of the second version" not in before.content
    assert after.headers["sluis-record-version"] == str(int(before.headers["sluis-record-version"]) + 1)
    old = served.client.get(f"/catalogue/datasets/{record_id}/versions/1.ttl")
    assert old.status_code == 200
    assert old.content == before.content


def test_the_page_of_a_large_record_shows_a_bounded_part_and_says_how_much_more(served: Served) -> None:
    page = served.client.get(f"/pages/catalogue/datasets/{served.ids['keywords']}")
    assert page.status_code == 200
    shown = set(re.findall(r"word \d+", page.text))
    assert len(shown) == MAX_VALUES
    assert f"and {KEYWORDS - MAX_VALUES} more" in page.text
    assert f"/catalogue/datasets/{served.ids['keywords']}.ttl" in page.text

    page = served.client.get(f"/pages/catalogue/datasets/{served.ids['distributions']}")
    assert page.status_code == 200
    rows = set(re.findall(r"many-parts/\d+\.csv", page.text))
    assert MAX_VALUES - 1 <= len(rows) <= MAX_VALUES  # the cap, whichever of them came first
    assert f"and {DISTRIBUTIONS - MAX_VALUES} more distributions" in page.text


@pytest.mark.parametrize("media_type", [TURTLE, JSON_LD, RDF_XML])
def test_catalogue_pages_hold_at_most_the_statement_cap_and_list_every_record_once(
    served: Served, media_type: str
) -> None:
    listed: list[str] = []
    inlined: set[str] = set()
    url: str | None = "/catalogue/catalog?page_size=1000"
    if media_type == RDF_XML:
        url = "/catalogue/catalog?page_size=3"
    while url is not None:
        answer = served.client.get(url, headers={"Accept": media_type})
        assert answer.status_code == 200, answer.text
        graph = parse_rdf(answer.content, media_type, f"{served.url}/", max_statements=100_000)
        assert len(graph) <= MAX_PAGE_STATEMENTS
        catalog = URIRef(f"{served.url}/catalogue/catalog")
        for record in graph.objects(catalog, DCAT.record):
            listed.append(str(record).rsplit("/", 1)[-1])
            if graph.value(record, RDFS.seeAlso) is None:
                inlined.add(str(record).rsplit("/", 1)[-1])
        views = list(graph.objects(catalog, HYDRA.view))
        following = graph.value(views[0], HYDRA.next)
        url = str(following).removeprefix(served.url) if following is not None else None
    assert len(listed) == len(set(listed))
    assert set(served.ids.values()) <= set(listed)
    assert served.ids["keywords"] not in inlined  # too large to inline: linked instead
    assert served.ids[SEEDS[1].stem] in inlined


def test_ntriples_listing_still_carries_every_record_as_stored(served: Served) -> None:
    answer = served.client.get("/catalogue/catalog?page_size=1000", headers={"Accept": N_TRIPLES})
    assert answer.status_code == 200
    count = sum(1 for _ in ox.parse(answer.content, ox.RdfFormat.N_TRIPLES))
    assert count > KEYWORDS  # harvesters get the records whole


def _version(content: str) -> RecordVersion:
    return RecordVersion(
        "x", 1, "https://data.example.eu/dataset/x", datetime.now(UTC), False, PUBLISHER, "local", content
    )


def test_a_record_with_a_character_xml_cannot_carry_has_no_rdf_xml_form() -> None:
    content = '<https://data.example.eu/dataset/x> <http://purl.org/dc/terms/title> "a\\u0001b" .\n'
    renderer = RecordRenderer(lambda _: Graph())
    with pytest.raises(NotXmlError):
        renderer.body(_version(content), RDF_XML)
    turtle = renderer.body(_version(content), TURTLE)
    values = {quad.object.value for quad in ox.parse(turtle, ox.RdfFormat.TURTLE)}
    assert values == {"a\x01b"}


def test_the_cache_is_bounded_in_bytes_least_recently_used_first() -> None:
    cache = ByteLru(max_bytes=10)

    def key(n: int) -> CacheKey:
        return CacheKey("r", n, "", 0, 0, TURTLE)

    cache.put(key(1), b"1234")
    cache.put(key(2), b"1234")
    assert cache.get(key(1)) == b"1234"  # 1 is now the most recently used
    cache.put(key(3), b"1234")
    assert cache.get(key(2)) is None
    assert cache.get(key(1)) is not None
    assert cache.size <= 10
    cache.put(key(4), b"x" * 11)  # larger than the whole cache: served, never kept
    assert cache.get(key(4)) is None
    assert cache.size <= 10


def test_the_signed_document_of_a_large_record_is_made_once(served: Served) -> None:
    path = f"/catalogue/datasets/{served.ids['distributions']}/proof"
    first = served.client.get(path)
    assert first.status_code == 200, first.text
    renders = served.renderer.renders
    second = served.client.get(path)
    assert served.renderer.renders == renders
    assert second.json() == first.json()
    assert "proof" in first.json()


def test_search_pages_in_another_language_read_only_the_titles_of_large_hits(served: Served) -> None:
    record = served.node.store.current(served.ids["keywords"])
    assert record is not None
    assert title_in(record, "nl") == ("Hourly electricity grid load", "en")
    page = served.client.get("/pages/catalogue/search?q=grid", headers={"Accept-Language": "nl"})
    assert page.status_code == 200
    assert "Hourly electricity grid load" in page.text


def test_blank_nodes_of_separately_written_texts_stay_apart() -> None:
    text = "_:b <http://purl.org/dc/terms/title> \"same label, another node\" .\n"
    assert len(stored_triples(text, text, text)) == 3
    assert len(stored_triples(text + text)) == 1
