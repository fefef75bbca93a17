"""The correlation id: one value that ties together everything one negotiation causes.

It is the consumer's process id of the negotiation (``consumerPid``). Both connectors know it
from the first DSP message on, so no header has to survive proxies and no id has to be agreed:
the provider logs its steps with it, every transfer under the resulting agreement carries it,
and the data plane writes it into the audit entries of the reads those transfers make. A log
line made while a step runs gets it from a context variable through :class:`CorrelationFilter`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from connector.observability.tracing import annotate_correlation

_CURRENT: ContextVar[str | None] = ContextVar("sluis_correlation_id", default=None)


def correlation_id() -> str | None:
    """The correlation id of the work running in this context, if any."""
    return _CURRENT.get()


@contextmanager
def correlated(value: str | None) -> Iterator[None]:
    """Run a block with ``value`` as the correlation id (nested blocks restore the outer one)."""
    token = _CURRENT.set(value)
    annotate_correlation(value)  # the current span too, when tracing is on
    try:
        yield
    finally:
        _CURRENT.reset(token)


class CorrelationFilter(logging.Filter):
    """Adds ``correlation_id`` to every log record made inside :func:`correlated`."""

    def filter(self, record: logging.LogRecord) -> bool:
        value = _CURRENT.get()
        if value is not None and not hasattr(record, "correlation_id"):
            record.correlation_id = value
        return True
