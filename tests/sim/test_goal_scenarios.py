"""Goal-call scenarios: the playbooks' own, and mistakes in them read like `tars validate`'s.

No call is placed here (the runs are in ``test_cli_test.py`` and ``test_cli_simulate_call.py``):
these check loading, the choice of scenario for `tars call --simulate`, and the pieces
that read a goal call's records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tars.config.diagnostics import ConfigError
from tars.loading import load_project
from tars.scenarios import playbook_scenarios
from tars.scenarios.expectations import Observed, check
from tars.scenarios.records import reports_in, steps_of
from tars.scenarios.scenario import OwnerTurn, load_scenarios
from tars.scenarios.text_model import plain_summary

GOAL = """\
description: A goal call.
call: {direction: outbound, playbook: book_appointment, target: dentist, inputs: {preferred_day: Wednesday}%s}
%s
"""
TURNS = """\
turns:
  - party: {say: Hello?}
  - model: {say: Hi.}
"""


def _problems(project: Any, tmp_path: Path, text: str) -> list[tuple[str, str]]:
    file = tmp_path / "goal.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_scenarios([file], project)
    return [(d.path, d.message) for d in caught.value.diagnostics]


def test_every_shipped_playbook_has_a_success_and_a_failure_scenario(example_project: Path) -> None:
    project = load_project(example_project)
    assert sorted(project.playbooks) == ["book_appointment", "business_inquiry", "dinner_invitation"]  # not scenarios
    suites = playbook_scenarios.suites(project)
    playbook_scenarios.load(project, suites)
    for suite in suites:
        outcomes = [playbook_scenarios.is_success(s, project) for s in suite.scenarios]
        assert True in outcomes and False in outcomes, suite.playbook
        for file in suite.files:
            first = file.read_text().splitlines()[0]
            assert first == "# yaml-language-server: $schema=../../../schemas/scenario.schema.json", file
    names = {s.playbook: sorted(x.name for x in s.scenarios) for s in suites}
    assert names["book_appointment"] == ["booked", "busy", "no_slot", "voicemail"]
    assert {"accepted", "declined"} <= set(names["dinner_invitation"])
    assert {"answered", "unknown"} <= set(names["business_inquiry"])
    reply = next(s for s in suites[2].scenarios if s.name == "another_time")
    assert any(isinstance(t, OwnerTurn) and t.texts.startswith("Yes") for t in reply.turns)


def test_the_simulated_call_plays_the_first_success(example_project: Path) -> None:
    project = load_project(example_project)
    chosen = {name: playbook_scenarios.simulation_scenario(project, name).name for name in project.playbooks}
    assert chosen == {"book_appointment": "booked", "business_inquiry": "answered", "dinner_invitation": "accepted"}
    assert playbook_scenarios.simulation_scenario(project, "book_appointment", "busy").call.answer == "busy"
    with pytest.raises(playbook_scenarios.NotFound, match="no scenario 'bussy'; did you mean 'busy'"):
        playbook_scenarios.simulation_scenario(project, "book_appointment", "bussy")


def test_goal_call_mistakes_are_pointed_at(example_project: Path, tmp_path: Path) -> None:
    project = load_project(example_project)
    wrong_step = TURNS + "  - model: {tool: goto_step, args: {step: find_slott}}\n"
    wrong_step += "expect: {steps_visited: [introduce, confrim]}"
    not_a_step = "is not a step of playbook 'book_appointment'; did you mean"
    assert _problems(project, tmp_path, GOAL % ("", wrong_step)) == [
        ("$.turns[2].model.args.step", f"'find_slott' {not_a_step} 'find_slot'?"),
        ("$.expect.steps_visited[1]", f"'confrim' {not_a_step} 'confirm'?"),
    ]
    stray_owner = TURNS + "  - owner: {texts: yes}"
    [(path, message)] = _problems(project, tmp_path, GOAL % ("", stray_owner))
    assert path == "$.turns[2].owner" and "right after a `model: {tool: ask_owner, …}` turn" in message
    talking_machine = GOAL % (", answer: voicemail", TURNS)
    assert _problems(project, tmp_path, talking_machine) == [
        ("$.turns", "nobody talks on a call answered 'voicemail': drop 'turns', or answer: human")
    ]
    silent_person = GOAL % ("", "expect: {call_status: completed}")
    assert [p for p, _ in _problems(project, tmp_path, silent_person)] == ["$.call"]
    inbound = "description: x\ncall: {from: owner}\n" + TURNS + "expect: {outcome: {status: booked}, report: {}}\n"
    assert _problems(project, tmp_path, inbound) == [
        ("$.expect.outcome", "'outcome' is for goal calls (direction: outbound)"),
        ("$.expect.report", "'report' is for goal calls (direction: outbound)"),
    ]


def test_a_scenario_in_the_wrong_folder_is_reported(example_project: Path) -> None:
    moved = example_project / "playbooks" / "scenarios" / "business_inquiry" / "booked.yaml"
    (example_project / "playbooks" / "scenarios" / "book_appointment" / "booked.yaml").rename(moved)
    project = load_project(example_project)
    with pytest.raises(ConfigError) as caught:
        playbook_scenarios.load(project, playbook_scenarios.suites(project, ["business_inquiry"]))
    [problem] = caught.value.diagnostics
    assert (problem.file, problem.line, problem.path) == (
        "playbooks/scenarios/business_inquiry/booked.yaml",
        8,
        "$.call.playbook",
    )
    assert "follows playbook 'book_appointment'; move it to playbooks/scenarios/book_appointment/" in problem.message


def test_steps_reports_and_summaries_are_read_from_the_records() -> None:
    lines = [
        ("caller", "Hello?"),
        ("system", "[Playbook step: find_slot] Ask for a slot."),
        ("system", "asked the owner: ok?"),
        ("system", "[Playbook] All steps are done. Say goodbye politely and end the call."),
    ]
    assert steps_of(lines, "introduce") == ["introduce", "find_slot", "end"]
    assert steps_of(lines[:1], None) == []
    owner = "+447700900123"
    sms = [
        {"to": owner, "body": "TARS, on a call with Helen, asks: ok? (reply to this text)"},
        {"to": owner, "body": "TARS call to Helen (dinner_invitation): done. Lovely. [status: accepted]"},
        {"to": "+447700900456", "body": "TARS call to someone else"},
    ]
    hooks = [{"name": "delivery", "payload": {"kind": "call_report", "text": "TARS call to La Piazza: done."}}]
    assert reports_in(sms, hooks, owner) == [
        {"via": "sms", "text": sms[1]["body"]},
        {"via": "webhook", "text": "TARS call to La Piazza: done."},
    ]
    prompt = 'Summarise...\nGoal: g\nOutcome: {"status": "booked", "when": "Wed 10:00"}\nTranscript:\nOutcome: no'
    assert plain_summary(prompt) == "The call ended booked (when: Wed 10:00)."
    assert plain_summary("Outcome: null") == "The call ended without a clear outcome."


def test_goal_expectations_say_what_happened(example_project: Path) -> None:
    project = load_project(example_project)
    seen = Observed(
        status="busy",
        outcome={"status": "no_slot"},
        outcome_source="recorded",
        summary="Nothing on Wednesday.",
        steps=["introduce", "find_slot", "alternatives"],
        reports=[{"via": "sms", "text": "TARS call to Bright Smile Dental (book_appointment): not done."}],
        party_heard=["Hello, this is TARS."],
        retries=[],
    )
    expect = {
        "outcome": {"status": "booked"},
        "outcome_source": "extracted",
        "summary": {"contains": "thursday"},
        "steps_visited": ["introduce", "find_slot", "confirm"],
        "report": {"via": "webhook"},
        "party_heard": ["voicemail"],
        "retry_scheduled": True,
    }
    checks = check(expect, seen, project, lambda who: who)
    assert [(c.passed, c.detail) for c in checks] == [
        (False, 'outcome.status is "no_slot", expected "booked"'),
        (False, "it was recorded"),
        (False, "'Nothing on Wednesday.'"),
        (False, "went introduce → find_slot → alternatives"),
        (False, "sent by sms: 'TARS call to Bright Smile Dental (book_appointment): not done.'"),
        (False, "not heard: 'voicemail' (heard: 'Hello, this is TARS.')"),
        (False, "none (the call ended busy)"),
    ]
    assert all(c.passed for c in check({"report": {"via": "sms", "contains": "NOT DONE"}}, seen, project, str))
