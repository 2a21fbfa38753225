"""One OpenTelemetry trace per call: webhook → stream → turns → tool calls → after-call, with no
number, name or words spoken in it unless transcripts are asked for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tars import telemetry
from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then, owner_asks_for_a_reminder, reminder_call

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans recorded in memory, as an OTLP collector would receive them."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):  # once per test process: OpenTelemetry allows one
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    telemetry.enable()
    try:
        yield EXPORTER
    finally:
        telemetry.disable()
        EXPORTER.clear()


def of_call(finished: tuple[ReadableSpan, ...], call_id: int) -> list[ReadableSpan]:
    [webhook] = [s for s in finished if s.name == "twilio.voice" and s.attributes.get("tars.call.id") == call_id]
    return [s for s in finished if s.context.trace_id == webhook.context.trace_id]


def ours(finished: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    """TARS's spans (FastAPI records its own request spans whenever a tracer provider is set)."""
    return [s for s in finished if s.instrumentation_scope is not None and s.instrumentation_scope.name == "tars"]


async def test_one_call_is_one_trace_covering_webhook_stream_turns_tools_and_after_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spans: InMemorySpanExporter
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = reminder_call()
    async with Line(project, lambda: brain) as line:
        call, _hello = await owner_asks_for_a_reminder(line)
        await line.settle()
        from tars.store.calls import call_details

        with line.db() as db, db.session() as s:
            call_id = int(call_details(s, call.sid).call.id)

    trace_spans = of_call(spans.get_finished_spans(), call_id)
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in trace_spans:
        by_name.setdefault(span.name, []).append(span)
    assert {"twilio.voice", "call.stream", "call.turn", "tool create_reminder", "tool end_call", "call.after"} <= set(
        by_name
    ), sorted(by_name)
    [webhook], [stream], [after] = by_name["twilio.voice"], by_name["call.stream"], by_name["call.after"]
    # The trace starts at the webhook: FastAPI's request span, then TARS's within it.
    [request] = by_name["POST /twilio/voice"]
    assert request.parent is None
    assert webhook.parent is not None and webhook.parent.trace_id == request.context.trace_id
    assert stream.parent is not None and stream.parent.span_id == webhook.context.span_id
    for child in (*by_name["call.turn"], *by_name["tool create_reminder"], *by_name["tool end_call"], after):
        assert child.parent is not None and child.parent.span_id == stream.context.span_id, child.name
    assert stream.attributes["tars.caller.role"] == "owner"
    assert call.streams[0].parameters["traceparent"].split("-")[1] == f"{webhook.context.trace_id:032x}"
    assert all(t.attributes["tars.added_latency_ms"] > 0 for t in by_name["call.turn"])
    # Ids, roles, tool names and timings only: no number, name or words (pipecat's spans are off).
    values = repr([dict(s.attributes or {}) for s in trace_spans])
    assert project.owner.phone not in values and "Helen" not in values and "remind me" not in values
    assert "conversation" not in by_name


async def test_no_trace_is_recorded_when_telemetry_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(CallTool("end_call", {"reason": "done"}), Say("Bye."))
    EXPORTER.clear()
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("that's all")
        assert (await call.wait_ended(timeout=30)) == "completed"
        await line.settle()
    assert ours(EXPORTER.get_finished_spans()) == []
    assert "call_id" in call.streams[0].parameters and "traceparent" not in call.streams[0].parameters
