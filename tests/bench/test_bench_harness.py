"""The benchmark harness runs end to end (tiny settings); the figures themselves live in bench/."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import main
from bench.callers import CallRecord, Turn, reply_bytes
from bench.calls import _largest
from bench.callstats import ReplyAudio, reply_audio
from tars.emulators.twilio.media import AgentFrame


def test_one_turn_through_tars_and_the_floor_makes_a_report(tmp_path: Path) -> None:
    assert main(["--smoke", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["command"] == f"python -m bench --smoke --out {tmp_path}"
    assert data["machine"]["cores"] >= 1
    runs = data["sections"]["latency"]["data"]["runs"]
    assert set(runs) == {"tars", "floor"}
    for run in runs.values():
        assert (run["turns"], run["matched_turns"], run["failed_calls"]) == (1, 1, 0)
        assert run["added_ms"]["p50"] is not None
    assert (tmp_path / "latest.md").read_text().startswith("# TARS benchmarks")
    assert len(list(tmp_path.glob("*.json"))) == 2  # latest and the dated copy


def frames(*spec: tuple[float, int]) -> list[AgentFrame]:
    return [AgentFrame(at, bytes(size)) for at, size in spec]


def test_reply_audio_counts_frames_behind_real_time() -> None:
    expected = reply_bytes()
    on_time = Turn(0, 0, 0.0, frames(*[(1.0 + i * 0.1, 800) for i in range(expected // 800)]))
    assert reply_audio(on_time, expected) == ReplyAudio(expected // 800, 0, 0, 0)
    # The third frame is 50 ms late (heard as a gap without a buffer, not a loss); the
    # fourth 300 ms late (past the 200 ms jitter buffer: dropped); the rest never came.
    stalled = Turn(0, 0, 0.0, frames((1.0, 800), (1.1, 800), (1.25, 800), (1.6, 800)))
    audio = reply_audio(stalled, expected)
    assert (audio.late, audio.missing_bytes) == (2, expected - 3200)
    assert audio.dropped == 1 + (expected - 3200) // 160


def test_largest_level_held_needs_every_smaller_level_held() -> None:
    def level(calls: int, p95: float, dropped: int = 0) -> dict[str, object]:
        return {"calls": calls, "failed_calls": 0, "dropped_frames": dropped, "added_ms": {"n": 10, "p95": p95}}

    levels = [level(1, 40), level(10, 60), level(25, 120), level(50, 80)]
    assert _largest(levels) == {"target": 10, "keeps_up": 10}
    assert _largest([level(1, 150), level(10, 170), level(25, 260, dropped=3)]) == {"target": 0, "keeps_up": 10}
    assert CallRecord(0).minutes == 0.0
