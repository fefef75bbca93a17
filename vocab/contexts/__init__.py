"""The JSON-LD contexts Sluis ships, and the one registry that maps their published URLs to files.

Each file here was written by us, term by term, from the specification that defines it; none is a
copy of a published file. A context URL that is not a key of :data:`CONTEXT_FILES` (or an alias in
:data:`CONTEXT_ALIASES`) is refused by the document loader in :mod:`vocab.jsonld`; nothing is ever
downloaded.

Deviations from the published files, each with its reason:

* ``dspace-2025-1.jsonld``: where the published DSP context pulls the ODRL profile in with
  ``@import`` (the Dataset and the three contract messages), ours spells the imported terms out in
  place, with the importing context's own definitions taking precedence as ``@import`` requires.
  The expansion is the same (tests compare every official example); it avoids pyld 3.3 merging
  imported contexts into its cached copy in place.

* ``odrl-2.2.jsonld``: ``neq`` maps to ``odrl:neq`` and ``industry`` to ``odrl:industry``, the IRIs
  the ODRL 2.2 vocabulary defines (the published W3C file has typos for these two terms).
* ``credentials-v2.jsonld`` and ``did-v1.jsonld`` are *subsets*: they cover the terms Sluis writes and
  reads (VC 2.0 core, Data Integrity proofs, DID documents with Multikey keys and services). A term
  outside them is dropped by JSON-LD expansion, as any undefined term is. ``multikey-v1.jsonld``
  likewise covers only ``Multikey`` with ``controller`` and ``publicKeyMultibase``; our DID context
  defines ``Multikey`` identically, so documents may name both (protected terms must agree).
* ``dcat-ap-3.0.1.jsonld`` is published under the release URL of the DCAT-AP 3.0.1 context. The
  DCAT-AP 3.0.1 *examples* name a different, example-only context (it declares the examples'
  own ``example-*`` prefixes); we do not ship that one, so the loader refuses it. The published
  release context also defines five terms ``Xsd:dateTime`` etc. that JSON-LD 1.1 processors
  reject ("term in form of IRI must expand to definition"); ours leaves them out.
* ``sluis.jsonld`` names its IRI bases ``sluis-purpose:``, ``sluis-place:`` and
  ``sluis-column:`` rather than ``purpose:`` etc., so that it can be combined with the ODRL
  context without shadowing ODRL's ``purpose`` left operand.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

DSP_CONTEXT: Final = "https://w3id.org/dspace/2025/1/context.jsonld"
DSP_ODRL_PROFILE_CONTEXT: Final = "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"
ODRL_CONTEXT: Final = "http://www.w3.org/ns/odrl.jsonld"
DCAT_AP_CONTEXT: Final = "https://semiceu.github.io/DCAT-AP/releases/3.0.1/context/dcat-ap.jsonld"
SLUIS_CONTEXT: Final = "https://w3id.org/sluis/context.jsonld"
CREDENTIALS_V2_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
DID_V1_CONTEXT: Final = "https://www.w3.org/ns/did/v1"
MULTIKEY_V1_CONTEXT: Final = "https://w3id.org/security/multikey/v1"

CONTEXT_FILES: Final[dict[str, str]] = {
    DSP_CONTEXT: "dspace-2025-1.jsonld",
    DSP_ODRL_PROFILE_CONTEXT: "dspace-2025-1-odrl-profile.jsonld",
    ODRL_CONTEXT: "odrl-2.2.jsonld",
    DCAT_AP_CONTEXT: "dcat-ap-3.0.1.jsonld",
    SLUIS_CONTEXT: "sluis.jsonld",
    CREDENTIALS_V2_CONTEXT: "credentials-v2.jsonld",
    DID_V1_CONTEXT: "did-v1.jsonld",
    MULTIKEY_V1_CONTEXT: "multikey-v1.jsonld",
}
"""Published context URL -> file in this folder. The only list of contexts Sluis knows."""

CONTEXT_ALIASES: Final[dict[str, str]] = {
    # ODRL's context is referenced with both schemes in the wild; both name the same document.
    "https://www.w3.org/ns/odrl.jsonld": ODRL_CONTEXT,
    # The DID WG's older, equivalent address of the DID v1 context.
    "https://w3id.org/did/v1": DID_V1_CONTEXT,
}
"""Other spellings of a known URL. Exact string match only: no guessing, no redirects."""


def canonical_url(url: str) -> str | None:
    """The registry key for ``url``, or ``None`` when we do not ship that context."""
    if url in CONTEXT_FILES:
        return url
    return CONTEXT_ALIASES.get(url)


@cache
def _context_text(file_name: str) -> str:
    return resources.files(__name__).joinpath(file_name).read_text(encoding="utf-8")


def context_document(url: str) -> dict[str, Any] | None:
    """A fresh parsed copy of the context document published at ``url``; ``None`` if unknown.

    A fresh copy every time, because JSON-LD processors may rewrite relative URLs inside a
    context in place.
    """
    key = canonical_url(url)
    if key is None:
        return None
    document: dict[str, Any] = json.loads(_context_text(CONTEXT_FILES[key]))
    return document


def known_context_urls() -> frozenset[str]:
    """Every URL (registry keys and aliases) the loader answers."""
    return frozenset(CONTEXT_FILES) | frozenset(CONTEXT_ALIASES)
