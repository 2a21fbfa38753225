"""A scenario sets the emulated Live service's limits (``given.gemini``), so a long call plays in seconds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tars.loading import load_project
from tars.scenarios.runner import run_scenario
from tars.scenarios.scenario import load_scenarios

SCENARIO = """\
description: The owner rings and says nothing for a while; the model service's session runs out.
call:
  from: owner
given:
  gemini: {session_limit_seconds: 2, go_away_lead_seconds: 1}
turns:
  - model: {greet: true}
  - party: {silence: 30000}
expect:
  call_status: failed
"""


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


async def test_a_scenario_sets_the_session_limit(example_project: Path, tmp_path: Path) -> None:
    config = example_project / "tars.yaml"
    text = config.read_text().replace(
        "  voice: Charon\n", "  voice: Charon\n  context_window_compression:\n    enabled: false\n"
    )
    config.write_text(text)
    path = tmp_path / "long_silence.yaml"
    path.write_text(SCENARIO)
    project = load_project(example_project)
    [scenario] = load_scenarios([path], project)
    assert scenario.gemini_limits == {"session_limit_s": 2.0, "go_away_lead_s": 1.0}
    result = await run_scenario(scenario, project, tmp_path / "state")
    assert result.status == "passed", [(c.what, c.detail) for c in result.checks if not c.passed]
    # timeLeft is what remains when goAway is sent: 1s, or a little less on a busy machine.
    # The first goAway; TARS then moves to a new connection, which hears the same deadline again
    # (the session's own limit, tars.calls.handover).
    notices = [t for who, t in result.seen.transcript if who == "system" and "will close the connection" in t]
    left = re.fullmatch(r"the model service will close the connection in ([\d.]+)s \(goAway\)", notices[0])
    assert left is not None and 0.5 < float(left[1]) <= 1.0, notices


UNTIDY = """\
description: The owner rings; the model speaks as the real service sends it, slowly.
call:
  from: owner
given:
  gemini: {delivery: realistic, pacing: 1.5, transcription_chars: 5, handle_lifetime_seconds: 30}
turns:
  - model: {greet: true}
expect:
  call_status: completed
"""


def test_a_scenario_asks_for_untidy_delivery(example_project: Path, tmp_path: Path) -> None:
    path = tmp_path / "untidy.yaml"
    path.write_text(UNTIDY)
    [scenario] = load_scenarios([path], load_project(example_project))
    assert scenario.gemini_limits == {
        "parts_per_message": 3,
        "transcription_chars": 5,  # set on its own, over the preset's 3
        "burst_messages": 2,
        "pacing": 1.5,
        "handle_lifetime_s": 30.0,
    }


def test_a_scenario_asks_for_tidy_delivery(example_project: Path, tmp_path: Path) -> None:
    path = tmp_path / "tidy.yaml"
    path.write_text(UNTIDY.replace("delivery: realistic, pacing: 1.5, transcription_chars: 5", "delivery: tidy"))
    [scenario] = load_scenarios([path], load_project(example_project))
    # Untidy is the emulator's default (as the real service); tidy is asked for.
    assert scenario.gemini_limits == {
        "parts_per_message": 1,
        "transcription_chars": None,
        "burst_messages": 1,
        "handle_lifetime_s": 30.0,
    }
