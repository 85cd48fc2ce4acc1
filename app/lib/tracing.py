"""OpenTelemetry tracing, optional (the ``otel`` extra): one span per request (Litestar's plugin) and
per stage of an extraction (``docextract.extract`` > ``einvoice``, ``pages`` > ``engine.page``,
``trust``), exported over OTLP/HTTP (or to stderr), with the trace and span ids in every log line so
a slow request's logs and its trace are one search apart.

Without the extra, or with ``DOCEXTRACT_TRACING=off`` (the default), ``span`` is a no-op that costs
one attribute check, and nothing of OpenTelemetry is imported (hence the imports inside functions).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator, MutableMapping
from typing import Any, Literal

TracingMode = Literal["off", "otlp", "console"]
SERVICE_NAME = "docextract"


class _Tracing:
    provider: Any = None
    """Our own tracer provider (not OpenTelemetry's global one, which can be set once a process)."""


_state = _Tracing()


def available() -> bool:
    """Whether the ``otel`` extra is installed."""
    return importlib.util.find_spec("opentelemetry.sdk") is not None


def setup_tracing(mode: TracingMode, *, exporter: Any = None) -> bool:
    """Install a tracer provider for ``mode`` (``otlp``: ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the
    other standard ``OTEL_*`` variables apply); ``exporter``: a span exporter of your own (tests).
    Whether tracing is on."""
    if mode == "off" and exporter is None:
        _state.provider = None
        return False
    if not available():
        raise RuntimeError("DOCEXTRACT_TRACING needs the otel extra: pip install 'docextract[otel]'")
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider, export  # noqa: PLC0415

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    if exporter is not None:
        provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    elif mode == "console":
        provider.add_span_processor(export.BatchSpanProcessor(export.ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        provider.add_span_processor(export.BatchSpanProcessor(OTLPSpanExporter()))
    _state.provider = provider
    return True


def provider() -> Any:
    """The tracer provider when tracing is on (for Litestar's plugin), else None."""
    return _state.provider


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """A child span of the current one (no-op when tracing is off)."""
    if _state.provider is None:
        yield
        return
    present = {key: value for key, value in attributes.items() if value is not None}
    with _state.provider.get_tracer(SERVICE_NAME).start_as_current_span(name, attributes=present):
        yield


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` (hex, as trace backends show them) of the
    span the log line was written in."""
    if _state.provider is None:
        return event
    from opentelemetry import trace  # noqa: PLC0415

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event
