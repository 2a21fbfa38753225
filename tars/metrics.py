"""What `tars serve` counts, for Prometheus: ``/metrics`` (see ``tars.server.metrics_route``).

Every figure is one of the module-level metrics below, updated where the thing happens
(the call session, the tool gate, the scheduler, the webhook routes). With several workers
(``tars serve --workers N``) prometheus_client's multiprocess mode is on: the parent points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start, each worker writes
its figures there, and a scrape that reaches any worker reads them all
(https://prometheus.github.io/client_python/multiprocess/). The live-calls gauge is summed
over the workers alive (``livesum``); a worker that dies is marked dead by the parent.

Label values are bounded by the project (roles, tools, routes), never by callers: no
number, name or transcript is ever a label.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

CALLS = Counter(
    "tars_calls",
    "Calls ended, by direction (inbound, outbound), purpose (inbound, goal, reminder), role and result.",
    ["direction", "purpose", "role", "result"],
)
LIVE_CALLS = Gauge("tars_live_calls", "Calls with a live media stream on this server.", multiprocess_mode="livesum")
CALL_DURATION = Histogram(
    "tars_call_duration_seconds",
    "From the media stream opening to the hang-up.",
    ["direction"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600),
)
TURN_ADDED_LATENCY = Histogram(
    "tars_turn_added_latency_seconds",
    "Per turn, the call path's own share of the reply's delay: the caller's last audio from "
    "Twilio's socket to Gemini's, plus the reply's first audio from Gemini's socket to Twilio's "
    "(what bench/ measures from outside as added latency).",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0),
)
FIRST_REPLY = Histogram(
    "tars_first_reply_seconds",
    "From the media stream opening (the call answered) to TARS's first audio sent to Twilio.",
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
TOOL_CALLS = Counter(
    "tars_tool_calls",
    "Tool calls the model asked for, by tool and decision (allowed; failed: allowed, then it raised; refused).",
    ["tool", "decision"],
)
REMINDER_LATENESS = Histogram(
    "tars_reminder_lateness_seconds",
    "From a reminder falling due to its delivery starting.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
MODEL_RESUMED = Counter(
    "tars_model_resumed", "Gemini Live sessions resumed over a new connection during a call (a drop or goAway)."
)
MODEL_FAILED = Counter(
    "tars_model_failed", "Calls whose Gemini Live session was lost for good (they end with an apology)."
)
MODEL_GO_AWAY = Counter("tars_model_go_away", "goAway notices from Gemini Live (the connection is closing soon).")
WEBHOOKS_REFUSED = Counter(
    "tars_webhooks_refused",
    "Inbound webhooks refused, by route and reason (signature, limit, token).",
    ["route", "reason"],
)
WEBHOOK_FAILURES = Counter(
    "tars_webhook_failures",
    "Outgoing webhooks (tools, reminders, n8n) that failed after their retries.",
)


def direction(purpose: str) -> str:
    return "inbound" if purpose == "inbound" else "outbound"


@contextmanager
def live_call() -> Iterator[None]:
    LIVE_CALLS.inc()
    try:
        yield
    finally:
        LIVE_CALLS.dec()


def exposition() -> tuple[bytes, str]:
    """The scrape body and its content type: this process's metrics, or every worker's."""
    folder = os.environ.get(MULTIPROCESS_ENV)
    if not folder:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_gone(pid: int) -> None:
    """A worker ended: its live gauges no longer count (its counters still do)."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(pid)
