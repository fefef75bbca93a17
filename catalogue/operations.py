"""A catalogue node's own metric families, added to the registry of ``connector.http.operations``.

What the node holds and harvests: indexed records, and per harvest source the records held,
trusted and quarantined, the counts of its last run and that run's state - read from the
harvest ledger when scraped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from connector.observability import FunctionCollector


def harvest_collector(node: Any, federation: Any) -> FunctionCollector:
    """``node``: the ``CatalogueNode`` (its index); ``federation``: its ``Federation`` (ledger)."""

    def collect() -> Iterable[Metric]:
        records = GaugeMetricFamily("sluis_catalogue_records", "Records in the search index (not deleted)")
        records.add_metric([], node.index.count())
        yield records
        held = GaugeMetricFamily(
            "sluis_harvest_records", "Harvested records per source, by trust", labels=["source", "kind"]
        )
        last = GaugeMetricFamily(
            "sluis_harvest_last_run", "Counts of each source's last harvest run", labels=["source", "count"]
        )
        runs = GaugeMetricFamily(
            "sluis_harvest_last_run_state",
            "1 for the state of each source's last run",
            labels=["source", "state"],
        )
        ledger = federation.ledger
        for source in ledger.sources():
            for kind, value in ledger.source_counts(source.id).items():
                held.add_metric([source.id, kind], value)
            run = ledger.last_run(source.id)
            if run is not None:
                runs.add_metric([source.id, str(run.state)], 1)
                for name, value in sorted(run.counts.items()):
                    last.add_metric([source.id, name], value)
        yield held
        yield last
        yield runs

    return FunctionCollector(collect)
