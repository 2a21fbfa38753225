"""The call path: added latency side by side, and capacity under concurrent calls.

Every run gets fresh emulators (this process) and a fresh server (its own process: TARS
as ``tars serve``, bare Pipecat, or the hand-written floor), one unmeasured warm-up call,
then the measured calls. See ``bench.callers`` for how a turn is timed and
``bench.callstats`` for what counts as late or dropped audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

from bench import procstat
from bench.callers import RESPONSE_DELAY_MS, Emulators, reply_bytes
from bench.callstats import RunStats, holds
from bench.common import Row
from bench.report import Section
from bench.servers import LABELS, Server
from bench.watcher import Watcher

P95_TARGET_MS = 100.0
KEEPS_UP_MS = 50.0  # "keeps up": p95 no more than this above its own single-call p95
# Calls arrive at random, this many a second on average, until all are in. (A burst costs
# more than steady talk: each new call builds a pipeline and connects to Gemini.)
ARRIVALS = 5.0
# TARS is compared with each, in this order (bench.servers.LABELS says what they are).
REFERENCES = ("pipecat", "pipecat-tuned", "floor")


@dataclass(frozen=True)
class Plan:
    latency_variants: tuple[str, ...] = ("tars", "tars-watched", "pipecat", "pipecat-tuned", "floor")
    latency_calls: int = 5
    latency_turns: int = 16
    capacity_variants: tuple[str, ...] = ("tars", "tars-2w", "pipecat", "pipecat-tuned", "floor")
    levels: tuple[int, ...] = (1, 10, 25, 50, 100)
    experiment_levels: tuple[int, ...] = (1, 10, 25)  # the second Pipecat reference: enough to compare
    level_turns: int = 3
    search_steps: int = 2  # extra TARS runs bisecting between the last level held and the first not


PLANS = {
    "full": Plan(),
    "quick": Plan(
        latency_variants=("tars", "tars-watched", "pipecat", "pipecat-tuned", "floor"),
        latency_calls=2,
        latency_turns=5,
        capacity_variants=("tars", "tars-2w"),
        levels=(10,),
        level_turns=3,
        search_steps=0,
    ),
    "smoke": Plan(
        latency_variants=("floor", "tars"),
        latency_calls=1,
        latency_turns=1,
        capacity_variants=(),
        levels=(),
        search_steps=0,
    ),
}


async def run_level(variant: str, calls: int, turns: int, *, seed: int = 1) -> RunStats:
    """One server, ``calls`` concurrent calls of ``turns`` turns each, measured."""
    async with Emulators() as emulators:
        server = Server(variant, emulators.upstream())
        try:
            ready = await server.start()
            emulators.route_to(server.local_url)
            await emulators.run_calls(1, 0)  # warm-up: first-call imports, caches, TLS
            await asyncio.sleep(0.5)
            stats = RunStats(variant, calls, turns, [], reply_bytes(), RESPONSE_DELAY_MS, ready_s=ready)
            stats.rss_baseline = stats.rss_peak = server.rss_bytes()
            cpu, driver, busy, started = (
                server.cpu_seconds(),
                procstat.cpu_seconds(),
                procstat.machine_busy_seconds(),
                time.monotonic(),
            )
            watch = asyncio.ensure_future(_watch(server, stats))
            try:
                async with contextlib.AsyncExitStack() as stack:
                    if variant == "tars-watched":
                        watcher = await stack.enter_async_context(
                            Watcher(server.local_url, server.state_dir / "api-token")
                        )
                    stats.records = await emulators.run_calls(calls, turns, seed=seed, arrivals_per_second=ARRIVALS)
                    stats.steady_from = emulators.steady_from
                    if variant == "tars-watched":
                        stats.watched = {
                            "calls_watched": len(watcher.calls_watched), "events": watcher.events,
                            "scrapes": watcher.scrapes, "errors": watcher.errors[:5],
                        }  # fmt: skip
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            stats.wall_s = time.monotonic() - started
            stats.emulator_errors = emulators.errors
            stats.server_cpu_s = server.cpu_seconds() - cpu
            stats.driver_cpu_s = procstat.cpu_seconds() - driver
            after = procstat.machine_busy_seconds()
            stats.machine_busy_s = after - busy if after is not None and busy is not None else None
            return stats
        finally:
            await server.stop()


async def _watch(server: Server, stats: RunStats) -> None:
    """Peak server memory (every 100 ms) and this process's event-loop lag (every 10 ms)."""
    loop = asyncio.get_running_loop()
    tick = 0
    while True:
        before = loop.time()
        await asyncio.sleep(0.01)
        stats.loop_lag_s.append(max(0.0, loop.time() - before - 0.01))
        tick += 1
        if tick % 10 == 0:
            with contextlib.suppress(OSError, ValueError):
                stats.rss_peak = max(stats.rss_peak, server.rss_bytes())
                stats.cpu_samples.append((time.monotonic(), server.cpu_seconds()))


# --------------------------------------------------------------------- latency, side by side


async def latency(plan: Plan) -> Section:
    runs = {}
    for variant in plan.latency_variants:
        runs[variant] = (await run_level(variant, plan.latency_calls, plan.latency_turns)).summary()
    section = Section("latency", "Added latency of the call path, side by side")
    section.data = {
        "plan": {
            "calls": plan.latency_calls,
            "turns_per_call": plan.latency_turns,
            "response_delay_ms": RESPONSE_DELAY_MS,
        },
        "runs": runs,
    }
    tars = runs.get("tars")
    for ref in REFERENCES:
        if tars is None or ref not in runs:
            continue
        for pct in ("p50", "p95", "p99"):
            section.rows.append(
                Row(
                    f"TARS added latency {pct}",
                    tars["added_ms"][pct],
                    "ms",
                    LABELS[ref],
                    runs[ref]["added_ms"][pct],
                    None if ref == "floor" else "≤ 1.2×",
                )
            )
    watched = runs.get("tars-watched")
    if tars is not None and watched is not None:
        for pct in ("p50", "p95"):
            section.rows.append(
                Row(
                    f"TARS watched: added latency {pct}",
                    watched["added_ms"][pct],
                    "ms",
                    LABELS["tars"],
                    tars["added_ms"][pct],
                    "≤ 1.1×",
                )
            )
    for ref in REFERENCES:
        if tars is not None and ref in runs:
            section.rows.append(
                Row(
                    "TARS CPU per call-minute",
                    tars["cpu_s_per_call_minute"],
                    "s",
                    LABELS[ref],
                    runs[ref]["cpu_s_per_call_minute"],
                )
            )
    section.body = (
        f"{plan.latency_calls} concurrent calls × {plan.latency_turns} turns per server. A turn: the caller's "
        "last 20 ms frame leaves the Twilio emulator → the first reply frame arrives there, less the Gemini "
        f"emulator's own measured share (its configured {RESPONSE_DELAY_MS} ms delay plus its processing).\n\n"
        + _latency_table(runs.values(), with_calls=False)
        + "\n\n"
        + _cost_table(runs.values(), with_calls=False)
    )
    return section


# --------------------------------------------------------------------- capacity


async def capacity(plan: Plan) -> Section:
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in plan.capacity_variants}
    for calls in plan.levels:
        for variant in plan.capacity_variants:
            if variant == "pipecat-tuned" and calls not in plan.experiment_levels:
                continue
            runs[variant].append((await run_level(variant, calls, plan.level_turns, seed=calls)).summary())
    searched = await _search(runs.get("tars", []), plan) if plan.search_steps else []
    if searched:
        runs["tars"] = sorted(runs["tars"] + searched, key=lambda s: s["calls"])
    section = Section("capacity", "Capacity: concurrent calls on this machine")
    section.data = {
        "plan": {
            "levels": list(plan.levels),
            "turns_per_call": plan.level_turns,
            "p95_target_ms": P95_TARGET_MS,
            "keeps_up_ms": KEEPS_UP_MS,
        },
        "runs": runs,
        "largest": {v: _largest(r) for v, r in runs.items()},
    }
    largest = section.data["largest"]
    for key, what in (
        ("target", f"p95 < {P95_TARGET_MS:.0f} ms, no dropped audio"),
        ("keeps_up", f"p95 ≤ own 1-call p95 + {KEEPS_UP_MS:.0f} ms, no dropped audio"),
    ):
        held = largest.get("tars", {}).get(key)
        two = largest.get("tars-2w", {}).get(key)
        if held is not None:
            with_two = ("TARS, 2 workers", two) if two is not None else (None, None)
            section.rows.append(Row(f"most concurrent TARS calls: {what}", held, "calls", *with_two))
    tars, refs = _compare_level(runs)
    costs = (
        ("CPU per call-minute, steady (calls mid-conversation)", "steady_cpu_s_per_call_minute", "s"),
        ("CPU per call beyond talking (set-up, hang-up)", "setup_cpu_s_per_call", "s"),
        ("memory per live call", "rss_per_call_mb", "MB"),
    )
    for name, key, unit in costs if tars is not None else ():
        for ref in refs:
            label = LABELS[ref["variant"]]
            section.rows.append(Row(f"TARS {name}, {tars['calls']} calls", tars[key], unit, label, ref[key]))
    if tars is not None and tars["steady_cpu_s_per_call_minute"] > 0:
        # One server process runs one event loop: with the GIL, about one core whatever the machine.
        ceiling = {
            r["variant"]: 60 / r["steady_cpu_s_per_call_minute"]
            for r in (tars, *refs)
            if r["steady_cpu_s_per_call_minute"] > 0
        }
        pipecat = ceiling.get("pipecat")
        what = "TARS calls one server process could carry, CPU only (one core, steady rate)"
        section.rows.append(Row(what, ceiling["tars"], "calls", LABELS["pipecat"] if pipecat else None, pipecat))
    section.body = (
        f"Calls arrive at random, {ARRIVALS:.0f} a second on average; each is greeted, then talks until it has "
        f"taken {plan.level_turns} turns with every call live (only those turns count). "
        "The emulators run in the benchmark's own process (one event loop: at most one core), the server in "
        "another, on the same machine. *Driver*: cores the emulators kept busy, and their event loop's lag "
        "(p99); ⚠ marks runs where the emulators, not the server, were the limit. *Other*: cores kept busy by "
        "anything else running on the machine meanwhile.\n\n"
        + _latency_table([s for rs in runs.values() for s in rs], with_calls=True)
        + "\n\n"
        + _cost_table([s for rs in runs.values() for s in rs], with_calls=True)
    )
    return section


def _compare_level(runs: dict[str, list[dict[str, Any]]]) -> tuple[Any, list[dict[str, Any]]]:
    """TARS and the references at one number of calls (10 if run): for per-call costs."""
    levels = [s["calls"] for s in runs.get("tars", [])]
    if not levels:
        return None, []
    calls = 10 if 10 in levels else levels[0]
    pick = {v: next((s for s in rs if s["calls"] == calls), None) for v, rs in runs.items() if v != "tars-2w"}
    return pick["tars"], [s for v, s in pick.items() if v != "tars" and s is not None]


async def _search(levels: list[dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    """Bisect TARS between the last level that held and the first that did not."""
    if not levels:
        return []
    key = "target" if holds(levels[0], P95_TARGET_MS) else "keeps_up"
    if key == "keeps_up" and levels[0]["calls"] != 1:
        return []
    ok = _criterion(key, levels[0])
    held = [s["calls"] for s in levels if ok(s)]
    failed = [s["calls"] for s in levels if not ok(s) and s["calls"] > max(held, default=0)]
    if not held or not failed:
        return []
    low, high = max(held), min(failed)
    found = []
    for _ in range(plan.search_steps):
        if high - low <= max(2, low // 10):
            break
        middle = (low + high) // 2
        summary = (await run_level("tars", middle, plan.level_turns, seed=middle)).summary()
        found.append(summary)
        low, high = (middle, high) if ok(summary) else (low, middle)
    return found


def _criterion(key: str, single: dict[str, Any]) -> Any:
    if key == "target":
        return lambda s: holds(s, P95_TARGET_MS)
    return lambda s: holds(s, single["added_ms"]["p95"] + KEEPS_UP_MS)


def _largest(levels: list[dict[str, Any]]) -> dict[str, int | None]:
    """The most calls held, every smaller level held too (``keeps_up`` needs a 1-call run)."""
    out: dict[str, int | None] = {"target": None, "keeps_up": None}
    if not levels:
        return out
    for key in out:
        if key == "keeps_up" and levels[0]["calls"] != 1:
            continue
        ok = _criterion(key, levels[0])
        best = 0
        for s in levels:
            if not ok(s):
                break
            best = s["calls"]
        out[key] = best
    return out


def _latency_table(summaries: Any, with_calls: bool) -> str:
    head = [
        "server",
        *(["calls"] if with_calls else []),
        "turns (matched)",
        "added p50",
        "p95",
        "p99",
        "max",
        "emulator's own p50",
        "call set-up p50",
        "late / dropped frames",
        "calls failed",
        "emulator errors",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        a = s["added_ms"]
        cells = [
            LABELS.get(s["variant"], s["variant"]),
            *([str(s["calls"])] if with_calls else []),
            f"{s['turns']} ({s['matched_turns']})",
            _ms(a["p50"]),
            _ms(a["p95"]),
            _ms(a["p99"]),
            _ms(a["max"]),
            _ms(s["emulator_ms"]["p50"]),
            _ms(s["call_setup_ms"]["p50"]),
            f"{s['late_frames']} / {s['dropped_frames']} of {s['reply_frames']}",
            str(s["failed_calls"]),
            str(s["emulator_errors"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cost_table(summaries: Any, with_calls: bool) -> str:
    head = [
        "server",
        *(["calls"] if with_calls else []),
        "CPU s per call-min (whole call)",
        "steady",
        "CPU s per call beyond talking",
        "server cores busy",
        "RSS MB idle",
        "RSS MB per call",
        "driver cores / lag p99",
        "other cores",
        "ready s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        flag = " ⚠" if s["emulator_bound"] else ""
        cells = [
            LABELS.get(s["variant"], s["variant"]),
            *([str(s["calls"])] if with_calls else []),
            _num(s["cpu_s_per_call_minute"], 2),
            _num(s["steady_cpu_s_per_call_minute"], 2),
            _num(s["setup_cpu_s_per_call"], 2),
            _num(s["server_cores_busy"], 2),
            _num(s["rss_baseline_mb"], 0),
            _num(s["rss_per_call_mb"], 1),
            f"{_num(s['driver_cores_busy'], 2)} / {_ms(s['driver_loop_lag_ms_p99'])}{flag}",
            _num(s["other_cores_busy"], 2),
            _num(s["ready_s"], 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f} ms"


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
