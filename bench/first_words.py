"""Answer → first reply audio: how long a caller waits for the greeting, with a model service
that takes a realistic time to connect.

The Gemini emulator holds every connect ``CONNECT_MS`` before ``setupComplete`` (TLS, the
websocket upgrade and the setup: 700 ms, the figure issue 18 takes for the real service; no
public measurement of it was found, so it is a stated assumption, not a citation). One call
at a time, per server:

* **answer → first audio**: from the moment the Twilio emulator answers the call (it posts
  the voice webhook) to the arrival of the greeting's first audio frame at the Twilio end;
* **the emulator's own first audio**: what the model itself takes for that greeting, the
  connect included: ``CONNECT_MS`` plus, measured in the emulator, from the request that
  starts the conversation to the greeting's first frame sent. A client that lost no time
  would wait exactly this long.

TARS opens the model session when the voice webhook answers (``tars.calls.preopen``), so the
connect overlaps Twilio's own set-up of the media stream; bare Pipecat connects once the
stream has started.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.callers import Emulators
from bench.common import Row
from bench.report import Section
from bench.servers import LABELS, Server

CONNECT_MS = 700
VARIANTS = ("tars", "pipecat")
CLOSE_MS = 50.0  # TARS's target: within this of the emulator's own first audio


async def measure(variant: str, calls: int) -> dict[str, Any]:
    """``calls`` calls one after another (after one unmeasured warm-up) to ``variant``."""
    answer_ms: list[float] = []
    own_ms: list[float] = []
    errors: list[str] = []
    async with Emulators() as emulators:
        emulators.gemini.options.connect_delay_ms = CONNECT_MS
        server = Server(variant, emulators.upstream())
        try:
            await server.start()
            emulators.route_to(server.local_url)
            await emulators.run_calls(1, 0)  # warm-up: first-call imports, caches, TLS
            for _ in range(calls):
                [record] = await emulators.run_calls(1, 0)
                session = next((s for s in emulators.gemini.sessions if s.id == record.session), None)
                if record.error or record.greeting_at is None or session is None:
                    errors.append(record.error or "greeting not matched to a session")
                    continue
                if session.asked_at is None or session.first_audio_at is None:
                    errors.append(f"{session.id}: no greeting timing")
                    continue
                answer_ms.append((record.greeting_at - record.placed_at) * 1000)
                own_ms.append(CONNECT_MS + (session.first_audio_at - session.asked_at) * 1000)
        finally:
            await server.stop()
    return {
        "variant": variant,
        "calls": len(answer_ms),
        "answer_ms": answer_ms,
        "own_ms": own_ms,
        "answer_median_ms": statistics.median(answer_ms) if answer_ms else None,
        "own_median_ms": statistics.median(own_ms) if own_ms else None,
        "errors": errors + emulators.errors,
    }


async def first_words(calls: int) -> Section:
    runs = {variant: await measure(variant, calls) for variant in VARIANTS}
    tars, bare = runs["tars"], runs["pipecat"]
    section = Section("first_words", "Answer → first reply audio (model connect 700 ms)", data={"runs": runs})
    if tars["answer_median_ms"] is not None and bare["answer_median_ms"] is not None:
        section.rows.append(
            Row("TARS answer → first audio (median)", tars["answer_median_ms"], "ms", LABELS["pipecat"],
                bare["answer_median_ms"], target=f"within {CLOSE_MS:.0f} ms of the emulator's own")
        )  # fmt: skip
    if tars["answer_median_ms"] is not None and tars["own_median_ms"] is not None:
        section.rows.append(
            Row("TARS above the emulator's own first audio (median)",
                tars["answer_median_ms"] - tars["own_median_ms"], "ms", target=f"≤ {CLOSE_MS:.0f} ms")
        )  # fmt: skip
    lines = [
        "| server | calls | answer → first audio (median) | emulator's own (median) | above it |",
        "|---|---|---|---|---|",
    ]
    for run in runs.values():
        answer, own = run["answer_median_ms"], run["own_median_ms"]
        above = f"{answer - own:.0f} ms" if answer is not None and own is not None else "—"
        lines.append(f"| {LABELS[run['variant']]} | {run['calls']} | {_ms(answer)} | {_ms(own)} | {above} |")
    errors = [e for run in runs.values() for e in run["errors"]]
    section.body = (
        f"One call at a time, {calls} per server after a warm-up; the Gemini emulator takes {CONNECT_MS} ms "
        "to connect. See bench/first_words.py for the two clocks.\n\n"
        + "\n".join(lines)
        + (f"\n\nErrors: {'; '.join(errors[:5])}" if errors else "")
    )
    return section


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"
