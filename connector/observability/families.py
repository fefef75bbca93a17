"""The connector's own metric families, added to the registry of ``connector.http.operations``.

Figures about processes, the outbox and the audit log are read from the database when scraped,
so every replica on a shared PostgreSQL reports the same truth; ``*_this_process`` families are
what this process did since it started. Reads allowed and denied come from the audit log (every
authenticated read and denial is an entry): each scrape reads only the entries added since the
last one (at most :data:`AUDIT_ENTRIES_PER_SCRAPE`, the rest on the next scrape).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

NAMESPACE = "sluis"
#: Audit entries read per scrape at most (the first scrape of a long log catches up over several).
AUDIT_ENTRIES_PER_SCRAPE = 50_000


class _Store(Protocol):
    def process_counts(self) -> list[tuple[str, str, str, int]]: ...

    def outbox_counts(self) -> dict[str, float]: ...


class _Outbox(Protocol):
    retries: int


class _Audit(Protocol):
    def head(self) -> tuple[int, str] | None: ...

    def entries(self, after_seq: int = 0) -> Iterator[Any]: ...


def _name(text: str) -> str:
    return f"{NAMESPACE}_{text}"


class FunctionCollector(Collector):
    """A collector from a function yielding metric families (read when scraped)."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


class ReadTally:
    """Reads allowed and denied by reason, tallied from the audit log as it grows."""

    def __init__(self, audit: _Audit) -> None:
        self.audit = audit
        self.after = 0
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def update(self) -> None:
        with self._lock:
            for seen, entry in enumerate(self.audit.entries(after_seq=self.after), start=1):
                self.after = int(entry.seq)
                body = entry.body or {}
                if body.get("kind") == "read":
                    denied = body.get("decision") == "deny" or body.get("status") == "failed"
                    outcome = "denied" if denied else "allowed"
                    reason = str(body.get("code") or ("completed" if not denied else "failed"))
                    self.counts[(outcome, reason, str(body.get("media_type") or ""))] += 1
                if seen >= AUDIT_ENTRIES_PER_SCRAPE:
                    break


def connector_collector(
    store: _Store, outbox: _Outbox, audit: _Audit | None, unauthenticated: Any = None
) -> FunctionCollector:
    """Negotiations and transfers by state, outbox depth and retries, audit head, reads."""
    tally = ReadTally(audit) if audit is not None else None

    def collect() -> Iterable[Metric]:
        negotiations = GaugeMetricFamily(
            _name("negotiations"), "Negotiations by state and our role", labels=["state", "role"]
        )
        transfers = GaugeMetricFamily(
            _name("transfers"), "Transfer processes by state and our role", labels=["state", "role"]
        )
        for kind, role, state, count in store.process_counts():
            family = negotiations if kind == "negotiation" else transfers
            family.add_metric([state, role], count)
        yield negotiations
        yield transfers
        figures = store.outbox_counts()
        depth = GaugeMetricFamily(_name("outbox_depth"), "Messages and pushes not yet delivered or given up")
        depth.add_metric([], figures["pending"])
        yield depth
        retrying = GaugeMetricFamily(_name("outbox_retrying"), "Undelivered messages that failed before")
        retrying.add_metric([], figures["retrying"])
        yield retrying
        failed = GaugeMetricFamily(_name("outbox_failed"), "Messages given up (refused or never delivered)")
        failed.add_metric([], figures["failed"])
        yield failed
        attempts = CounterMetricFamily(
            _name("outbox_attempts"), "Delivery attempts recorded in the outbox (all replicas)"
        )
        attempts.add_metric([], figures["attempts"])
        yield attempts
        retries = CounterMetricFamily(
            _name("outbox_retries_this_process"), "Deliveries this process scheduled again after a failure"
        )
        retries.add_metric([], outbox.retries)
        yield retries
        if audit is not None and tally is not None:
            head = audit.head()
            sequence = GaugeMetricFamily(_name("audit_head_sequence"), "Sequence number of the audit head")
            sequence.add_metric([], head[0] if head else 0)
            yield sequence
            tally.update()
            reads = CounterMetricFamily(
                _name("reads"),
                "Data-plane reads by outcome and reason (from the audit log, all replicas)",
                labels=["outcome", "reason", "media_type"],
            )
            for (outcome, reason, media), count in sorted(tally.counts.items()):
                reads.add_metric([outcome, reason, media], count)
            yield reads
        if unauthenticated is not None:
            anonymous = CounterMetricFamily(
                _name("reads_unauthenticated_this_process"),
                "Data-plane requests denied before any token verified (never audited)",
            )
            anonymous.add_metric([], float(getattr(unauthenticated, "unauthenticated_denials", 0)))
            yield anonymous
            budget = getattr(unauthenticated, "denial_budget", None)
            left_out = CounterMetricFamily(
                _name("refusals_not_audited_this_process"),
                "Refusals of authenticated reads over a transfer's audit rate (counted, not appended)",
            )
            left_out.add_metric([], float(getattr(budget, "left_out_total", 0)))
            yield left_out

    return FunctionCollector(collect)
