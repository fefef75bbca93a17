"""OpenTelemetry tracing, optional: off by default, and then nothing here imports OpenTelemetry.

With ``[observability] tracing = true`` a connector records spans for the DSP requests it
answers (``dsp.receive``), the state transitions it writes (``process.step``), the outbox
sends it makes (``outbox.send``) and the data plane's reads (``dataplane.read``), each with
the negotiation's correlation id as the ``sluis.correlation_id`` attribute. The W3C
``traceparent`` of the current span goes with every DSP request, so the peer's spans join the
same trace; an outbox message stores the ``traceparent`` of the step that queued it, so a send
made after a retry or a restart still belongs to that step's trace.

Spans go to the process's tracer provider: one the host process set up (an OpenTelemetry
distribution, a test's in-memory exporter), or else one made here from the ``tracing`` extra
(``opentelemetry-sdk``), exporting to nothing or, with ``trace_exporter = "console"``, to stderr.
A tracer provider is process-wide in OpenTelemetry, so tracing is too: once one connector of a
process turned it on, every connector of that process records spans.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

#: The attribute that carries the correlation id on every span (see ``correlation.py``).
CORRELATION_ATTRIBUTE = "sluis.correlation_id"
#: The instrumentation scope our spans are recorded under.
TRACER_NAME = "sluis.connector"
#: The W3C trace-context header; the only propagation format we speak.
TRACEPARENT = "traceparent"
#: A ``traceparent`` is 55 characters; anything much longer a peer sends is ignored.
MAX_TRACEPARENT_CHARS = 128

_tracer: Any = None
_lock = threading.Lock()


class TracingUnavailable(RuntimeError):
    """Tracing was asked for, but OpenTelemetry's SDK is not installed and no provider is set."""


def enable_tracing(exporter: str = "none") -> None:
    """Start recording spans in this process (idempotent). Raises :class:`TracingUnavailable`
    when neither a tracer provider was set by the host process nor the SDK is installed."""
    global _tracer
    with _lock:
        if _tracer is not None:
            return
        try:
            from opentelemetry import trace
        except ImportError as error:
            raise TracingUnavailable(
                "tracing needs OpenTelemetry: install the 'tracing' extra (opentelemetry-sdk)"
            ) from error
        if not _has_provider(trace.get_tracer_provider()):
            trace.set_tracer_provider(_sdk_provider(exporter))
        _tracer = trace.get_tracer(TRACER_NAME)


def disable_tracing() -> None:
    """Stop recording spans here (the provider stays: OpenTelemetry sets it once per process)."""
    global _tracer
    with _lock:
        _tracer = None


def tracing_enabled() -> bool:
    return _tracer is not None


def _has_provider(provider: Any) -> bool:
    """Whether the host process already chose a tracer provider (not the API's no-op proxy)."""
    from opentelemetry import trace

    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _sdk_provider(exporter: str) -> Any:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError as error:
        raise TracingUnavailable(
            "tracing needs OpenTelemetry's SDK: install the 'tracing' extra (opentelemetry-sdk)"
        ) from error
    provider = TracerProvider(resource=Resource.create({"service.name": "sluis-connector"}))
    if exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider


@contextlib.contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    traceparent: str | None = None,
    kind: str = "internal",
) -> Iterator[None]:
    """A span around a block; nothing at all while tracing is off.

    ``traceparent``: the W3C header value of the remote or stored parent (a DSP request's, an
    outbox message's); without it the span is a child of the current one. ``kind``:
    ``internal``, ``server`` or ``client``. ``None`` attribute values are left out.
    """
    tracer = _tracer
    if tracer is None:
        yield
        return
    from opentelemetry import trace

    context = _context_of(traceparent) if traceparent else None
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=getattr(trace.SpanKind, kind.upper()),
        attributes={k: v for k, v in (attributes or {}).items() if v is not None},
    ):
        yield


def _context_of(traceparent: str) -> Any:
    if len(traceparent) > MAX_TRACEPARENT_CHARS:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({TRACEPARENT: traceparent})


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (``None`` when off or outside any span)."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get(TRACEPARENT)


def annotate_correlation(value: str | None) -> None:
    """Put the correlation id on the current span, if tracing is on and a span records."""
    if _tracer is None or value is None:
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.is_recording():
        current.set_attribute(CORRELATION_ATTRIBUTE, value)
