"""What one run of emulated calls says: latency percentiles, audio pacing, CPU and memory.

Reply audio, per turn, on the caller's side: frame *i* of a reply should arrive by
``t0 + bytes_before_i / 8000`` (real-time playout from the reply's first frame, ``t0``).

* **late**: more than one Twilio frame (20 ms) behind that schedule: a listener with no
  buffer would hear a gap (informational: Twilio buffers);
* **dropped**: behind by more than the Twilio emulator's 200 ms jitter buffer (the caller
  hears a gap), or the reply came up more than ``MISSING_TOLERANCE_BYTES`` short (Pipecat's
  output resampler holds back ~40 ms of each reply's tail until the next one: not a loss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.callers import TAIL_HELD_BYTES, CallRecord, Turn
from bench.common import percentile
from tars.emulators.twilio.media import FRAME_BYTES, FRAME_SECONDS, JITTER_BUFFER_SECONDS, RATE

MISSING_TOLERANCE_BYTES = TAIL_HELD_BYTES


@dataclass
class ReplyAudio:
    frames: int
    late: int
    dropped: int
    missing_bytes: int


def reply_audio(turn: Turn, expected_bytes: int) -> ReplyAudio:
    if not turn.reply:
        return ReplyAudio(0, 0, 0, expected_bytes)
    t0 = turn.reply[0].at
    offset = late = dropped = 0
    for frame in turn.reply:
        behind = frame.at - (t0 + offset / RATE)
        late += behind > FRAME_SECONDS
        dropped += behind > JITTER_BUFFER_SECONDS
        offset += len(frame.payload)
    missing = max(0, expected_bytes - offset)
    if missing > MISSING_TOLERANCE_BYTES:
        dropped += math.ceil(missing / FRAME_BYTES)  # counted in 20 ms Twilio frames
    return ReplyAudio(len(turn.reply), late, dropped, missing)


@dataclass
class RunStats:
    """One variant at one number of concurrent calls."""

    variant: str
    calls: int
    turns_per_call: int
    records: list[CallRecord]
    expected_reply_bytes: int
    response_delay_ms: float
    server_cpu_s: float = 0.0
    driver_cpu_s: float = 0.0
    machine_busy_s: float | None = None
    wall_s: float = 0.0
    rss_baseline: int = 0
    rss_peak: int = 0
    ready_s: float = 0.0
    loop_lag_s: list[float] = field(default_factory=list)
    cpu_samples: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, server CPU s)
    emulator_errors: list[str] = field(default_factory=list)
    watched: dict[str, Any] | None = None  # tars-watched: what the watcher saw (bench.watcher)

    steady_from: float = -math.inf  # when the last call was greeted: all calls live from here

    def steady_cpu_per_call_minute(self) -> float:
        """Server CPU per call-minute while every call is mid-conversation: from the moment the
        last call was greeted to the first call's last reply (set-up and hang-up left out)."""
        turns = [r.turns for r in self.records if r.turns]
        if len(turns) < self.calls or not self.cpu_samples:
            return math.nan
        end = min(t[-1].reply[-1].at if t[-1].reply else t[-1].sent_at for t in turns)
        inside = [(t, c) for t, c in self.cpu_samples if self.steady_from <= t <= end]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < 2.0:
            return math.nan
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return (c1 - c0) / (self.calls * (t1 - t0) / 60)

    @property
    def turns(self) -> list[Turn]:
        """The turns taken while every call was live (the figures are about those)."""
        return [t for r in self.records for t in r.turns if t.sent_at >= self.steady_from]

    @property
    def failed_calls(self) -> int:
        """Calls cut short: no greeting, or a reply that never came (the call ends there)."""
        return sum(r.error is not None for r in self.records)

    def added_ms(self) -> list[float]:
        return [t.added_ms for t in self.turns if t.added_ms is not None]

    def summary(self) -> dict[str, Any]:
        added = self.added_ms()
        turns = self.turns
        naive = [t.interval_ms - self.response_delay_ms for t in turns if t.interval_ms is not None]
        emulator = [t.emulator_ms for t in turns if t.emulator_ms is not None]
        audio = [reply_audio(t, self.expected_reply_bytes) for t in turns]
        minutes = sum(r.minutes for r in self.records)
        setup = [
            (r.greeting_at - r.placed_at) * 1000 - self.response_delay_ms
            for r in self.records
            if r.greeting_at is not None
        ]
        frames = sum(a.frames for a in audio)
        steady = self.steady_cpu_per_call_minute()
        other = None
        if self.machine_busy_s is not None and self.wall_s:
            other = max(0.0, self.machine_busy_s - self.server_cpu_s - self.driver_cpu_s) / self.wall_s
        return {
            "variant": self.variant,
            **({"watched": self.watched} if self.watched is not None else {}),
            "calls": self.calls,
            "turns_per_call": self.turns_per_call,
            "turns": len(turns),
            "all_turns": sum(len(r.turns) for r in self.records),
            "matched_turns": len(added),
            "failed_calls": self.failed_calls,
            "errors": sorted({r.error for r in self.records if r.error})[:5],
            "emulator_errors": len(self.emulator_errors),
            "emulator_error_examples": sorted(set(self.emulator_errors))[:3],
            "added_ms": _percentiles(added),
            "interval_less_configured_delay_ms": _percentiles(naive),
            "emulator_ms": _percentiles(emulator),
            "call_setup_ms": _percentiles(setup),
            "reply_frames": frames,
            "late_frames": sum(a.late for a in audio),
            "dropped_frames": sum(a.dropped for a in audio),
            "reply_tail_missing_ms_p50": percentile([a.missing_bytes / RATE * 1000 for a in audio], 50),
            "call_minutes": minutes,
            "server_cpu_s": self.server_cpu_s,
            "cpu_s_per_call_minute": self.server_cpu_s / minutes if minutes else math.nan,
            "steady_cpu_s_per_call_minute": steady,
            # What set-up and hang-up cost beyond talking: CPU not explained by the steady rate.
            "setup_cpu_s_per_call": (self.server_cpu_s - steady * minutes) / self.calls if minutes else math.nan,
            "server_cores_busy": self.server_cpu_s / self.wall_s if self.wall_s else math.nan,
            "driver_cores_busy": self.driver_cpu_s / self.wall_s if self.wall_s else math.nan,
            "other_cores_busy": other,
            "rss_baseline_mb": self.rss_baseline / 2**20,
            "rss_peak_mb": self.rss_peak / 2**20,
            "rss_per_call_mb": (self.rss_peak - self.rss_baseline) / 2**20 / self.calls,
            "driver_loop_lag_ms_p99": percentile(self.loop_lag_s, 99) * 1000,
            # The emulators' single event loop was saturated: the figures are theirs, not the server's.
            "emulator_bound": self.driver_cpu_s / self.wall_s > 0.85 or percentile(self.loop_lag_s, 99) > 0.05
            if self.wall_s and self.loop_lag_s
            else False,
            "ready_s": self.ready_s,
            "wall_s": self.wall_s,
        }


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": sum(values) / len(values) if values else math.nan,
        "max": max(values) if values else math.nan,
    }


def holds(summary: dict[str, Any], p95_ms: float = 100.0) -> bool:
    """The capacity target: p95 added latency under ``p95_ms``, no dropped audio, no failures."""
    return (
        summary["failed_calls"] == 0
        and summary["dropped_frames"] == 0
        and summary["added_ms"]["n"] > 0
        and summary["added_ms"]["p95"] < p95_ms
    )
