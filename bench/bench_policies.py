"""Decisions per second of the policy engine on a realistic offer, single core.

The offer: purpose isA scientific-research, spatial isPartOf EU, a date window, count <= N,
and an EHDS data permit held. Measures the compiled fast path (``CompiledPolicy.decide``)
and the explained path (``evaluate``: every premise recorded), each over a mix of permitted
and denied requests, and prints figures and the ratio to the targets (100,000/s without
explanation, 20,000/s with). Run: ``python bench/bench_policies.py [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from connector.policy_gate import decide
from policies import Request, Scope, World, compile_policy, evaluate, parse_policy

TARGET_FAST = 100_000
TARGET_EXPLAINED = 20_000
PURPOSE = "https://w3id.org/sluis/purpose/"
PLACE = "https://w3id.org/sluis/place/"
COUNTRY = "http://publications.europa.eu/resource/authority/country/"

OFFER = {
    "@id": "urn:offer:bench",
    "@type": "Offer",
    "permission": [
        {
            "action": "use",
            "constraint": [
                {
                    "leftOperand": "purpose",
                    "operator": "isA",
                    "rightOperand": PURPOSE + "scientific-research",
                },
                {"leftOperand": "spatial", "operator": "isPartOf", "rightOperand": PLACE + "EU"},
                {
                    "leftOperand": "dateTime",
                    "operator": "gteq",
                    "rightOperand": {"@value": "2025-01-01T00:00:00Z", "@type": "xsd:dateTime"},
                },
                {
                    "leftOperand": "dateTime",
                    "operator": "lt",
                    "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"},
                },
                {
                    "leftOperand": "count",
                    "operator": "lteq",
                    "rightOperand": {"@value": 1000, "@type": "xsd:integer"},
                },
                {"leftOperand": "sluis:credential", "operator": "eq", "rightOperand": "EHDSDataPermit"},
            ],
        }
    ],
}


def _requests() -> list[tuple[Request, World]]:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    world = World(now=now, counts={"urn:dataset:bench": 10})
    cases = []
    for purpose, place, creds in itertools.product(
        ("scientific-research", "commercial-use"),
        (COUNTRY + "NLD", PLACE + "NL-NH", COUNTRY + "USA"),
        (["EHDSDataPermit", "Membership"], ["Membership"]),
    ):
        context = {"purpose": PURPOSE + purpose, "spatial": place, "sluis:credential": creds}
        cases.append((Request("did:web:consumer.example", "read", "urn:dataset:bench", context), world))
    return cases


def _measure(
    label: str, decide: Callable[[Request, World], object], cases: list[tuple[Request, World]], seconds: float
) -> float:
    """Decisions per second of CPU time (stable when other processes share the machine)."""
    done = 0
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    deadline = wall_start + seconds
    while time.perf_counter() < deadline:
        for request, world in cases:
            decide(request, world)
        done += len(cases)
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    rate = done / cpu
    print(f"{label:<44} {done:>9} decisions, {cpu:5.2f} s CPU ({wall:5.2f} s wall) = {rate:>10,.0f} /s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test, < 60 s)")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 5.0

    started = time.perf_counter()
    policy = parse_policy(OFFER)
    compiled = compile_policy(policy)
    print(
        f"parse + compile once: {(time.perf_counter() - started) * 1000:.1f} ms "
        "(includes loading hierarchies)"
    )
    cases = _requests()
    permitted = sum(compiled.decide(r, w) for r, w in cases)
    print(f"request mix: {len(cases)} requests, {permitted} permitted, {len(cases) - permitted} denied")
    assert all(compiled.decide(r, w) == evaluate(policy, r, w).permitted for r, w in cases)

    fast = _measure("compiled decide (no explanation)", compiled.decide, cases, seconds)
    explained = _measure(
        "evaluate (full explanation tree)", lambda r, w: evaluate(policy, r, w), cases, seconds
    )
    with_json = _measure(
        "evaluate + to_json()", lambda r, w: evaluate(policy, r, w).to_json(), cases, seconds
    )

    def fresh(request: Request, world: World) -> bool:
        return compiled.decide(
            Request(request.assignee, request.action, request.target, request.context), world
        )

    building = _measure("compiled decide incl. building the Request", fresh, cases, seconds)
    print()
    print(f"fast path      : {fast / TARGET_FAST:5.2f} x the target of {TARGET_FAST:,}/s")
    print(f"explained path : {explained / TARGET_EXPLAINED:5.2f} x the target of {TARGET_EXPLAINED:,}/s")
    print(
        f"explained + JSON {with_json / TARGET_EXPLAINED:5.2f} x; request construction included: "
        f"{building / TARGET_FAST:5.2f} x"
    )
    print(f"explanation costs {fast / explained:4.1f} x the fast path")
    print()
    _bench_gate(seconds)


#: The negotiation bench's policies: everyone may see the offer; use for research only.
EVERYONE = {"@id": "urn:a", "@type": "Offer", "permission": [{"action": "use"}]}
RESEARCH_ONLY = {
    "@id": "urn:p",
    "@type": "Offer",
    "permission": [
        {
            "action": "use",
            "constraint": [
                {"leftOperand": "purpose", "operator": "isA", "rightOperand": PURPOSE + "scientific-research"}
            ],
        }
    ],
}


def _bench_gate(seconds: float) -> None:
    """The connector's per-step decision: fast permit against the always-explained reference."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    claims: dict[str, object] = {
        "sluis:credential": ["MembershipCredential"],
        "sluis:memberOf": ["bench"],
        "purpose": PURPOSE + "scientific-research",
    }
    steps = [
        ("access policy, scope access (permit)", EVERYONE, Scope.ACCESS, claims),
        ("usage policy, scope negotiation (permit)", RESEARCH_ONLY, Scope.NEGOTIATION, claims),
        (
            "usage policy, scope negotiation (deny)",
            RESEARCH_ONLY,
            Scope.NEGOTIATION,
            {**claims, "purpose": PURPOSE + "commercial-use"},
        ),
    ]
    print("connector.policy_gate.decide on the stored JSON, us of CPU per decision:")
    print(f"  {'step':44s} {'fast':>8s} {'explained':>10s} {'ratio':>6s}")
    for label, policy, scope, context in steps:
        timings = []
        for explain in (False, True):

            def one(
                explain: bool = explain,
                policy: Mapping[str, Any] = policy,
                scope: Scope = scope,
                context: dict[str, object] = context,
            ) -> None:
                decide(
                    policy,
                    assignee="did:web:consumer.example",
                    target="urn:ds",
                    context=context,
                    now=now,
                    scope=scope,
                    explain=explain,
                )

            timings.append(_cpu_per_call(one, seconds / 2))
        print(f"  {label:44s} {timings[0]:8.1f} {timings[1]:10.1f} {timings[1] / timings[0]:5.1f}x")


def _cpu_per_call(call: Callable[[], None], seconds: float) -> float:
    """Microseconds of CPU per call, over about ``seconds`` of wall clock."""
    call()  # parse and compile once, outside the measurement
    done = 0
    deadline = time.perf_counter() + seconds
    cpu_start = time.process_time()
    while time.perf_counter() < deadline:
        for _ in range(100):
            call()
        done += 100
    return (time.process_time() - cpu_start) / done * 1e6


if __name__ == "__main__":
    main()
