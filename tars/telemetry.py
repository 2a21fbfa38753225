"""One OpenTelemetry trace per call: the webhook that answers it, its media stream, each turn,
each tool call, and the work after the hang-up.

Off unless ``telemetry.otlp_endpoint`` is set in tars.yaml: then ``tars serve`` installs a
tracer provider exporting by OTLP over HTTP (``install``). Until one is installed every
span here is OpenTelemetry's no-op span, which costs next to nothing.

A call's trace starts at the webhook that connects it (``/twilio/voice``, ``/twilio/outbound``,
``/twilio/reminder``); its ``traceparent`` (W3C Trace Context) travels to the media stream
inside the stream's signed parameters, so the stream — on whichever server it lands — joins
the same trace. Pipecat's own spans (conversation, turns, the model service) carry what was
said, so they are switched on only with ``telemetry.include_transcripts: true``; TARS's own
spans carry ids, roles, tool names and timings, never a number, a name or words spoken.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

T = TypeVar("T")

TRACER = trace.get_tracer("tars")
PARAM = "traceparent"  # the stream parameter carrying the webhook's span context
_propagator = TraceContextTextMapPropagator()
_state = {"on": False, "transcripts": False}


def install(settings: Mapping[str, Any], service_name: str = "tars") -> bool:
    """Export spans by OTLP/HTTP to ``settings["otlp_endpoint"]``; False (and nothing done)
    when it is not set. Called once per process, by `tars serve`."""
    endpoint = settings.get("otlp_endpoint")
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=str(endpoint))))
    trace.set_tracer_provider(provider)
    enable(include_transcripts=bool(settings.get("include_transcripts", False)))
    return True


def enable(*, include_transcripts: bool = False) -> None:
    """Spans are recorded by the tracer provider already set (``install``, or a test's)."""
    _state["on"] = True
    _state["transcripts"] = include_transcripts


def disable() -> None:
    _state["on"] = False
    _state["transcripts"] = False


def enabled() -> bool:
    return _state["on"]


def transcripts() -> bool:
    """Pipecat's spans (with what was said) are wanted too."""
    return _state["on"] and _state["transcripts"]


@contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, parent: Any = None, **attributes: Any) -> Iterator[Span]:
    """A span made current for the block; an exception marks it as an error (with its type only)."""
    if not enabled():
        yield trace.INVALID_SPAN
        return
    with TRACER.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=_attributes(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


async def in_span(name: str, work: Awaitable[T], **attributes: Any) -> T:
    """Await ``work`` inside a span (background work after a call)."""
    with span(name, **attributes):
        return await work


def carrier() -> dict[str, str]:
    """The current span's context as stream parameters (empty when tracing is off)."""
    if not enabled():
        return {}
    out: dict[str, str] = {}
    _propagator.inject(out)
    return {PARAM: out[PARAM]} if PARAM in out else {}


def parent_from(params: Mapping[str, str]) -> Any:
    """The context a stream's span continues: the webhook's, from its signed parameters."""
    value = params.get(PARAM)
    return _propagator.extract({PARAM: value}) if value else context.Context()


def past_span(name: str, began_monotonic: float, **attributes: Any) -> None:
    """A span that already happened, from ``began_monotonic`` (``time.monotonic()``) until now."""
    if not enabled():
        return
    now_ns = time.time_ns()
    start_ns = now_ns - int((time.monotonic() - began_monotonic) * 1e9)
    TRACER.start_span(name, start_time=start_ns, attributes=_attributes(attributes)).end(end_time=now_ns)


def _attributes(given: Mapping[str, Any]) -> dict[str, Any]:
    """TARS's span attributes, under ``tars.``; ``None`` means not known, so not set."""
    return {f"tars.{key}": value for key, value in given.items() if value is not None}
