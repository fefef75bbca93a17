"""Whether a harvested record may be shown as trusted, shown as untrusted, or must be quarantined.

A source is trusted *by key*: the node's configuration lists the source's DID with the public
keys its record proofs must use. From such a source a record is trusted only when a proof over
exactly the statements received verifies with one of those keys. Everything else is decided
here too, as values with their reason:

* a proof that does not verify (the record was altered, or the proof is malformed) quarantines
  the record, whatever the source;
* a trusted source's record without a proof by its key is quarantined;
* a record whose publisher the source is not allowed to speak for is quarantined;
* a record from a source nobody vouches for is kept and shown as ``untrusted``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rdflib import Graph, URIRef

from catalogue.harvest.ledger import Source
from catalogue.index import TRUST_TRUSTED, TRUST_UNTRUSTED
from catalogue.signing import did_key_lookup, verify_record
from connector.identity import ProofError, public_key_to_multibase
from vocab.namespaces import DCT

TRUST_QUARANTINED = "quarantined"


@dataclass(frozen=True)
class Verdict:
    trust: str
    reason: str = ""

    @property
    def quarantined(self) -> bool:
        return self.trust == TRUST_QUARANTINED


def judge(
    source: Source,
    trusted: Mapping[str, tuple[str, ...]],
    dataset: str,
    graph: Graph,
    proof: Any,
    statements: Sequence[str] | None = None,
) -> Verdict:
    """The verdict on one record as received from ``source`` (pure; no network)."""
    if source.publishers:
        named = sorted(str(p) for p in graph.objects(URIRef(dataset), DCT.publisher) if isinstance(p, URIRef))
        outside = [publisher for publisher in named if publisher not in source.publishers]
        if outside or not named:
            return Verdict(
                TRUST_QUARANTINED,
                f"publisher {', '.join(outside) or '(none named)'} is not one this source may publish for",
            )
    keys = trusted.get(source.did or "", ())
    if proof is None:
        if keys:
            return Verdict(
                TRUST_QUARANTINED,
                f"the source {source.did} is trusted by key, and the record carries no proof",
            )
        return Verdict(TRUST_UNTRUSTED)
    try:
        methods = verify_record(graph, dataset, proof, did_key_lookup, statements)
    except ProofError as error:
        return Verdict(TRUST_QUARANTINED, f"proof does not verify: {error.message}")
    if not keys:
        return Verdict(TRUST_UNTRUSTED)
    signers = {public_key_to_multibase(did_key_lookup(method)) for method in methods}
    if signers.isdisjoint(keys):
        return Verdict(
            TRUST_QUARANTINED,
            f"signed by {', '.join(sorted(methods))}, none of them a key trusted for {source.did}",
        )
    return Verdict(TRUST_TRUSTED)
