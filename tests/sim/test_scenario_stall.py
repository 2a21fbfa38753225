"""A scenario scripts a stall: the model hears the caller and says nothing, with no error and
no close, for a number of things heard (``model: {stall: N}``), or on the connection
(``stall: connection``: a reconnect cures it) or the whole service (``stall: service``:
nothing does). TARS's watchdog (``model.stall_seconds``) nudges it once; a model that answers
the nudge carries on; one that does not has its session reconnected, and one that is still
quiet then gets the call ended with an apology, recorded as failed with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from tars.loading import load_project
from tars.scenarios.runner import run_scenario
from tars.scenarios.scenario import load_scenarios

OPENING = """\
call:
  from: owner
turns:
  - model: {greet: true}
  - party: {say: What time is it?}
"""

RECOVERS = (
    "description: The owner asks the time; the model stalls, TARS nudges it, and it answers.\n"
    + OPENING
    + """\
  - model: {stall: 1}
  - model: {say: "Sorry, sir: it is ten o'clock."}
  - party: {say: Thank you. Goodbye.}
  - model: {tool: end_call, args: {reason: done}}
  - model: {say: "Goodbye, sir."}
expect:
  call_status: completed
  transcript_contains: [the model did not answer the caller; it is nudged once, "it is ten o'clock"]
"""
)

CURED = (
    "description: The owner asks the time; the model's connection goes quiet, TARS reconnects it.\n"
    + OPENING
    + """\
  - model: {stall: connection}
  - model: {say: "Sorry, sir: it is ten o'clock."}
  - party: {say: Thank you. Goodbye.}
  - model: {tool: end_call, args: {reason: done}}
  - model: {say: "Goodbye, sir."}
expect:
  call_status: completed
  transcript_contains:
    - the model did not answer the caller; it is nudged once
    - the model did not answer the nudge either; its session is reconnected
    - the model stalled; the session was reconnected
    - "it is ten o'clock"
"""
)

GIVES_UP = (
    "description: The owner asks the time; the model stalls for good.\n"
    + OPENING
    + """\
  - model: {stall: service}
  - party: {silence: 30000}
expect:
  call_status: failed
  transcript_contains:
    - the model did not answer the caller; it is nudged once
    - the model did not answer the nudge either; its session is reconnected
    - the reconnected model session did not answer either; the call ends with an apology
"""
)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def quick_to_nudge(project_root: Path) -> None:
    config = project_root / "tars.yaml"
    config.write_text(config.read_text().replace("  voice: Charon\n", "  voice: Charon\n  stall_seconds: 1.5\n"))


@pytest.mark.parametrize(
    ("name", "text"), [("stall_recovers", RECOVERS), ("stall_cured", CURED), ("stall_for_good", GIVES_UP)]
)
async def test_a_scripted_stall_is_caught_by_the_watchdog(
    example_project: Path, tmp_path: Path, name: str, text: str
) -> None:
    quick_to_nudge(example_project)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    project = load_project(example_project)
    [scenario] = load_scenarios([path], project)
    result = await run_scenario(scenario, project, tmp_path / "state")
    assert result.status == "passed", [(c.what, c.detail) for c in result.checks if not c.passed]
    nudges = [t for who, t in result.seen.transcript if who == "system" and t.startswith("[System] The caller said")]
    assert nudges == [
        '[System] The caller said "What time is it?" and is still waiting for your answer. Answer them now.'
    ]
