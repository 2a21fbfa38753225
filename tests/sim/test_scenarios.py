"""Scenario files: the shipped ones are valid, and mistakes read like `tars validate`'s.

The golden cases in ``golden/`` are scenarios with deliberate mistakes; each ``.txt`` is
exactly what `tars simulate` prints for it (regenerate with ``pytest --update-goldens``,
then read the diff: the golden is what a person will see).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tars.loading import load_project
from tars.sim.expectations import mismatch
from tars.sim.scenario import ModelTurn, PartyTurn, load_scenarios
from tars.sim.scenario_model import greeting_in, judge

SCENARIOS = Path(__file__).parents[1] / "scenarios"
GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))


@pytest.mark.parametrize("case", CASES)
def test_scenario_mistakes_are_reported_in_place(
    case: str, example_project: Path, tars: Any, monkeypatch: pytest.MonkeyPatch, update_goldens: bool
) -> None:
    monkeypatch.chdir(GOLDEN)
    result = tars("--project", example_project, "simulate", f"{case}.yaml")
    assert result.exit_code == 1, result.output
    golden = GOLDEN / f"{case}.txt"
    if update_goldens:
        golden.write_text(result.output, encoding="utf-8")
    assert result.output == golden.read_text(encoding="utf-8")


def test_mistakes_as_json(example_project: Path, tars: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.chdir(GOLDEN)
    result = tars("--project", example_project, "simulate", "--json", "unknown_names.yaml")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    first = report["errors"][0]
    assert (first["file"], first["line"], first["path"]) == ("unknown_names.yaml", 5, "$.given.contacts[0].role")


def test_the_shipped_scenarios_are_valid(example_project: Path) -> None:
    project = load_project(example_project)
    files = sorted(SCENARIOS.rglob("*.yaml"))
    loaded = {s.name: s for s in load_scenarios(files, project)}
    assert {"owner_reminder", "contact_message", "unknown_caller", "book_dentist"} <= set(loaded)
    unknown = loaded["unknown_caller"]
    assert unknown.call.from_ == "unknown"
    assert isinstance(unknown.turns[1], PartyTurn) and unknown.turns[1].say
    forged = unknown.turns[2]
    assert isinstance(forged, ModelTurn) and (forged.tool, forged.refused) == ("list_contacts", True)
    assert loaded["book_dentist"].call.direction == "outbound"


def test_a_made_up_tool_is_allowed_only_when_it_must_be_refused(example_project: Path, tmp_path: Path) -> None:
    from tars.config.diagnostics import ConfigError

    project = load_project(example_project)
    file = tmp_path / "forged.yaml"
    body = """\
description: A hallucinated tool.
call: {from: unknown}
turns:
  - model: {tool: delete_everything%s}
expect:
  tool_calls: [{tool: delete_everything, allowed: false}]
"""
    file.write_text(body % ", refused: true")
    [scenario] = load_scenarios([file], project)
    assert scenario.turns[0].tool == "delete_everything"  # type: ignore[union-attr]
    file.write_text(body % "")
    with pytest.raises(ConfigError) as caught:
        load_scenarios([file], project)
    assert [d.path for d in caught.value.diagnostics] == ["$.turns[0].model.tool", "$.expect.tool_calls[0].tool"]


def test_the_greeting_is_read_from_what_tars_sent_first() -> None:
    opening = '[The call has connected. Greet the caller now with: "Good day, "sir". How may I help?"]'
    assert greeting_in([{"role": "user", "text": opening}]) == 'Good day, "sir". How may I help?'
    assert greeting_in([{"role": "user", "text": "hello"}]) is None


def test_tool_results_are_judged_against_the_turn() -> None:
    made = {"created": {"id": 1, "text": "call Helen", "status": "pending"}}
    assert judge(ModelTurn(2, tool="create_reminder", result={"created": {"text": "call Helen"}}), made).passed
    wrong = judge(ModelTurn(2, tool="create_reminder", result={"created": {"text": "call Bob"}}), made)
    assert not wrong.passed and 'created.text is "call Helen", expected "call Bob"' in wrong.detail
    refusal = {"refused": "'list_contacts' is not available to the unknown role on this call"}
    assert judge(ModelTurn(0, tool="list_contacts", refused=True), refusal).passed
    assert not judge(ModelTurn(0, tool="list_contacts"), refusal).passed
    assert not judge(ModelTurn(0, tool="list_contacts", refused=True), {"contacts": []}).passed
    assert judge(ModelTurn(0, tool="lookup_contact", error="nobody"), {"error": "nobody called 'Bo'"}).passed


def test_partial_matching_says_where_it_differs() -> None:
    assert mismatch({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3}) is None
    assert mismatch({"a": {"b": 1}}, {"a": {"c": 2}}) == "a.b is missing"
    assert mismatch({"a": [1, 2]}, {"a": [1, 3]}) == "a[1] is 3, expected 2"


def test_given_phones_say_how_transfer_targets_answer(example_project: Path, tmp_path: Path) -> None:
    from tars.sim.twilio_call import Party

    project = load_project(example_project)
    file = tmp_path / "put_through.yaml"
    file.write_text(
        """\
description: Helen asks to be put through.
given:
  contacts:
    - {name: Helen Park, phone: "+447700900456", relationship: family}
  phones:
    owner: {rings_seconds: 4, whisper: {says: yes}, then: [{say: Hello Helen.}, {hang_up: true}]}
    Helen Park: {answers: voicemail, greeting: Leave a message.}
    "+15550001111": {answers: declines}
    "+15550002222": {whisper: {hangs_up: true}}
call: {from: unknown}
turns:
  - model: {greet: true}
  - party: {hang_up: true}
"""
    )
    [scenario] = load_scenarios([file], project)
    parties = {number: Party(**kwargs) for number, kwargs in scenario.phone_parties(project).items()}
    owner = parties[project.owner.phone]
    assert (owner.ring_ms, owner.gather_speech, owner.whisper) == (4000, ["yes"], "listen")
    assert owner.script == [{"say": "Hello Helen."}, {"hang_up": True}]
    helen = parties["+447700900456"]
    assert (helen.answer, helen.greeting, helen.script) == ("voicemail", "Leave a message.", None)
    assert parties["+15550001111"].answer == "decline"
    assert parties["+15550002222"].whisper == "hang_up"
