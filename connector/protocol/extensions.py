"""Members our DSP messages carry that DSP 2025-1 has no field for.

They are absolute IRIs in the Sluis namespace, so every JSON-LD processor keeps them and the
official schemas allow them; ``docs/protocol.md`` lists them.
"""

from __future__ import annotations

from vocab.namespaces import SLUIS

EXT_PURPOSE = f"{SLUIS}purpose"
EXT_COMPUTE_SITE = f"{SLUIS}computeSite"
EXT_JOB_ID = f"{SLUIS}jobId"
EXT_CONSUMER_PROOF = f"{SLUIS}consumerProof"
#: The agreement a ``ContractNegotiationTerminationMessage`` on a FINALIZED negotiation ends (DSP
#: 2025-1 has no message that ends an agreement; FINALIZED is final there).
EXT_AGREEMENT_TERMINATED = f"{SLUIS}agreementTerminated"
#: The protocol extensions a party supports, listed in its ContractRequestMessage, its catalog's
#: DataService and its ``/.well-known/dspace-version`` entry.
EXT_EXTENSIONS = f"{SLUIS}extensions"

#: The signed-agreement extension: the provider signs the agreement (``proof``, defined in our
#: JSON-LD context so processors keep it) and the consumer returns its counter-signature in
#: :data:`EXT_CONSUMER_PROOF`. Required only when both sides listed it; a plain DSP 2025-1 peer
#: negotiates without it.
SIGNED_AGREEMENT = f"{SLUIS}signedAgreement"

#: The extensions this connector supports.
SUPPORTED_EXTENSIONS = (SIGNED_AGREEMENT,)


def listed_extensions(body: object) -> frozenset[str]:
    """The extensions a message lists that we support too (anything else is ignored)."""
    listed = body.get(EXT_EXTENSIONS) if isinstance(body, dict) else None
    values = listed if isinstance(listed, list) else [listed]
    return frozenset(v for v in values if isinstance(v, str) and v in SUPPORTED_EXTENSIONS)
