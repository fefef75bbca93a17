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
