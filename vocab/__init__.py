"""The shared language of Sluis: namespaces, JSON-LD contexts and the offline document loader,
RDF parsing with limits, SHACL shapes for DCAT-AP 3 / HVD / HealthDCAT-AP, SKOS subsets of the EU
controlled vocabularies, the purpose and place hierarchies, and DSP 2025-1 message types.

Nothing here touches the network: every context, shape and vocabulary ships in this package.
Import the submodule you need (``vocab.jsonld``, ``vocab.rdfio``, ``vocab.shacl``,
``vocab.hierarchy``, ``vocab.dsp``); this module re-exports only the namespaces. Importing
it installs the offline document loader for pyld and rdflib, so no JSON-LD path anywhere in the
process can fetch a context, and turns rdflib's ill-typed-literal warnings into one structured line
without a traceback (:mod:`vocab.literal_warnings`).
"""

import vocab.jsonld  # installs the offline loader on import
import vocab.literal_warnings  # noqa: F401  (rdflib's ill-typed-literal warnings without tracebacks)
from vocab.namespaces import (
    ADMS,
    DCAT,
    DCATAP,
    DCT,
    DQV,
    DSPACE,
    FOAF,
    HEALTHDCATAP,
    LOCN,
    ODRL,
    PROV,
    SKOS,
    SLUIS,
    SPDX,
    VCARD,
    XSD,
    bind_prefixes,
)

__all__ = [
    "ADMS",
    "DCAT",
    "DCATAP",
    "DCT",
    "DQV",
    "DSPACE",
    "FOAF",
    "HEALTHDCATAP",
    "LOCN",
    "ODRL",
    "PROV",
    "SKOS",
    "SLUIS",
    "SPDX",
    "VCARD",
    "XSD",
    "bind_prefixes",
]
