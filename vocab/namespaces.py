"""Namespaces of the vocabularies Sluis speaks, as rdflib ``Namespace`` constants.

One place for every IRI prefix, so that a typo in a namespace is a single fix and every
package (policies, connector, catalogue) agrees on the same terms.
"""

from __future__ import annotations

from typing import Final

from rdflib import Graph, Namespace

DCAT: Final = Namespace("http://www.w3.org/ns/dcat#")
DCT: Final = Namespace("http://purl.org/dc/terms/")
DCATAP: Final = Namespace("http://data.europa.eu/r5r/")
# HealthDCAT-AP: the namespace and the release we validate against are pinned here only.
HEALTHDCATAP_RELEASE: Final = "release-8"
HEALTHDCATAP: Final = Namespace("http://healthdataportal.eu/ns/health#")
ODRL: Final = Namespace("http://www.w3.org/ns/odrl/2/")
DSPACE: Final = Namespace("https://w3id.org/dspace/2025/1/")
DQV: Final = Namespace("http://www.w3.org/ns/dqv#")
PROV: Final = Namespace("http://www.w3.org/ns/prov#")
SKOS: Final = Namespace("http://www.w3.org/2004/02/skos/core#")
FOAF: Final = Namespace("http://xmlns.com/foaf/0.1/")
VCARD: Final = Namespace("http://www.w3.org/2006/vcard/ns#")
SPDX: Final = Namespace("http://spdx.org/rdf/terms#")
ADMS: Final = Namespace("http://www.w3.org/ns/adms#")
LOCN: Final = Namespace("http://www.w3.org/ns/locn#")
SH: Final = Namespace("http://www.w3.org/ns/shacl#")
HYDRA: Final = Namespace("http://www.w3.org/ns/hydra/core#")
SEC: Final = Namespace("https://w3id.org/security#")
CRED: Final = Namespace("https://www.w3.org/2018/credentials#")
REPORT: Final = Namespace("https://w3id.org/force/compliance-report#")
XSD: Final = Namespace("http://www.w3.org/2001/XMLSchema#")
RDF: Final = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
RDFS: Final = Namespace("http://www.w3.org/2000/01/rdf-schema#")
OWL: Final = Namespace("http://www.w3.org/2002/07/owl#")

# EU controlled vocabularies (Publications Office authority tables).
EU_AUTHORITY: Final = "http://publications.europa.eu/resource/authority/"
EU_DATA_THEME: Final = Namespace(EU_AUTHORITY + "data-theme/")
EU_FILE_TYPE: Final = Namespace(EU_AUTHORITY + "file-type/")
EU_ACCESS_RIGHT: Final = Namespace(EU_AUTHORITY + "access-right/")
EU_FREQUENCY: Final = Namespace(EU_AUTHORITY + "frequency/")
EU_LICENCE: Final = Namespace(EU_AUTHORITY + "licence/")
EU_LANGUAGE: Final = Namespace(EU_AUTHORITY + "language/")
EU_COUNTRY: Final = Namespace(EU_AUTHORITY + "country/")
EU_CORPORATE_BODY: Final = Namespace(EU_AUTHORITY + "corporate-body/")

# Sluis's own terms: left operands an AI Factory needs, trust indicators, audit terms.
SLUIS: Final = Namespace("https://w3id.org/sluis/ns#")

PREFIXES: Final[dict[str, Namespace]] = {
    "dcat": DCAT,
    "dct": DCT,
    "dcatap": DCATAP,
    "healthdcatap": HEALTHDCATAP,
    "odrl": ODRL,
    "dspace": DSPACE,
    "dqv": DQV,
    "prov": PROV,
    "skos": SKOS,
    "foaf": FOAF,
    "vcard": VCARD,
    "spdx": SPDX,
    "adms": ADMS,
    "locn": LOCN,
    "sh": SH,
    "hydra": HYDRA,
    "sec": SEC,
    "report": REPORT,
    "xsd": XSD,
    "rdfs": RDFS,
    "owl": OWL,
    "sluis": SLUIS,
}


def bind_prefixes(graph: Graph) -> None:
    """Bind our usual prefixes on an rdflib graph so serialised Turtle is readable."""
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace, override=True, replace=True)
