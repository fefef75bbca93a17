"""Pages are in English; a record's title is shown in the reader's language when the record has it."""

from __future__ import annotations

import httpx

from sluis import demo
from tests.pages.conftest import Space

RECORD = """\
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
<https://data.sluis.example/dataset/grid-congestion> a dcat:Dataset ;
  dct:title "Grid congestion areas"@en, "Gebieden met netcongestie"@nl ;
  dct:description "Where the grid is full."@en, "Waar het net vol is."@nl ;
  dct:publisher <{publisher}> ;
  dct:accessRights <http://publications.europa.eu/resource/authority/access-right/PUBLIC> .
<{publisher}> a foaf:Agent ; foaf:name "Demo grid operator"@en .
"""


def test_titles_follow_the_readers_language_where_the_record_has_it(space: Space) -> None:
    published = httpx.post(
        f"{space.urls.catalogue}/catalogue/datasets",
        content=RECORD.format(publisher=demo.PROVIDER_PUBLISHER).encode(),
        headers={"Content-Type": "text/turtle", "Authorization": f"Bearer {space.publisher_token}"},
        timeout=60,
    )
    assert published.status_code == 201, published.text
    record = published.json()["id"]
    dutch = {"Accept": "text/html", "Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"}
    english = {"Accept": "text/html", "Accept-Language": "en-GB"}

    page = httpx.get(f"{space.urls.catalogue}/catalogue/datasets/{record}", headers=dutch)
    assert '<h1 lang="nl">Gebieden met netcongestie</h1>' in page.text
    assert "Waar het net vol is." in page.text
    assert (
        "Grid congestion areas</h1>"
        in httpx.get(f"{space.urls.catalogue}/catalogue/datasets/{record}", headers=english).text
    )

    found = httpx.get(f"{space.urls.catalogue}/catalogue/search", params={"q": "congestion"}, headers=dutch)
    assert 'lang="nl">Gebieden met netcongestie</a>' in found.text
    assert "Search the catalogue" in found.text  # the page itself stays in English
