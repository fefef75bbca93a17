"""Identity throughput: Data Integrity proofs (eddsa-jcs-2022) and self-issued DSP tokens.

Prints operations per second and how each compares with the bare Ed25519 sign+verify it is built
on, so the cost of canonicalisation and JOSE handling is visible. Usage:

    python bench/bench_identity.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from connector.identity import (
    InMemoryReplayGuard,
    KeyPair,
    StaticDidResolver,
    TrustedAuthority,
    did_document,
    issue_credential,
    issue_token,
    make_agreement_bundle,
    sign_agreement,
    sign_document,
    verify_agreement,
    verify_credential,
    verify_document,
    verify_token,
)
from connector.identity.proofs import forget_verified_signatures

NOW = datetime.now(UTC)


def rate(label: str, operation: Callable[[], object], seconds: float) -> float:
    operation()  # warm up caches and imports
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        operation()
        count += 1
    per_second = count / (time.perf_counter() - started)
    print(f"{label:<60} {per_second:>10,.0f} /s")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (< 60 s in total)")
    seconds = 1.0 if parser.parse_args().quick else 5.0

    authority, provider, consumer = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    authority_did, provider_did, consumer_did = (
        "did:web:authority.example.eu",
        "did:web:hospital.example.nl",
        "did:web:ai-factory.example.eu",
    )
    trusted = TrustedAuthority(authority_did, authority.public_multibase)
    permit = issue_credential(
        authority,
        authority_did,
        consumer_did,
        "EHDSDataPermit",
        {
            "permitId": "NL-2026-1",
            "purposes": ["https://w3id.org/sluis/purpose/scientific-research"],
            "datasets": ["urn:uuid:dataset-1"],
            "healthDataAccessBody": "did:web:hdab.example.nl",
        },
        NOW - timedelta(days=1),
        NOW + timedelta(days=30),
    )
    unsigned = {key: value for key, value in permit.items() if key != "proof"}
    message = b"x" * 64

    print("Ed25519 baseline")
    baseline = rate(
        "  raw Ed25519 sign+verify (64-byte message)",
        lambda: provider.public_key.verify(provider.sign(message), message),
        seconds,
    )

    print("Data Integrity, eddsa-jcs-2022")
    method = f"{authority_did}#key-1"
    signed = sign_document(unsigned, authority, method)
    public_key = authority.public_key

    def sign_verify_uncached() -> None:
        forget_verified_signatures()
        verify_document(sign_document(unsigned, authority, method), lambda _m: public_key)

    def verify_uncached() -> None:
        forget_verified_signatures()
        verify_document(signed, lambda _m: public_key)

    sign_verify = rate("  credential sign+verify", sign_verify_uncached, seconds)
    rate("  credential verify (signature not seen before)", verify_uncached, seconds)
    rate(
        "  credential verify (signature seen before)",
        lambda: verify_document(signed, lambda _m: public_key),
        seconds,
    )
    forget_verified_signatures()
    rate(
        "  verify_credential (shape, validity, pinned key; cached)",
        lambda: verify_credential(permit, trusted, NOW),
        seconds,
    )

    agreement = {
        "@id": "urn:uuid:agreement-1",
        "@type": "Agreement",
        "target": "urn:uuid:dataset-1",
        "assigner": provider_did,
        "assignee": consumer_did,
        "timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "purpose",
                        "operator": "isA",
                        "rightOperand": "https://w3id.org/sluis/purpose/scientific-research",
                    },
                    {"leftOperand": "count", "operator": "lteq", "rightOperand": 100},
                ],
            }
        ],
    }
    documents = [did_document(provider_did, provider), did_document(consumer_did, consumer)]

    def agreement_round() -> None:
        by_provider = sign_agreement(agreement, provider, f"{provider_did}#key-1")
        both = sign_agreement(by_provider, consumer, f"{consumer_did}#key-1")
        result = verify_agreement(make_agreement_bundle(both, documents))
        assert result.valid, result.reason

    agreements = rate("  agreement sign + counter-sign + bundle verify", agreement_round, seconds)

    print("Self-issued tokens (JWT, Ed25519, with one credential; DID document pinned)")
    resolver = StaticDidResolver([did_document(consumer_did, consumer)])
    guard = InMemoryReplayGuard()
    audience = provider_did

    def token_round(credentials: list[dict[str, object]]) -> None:
        token = issue_token(consumer, consumer_did, audience, credentials, now=NOW)
        verify_token(token, audience, resolver, guard, trusted, NOW)

    bare = rate("  issue+verify, no credential", lambda: token_round([]), seconds)
    tokens = rate("  issue+verify, with EHDS permit", lambda: token_round([permit]), seconds)

    print("Ratios")
    print(f"  raw Ed25519 / eddsa-jcs-2022 sign+verify        {baseline / sign_verify:6.1f}x")
    print(f"  raw Ed25519 / JWT issue+verify (no credential)   {baseline / bare:6.1f}x")
    print(f"  JWT without / with a credential                  {bare / tokens:6.1f}x")
    print(f"  credential sign+verify / agreement round         {sign_verify / agreements:6.1f}x")


if __name__ == "__main__":
    main()
