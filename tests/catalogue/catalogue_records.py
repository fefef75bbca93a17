"""DCAT-AP 3 records for the catalogue tests, written as a publisher would send them."""

from __future__ import annotations

PUBLISHER = "https://data.example.eu/org/tso"
OTHER_PUBLISHER = "https://data.example.eu/org/statistics-office"
EU = "http://publications.europa.eu/resource/authority/"

PREFIXES = """@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix vcard: <http://www.w3.org/2006/vcard/ns#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix healthdcatap: <http://healthdataportal.eu/ns/health#> .
"""


def dataset_iri(slug: str) -> str:
    return f"https://data.example.eu/dataset/{slug}"


def dataset_turtle(
    slug: str,
    *,
    title: str = "Hourly electricity grid load",
    description: str = "Hourly load on the transmission grid, per bidding zone.",
    publisher: str = PUBLISHER,
    publisher_name: str = "Example Transmission System Operator",
    theme: str = "ENER",
    file_type: str = "CSV",
    country: str = "NLD",
    keywords: tuple[str, ...] = ("electricity", "grid"),
    byte_size: int = 1048576,
    extra: str = "",
    kind: str = "dcat:Dataset",
) -> str:
    """One dataset with one distribution, its publisher and contact point (valid DCAT-AP 3)."""
    iri = dataset_iri(slug)
    words = " , ".join(f'"{word}"@en' for word in keywords)
    return (
        PREFIXES
        + f"""
<{iri}> a {kind} ;
    dct:title "{title}"@en ;
    dct:description "{description}"@en ;
    dct:identifier "{slug}" ;
    dct:publisher <{publisher}> ;
    dcat:contactPoint [ a vcard:Kind ; vcard:fn "Open data desk" ;
                        vcard:hasEmail <mailto:opendata@example.eu> ] ;
    dcat:theme <{EU}data-theme/{theme}> ;
    dcat:keyword {words} ;
    dct:spatial <{EU}country/{country}> ;
    dct:accessRights <{EU}access-right/PUBLIC> ;
    dct:issued "2024-01-15"^^xsd:date ;
    dct:modified "2025-02-01T10:00:00Z"^^xsd:dateTime ;
    dcat:distribution <{iri}/csv> {extra} .

<{iri}/csv> a dcat:Distribution ;
    dct:title "Download"@en ;
    dcat:accessURL <https://files.example.eu/{slug}.data> ;
    dct:format <{EU}file-type/{file_type}> ;
    dct:license <{EU}licence/CC_BY_4_0> ;
    dcat:byteSize "{byte_size}"^^xsd:nonNegativeInteger .

<{publisher}> a foaf:Agent ;
    foaf:name "{publisher_name}"@en .
"""
    )


def invalid_turtle(slug: str) -> str:
    """A dataset missing its mandatory title and description, with a distribution lacking an access URL."""
    iri = dataset_iri(slug)
    return (
        PREFIXES
        + f"""
<{iri}> a dcat:Dataset ;
    dct:publisher <{PUBLISHER}> ;
    dcat:distribution <{iri}/csv> .

<{iri}/csv> a dcat:Distribution ;
    dct:format <{EU}file-type/CSV> .

<{PUBLISHER}> a foaf:Agent ; foaf:name "Example Transmission System Operator"@en .
"""
    )
