"""The lateness benchmark runs (a tiny run; the real one is `python -m bench.reminders`)."""

from __future__ import annotations

import pytest


def test_the_reminder_bench_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.reminders import run

    result = run(20, 0.5, inline=True, lead=0.5, timeout=20, setenv=monkeypatch.setenv)
    assert (result["delivered"], result["duplicates"], result["early"]) == (20, 0, 0)
    assert result["p50"] <= result["p95"] <= result["max"]
