"""What an operator follows a negotiation by, beyond the shared HTTP layer's health and metrics.

``connector.http.operations`` serves ``/health/live``, ``/health/ready`` and ``/metrics`` on
every server; this package adds the connector's own metric families (processes by state, the
outbox, the audit log, reads allowed and denied) and the correlation id that ties the log lines
and audit entries of one negotiation together, and optional OpenTelemetry tracing
(:mod:`connector.observability.tracing`).
"""

from connector.observability.correlation import (
    CorrelationFilter,
    correlated,
    correlation_id,
)
from connector.observability.families import FunctionCollector, connector_collector

__all__ = [
    "CorrelationFilter",
    "FunctionCollector",
    "connector_collector",
    "correlated",
    "correlation_id",
]
