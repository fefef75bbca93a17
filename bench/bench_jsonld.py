"""How fast is offline JSON-LD on DSP messages, and how much does the compact-form fast path save?

Prints, per message kind, operations per second for ``expand``, ``compact`` (back to the DSP
context), ``to_graph`` and the ``is_dsp_compact`` check, and the ratio fast-path / expansion.

    python bench/bench_jsonld.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from vocab import jsonld

BASE = "https://provider.example/dsp/"

MESSAGES: dict[str, dict[str, Any]] = {
    "CatalogRequestMessage": {
        "@context": [jsonld.DSP_CONTEXT],
        "@type": "CatalogRequestMessage",
        "filter": [],
    },
    "ContractRequestMessage": {
        "@context": [jsonld.DSP_CONTEXT],
        "@type": "ContractRequestMessage",
        "consumerPid": "urn:uuid:0b3e6f1c-5f8e-4d5c-9a52-3a7f0c1d2e01",
        "callbackAddress": "https://consumer.example/dsp/callback",
        "offer": {
            "@type": "Offer",
            "@id": "urn:uuid:6bcea82e-c509-443d-ba8c-8eef25984c07",
            "target": "urn:uuid:3dd1add8-4d2d-569e-d634-8394a8836a88",
            "permission": [
                {
                    "action": "use",
                    "constraint": [
                        {
                            "leftOperand": "dateTime",
                            "operator": "lteq",
                            "rightOperand": "2026-12-31T00:00:00Z",
                        },
                        {"leftOperand": "purpose", "operator": "isA", "rightOperand": "ai-training"},
                    ],
                }
            ],
        },
    },
    "TransferRequestMessage": {
        "@context": [jsonld.DSP_CONTEXT],
        "@type": "TransferRequestMessage",
        "consumerPid": "urn:uuid:32541fe6-c580-409e-85a8-8a9a32fbe833",
        "agreementId": "urn:uuid:e8dc8655-44c2-46ef-b701-4cffdc2faa44",
        "format": "HttpData-PULL",
        "callbackAddress": "https://consumer.example/dsp/callback",
    },
    "Catalog": {
        "@context": [jsonld.DSP_CONTEXT],
        "@id": "urn:uuid:3afeadd8-ed2d-569e-d634-8394a8836d57",
        "@type": "Catalog",
        "participantId": "did:web:provider.example",
        "service": [
            {
                "@id": "urn:uuid:4aa2dcc8",
                "@type": "DataService",
                "endpointURL": "https://provider.example/dsp",
            }
        ],
        "dataset": [
            {
                "@id": f"urn:uuid:dataset-{n}",
                "@type": "Dataset",
                "hasPolicy": [
                    {
                        "@id": f"urn:uuid:offer-{n}",
                        "@type": "Offer",
                        "permission": [
                            {
                                "action": "use",
                                "constraint": [
                                    {"leftOperand": "spatial", "operator": "eq", "rightOperand": "EU"}
                                ],
                            }
                        ],
                    }
                ],
                "distribution": [
                    {"@type": "Distribution", "format": "HttpData-PULL", "accessService": "urn:uuid:4aa2dcc8"}
                ],
            }
            for n in range(10)
        ],
    },
}


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second, measured over about ``seconds`` after one warm-up call."""
    operation()
    count, started = 0, time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        for _ in range(10):
            operation()
        count += 10
        elapsed = time.perf_counter() - started
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs (< 60 s in total)")
    args = parser.parse_args()
    seconds = 0.4 if args.quick else 3.0

    print(
        f"{'message':<24}{'expand/s':>10}{'compact/s':>11}{'to_graph/s':>12}"
        f"{'fast check/s':>14}{'fast/expand':>13}"
    )
    for name, message in MESSAGES.items():
        assert jsonld.is_dsp_compact(message), name
        expand_rate = rate(partial(jsonld.expand, message, base=BASE), seconds)
        compact_rate = rate(partial(jsonld.compact, message, jsonld.DSP_CONTEXT, base=BASE), seconds)
        graph_rate = rate(partial(jsonld.to_graph, message, base=BASE), seconds)
        check_rate = rate(partial(jsonld.is_dsp_compact, message), seconds)
        print(
            f"{name:<24}{expand_rate:>10.0f}{compact_rate:>11.0f}{graph_rate:>12.0f}"
            f"{check_rate:>14.0f}{check_rate / expand_rate:>12.0f}x"
        )


if __name__ == "__main__":
    main()
