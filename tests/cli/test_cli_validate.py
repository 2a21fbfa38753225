"""`tars validate` and the exit codes every command keeps: 0 ok, 1 fix it, 2 usage, 3 crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tars import loading

KEYS = {"file", "line", "col", "path", "message", "code", "hint"}


def test_valid_project(example_project: Path, tars: Any) -> None:
    result = tars("--project", example_project, "validate")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"✓ {example_project} is valid: persona 'tars', ")


def test_json_when_valid_is_an_empty_list(example_project: Path, tars: Any) -> None:
    result = tars("--project", example_project, "validate", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_json_when_invalid_is_a_list_of_objects(example_project: Path, tars: Any) -> None:
    config = example_project / "tars.yaml"
    config.write_text(config.read_text().replace("persona: tars", "persona: tarz"))
    result = tars("--project", example_project, "validate", "--json")
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert isinstance(found, list) and len(found) == 1
    assert set(found[0]) == KEYS
    assert found[0]["file"] == "tars.yaml"
    assert found[0]["path"] == "$.persona"
    assert (found[0]["line"], found[0]["col"]) == (17, 10)
    assert "did you mean 'tars'?" in found[0]["message"]


def test_json_when_no_project(tmp_path: Path, tars: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = tars("validate", "--json")
    assert result.exit_code == 1
    [problem] = json.loads(result.stdout)
    assert problem["code"] == "project.missing"


def test_crash_exits_3_with_a_crash_log(
    example_project: Path, tmp_path: Path, tars: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal bug (here: a pass that raises) is a crash, not the user's fault."""

    def broken_pass(*args: object) -> list[object]:
        raise RuntimeError("the schema pass fell over")

    monkeypatch.setattr(loading, "check_schemas", broken_pass)
    state = tmp_path / "state"
    secret = "s3cr3t-auth-token-value"
    env = {"TARS_HOME": str(state), "TWILIO_AUTH_TOKEN": secret}
    result = tars("--project", example_project, "validate", env=env)
    assert result.exit_code == 3
    assert "TARS crashed: RuntimeError: the schema pass fell over" in result.output
    assert "Traceback" not in result.output
    [log] = list(state.glob("crash-*.log"))
    assert str(log) in "".join(result.output.split())  # however the console wrapped it
    report = log.read_text()
    assert "Traceback" in report and "RuntimeError: the schema pass fell over" in report
    assert "TWILIO_AUTH_TOKEN=••••••" in report
    assert secret not in report


def test_crash_log_without_tars_home_goes_to_the_project_state_folder(
    example_project: Path, tars: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_pass(*args: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(loading, "check_schemas", broken_pass)
    monkeypatch.chdir(example_project / "playbooks")
    assert tars("validate").exit_code == 3
    assert len(list((example_project / ".tars").glob("crash-*.log"))) == 1

    monkeypatch.chdir(example_project.parent)
    assert tars("--project", example_project, "validate").exit_code == 3
    assert len(list((example_project / ".tars").glob("crash-*.log"))) == 2


def test_interrupt_exits_130(example_project: Path, tars: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object) -> list[object]:
        raise KeyboardInterrupt

    monkeypatch.setattr(loading, "check_schemas", interrupted)
    result = tars("--project", example_project, "validate")
    assert result.exit_code == 130
    assert "Traceback" not in result.output


def test_unreadable_playbook_entries_are_reported_not_skipped(example_project: Path, tars: Any) -> None:
    playbooks = example_project / "playbooks"
    (playbooks / "loop.yaml").symlink_to("loop.yaml")
    (playbooks / "gone.yaml").symlink_to("nowhere.yaml")
    (playbooks / "folder.yaml").mkdir()
    result = tars("--project", example_project, "validate")
    assert result.exit_code == 1
    assert result.output == (
        "playbooks/folder.yaml  $  is a folder, not a YAML file; it was not read\n"
        "playbooks/gone.yaml  $  is a symlink to nowhere.yaml, which does not exist; it was not read\n"
        "playbooks/loop.yaml  $  is a symlink that loops back on itself; it was not read\n"
        "✗ 3 errors in 3 files\n"
    )


def test_scenario_files_are_checked_too(example_project: Path, tars: Any) -> None:
    scenario = example_project / "playbooks" / "scenarios" / "book_appointment" / "booked.yaml"
    text = scenario.read_text()
    said = '  - party: {say: "Bright Smile Dental, good morning. How can I help?"}'
    assert said in text
    scenario.write_text(text.replace(said, "  - party: {say: Bright Smile Dental, good morning}"))
    result = tars("--project", example_project, "validate")
    assert result.exit_code == 1
    assert result.output.startswith(
        "playbooks/scenarios/book_appointment/booked.yaml:14:12  $.turns[0].party  a comma ends the words in {say: ...}"
    )
    assert tars("--project", example_project, "validate", "--no-scenarios").exit_code == 0


def test_schema_errors_do_not_hide_reference_errors(example_project: Path, tars: Any) -> None:
    """Every problem in one pass: a schema error in one file, references broken in others."""

    def edit(file: str, old: str, new: str) -> None:
        path = example_project / file
        path.write_text(path.read_text().replace(old, new, 1))

    edit("personas/tars.yaml", "voice: Charon", "voice: 7")
    edit(
        "tars.yaml",
        "tools: [current_time, take_message, transfer_call, end_call]",
        "tools: [current_tme, take_message, transfer_call, end_call]",
    )
    edit("playbooks/dinner_invitation.yaml", "role: delegate", "role: delegat")
    edit("playbooks/book_appointment.yaml", "role: delegate", "role: [delegate]")  # broken: not walked
    result = tars("--project", example_project, "validate", "--json")
    assert result.exit_code == 1
    found = sorted((p["file"], p["path"]) for p in json.loads(result.stdout))
    assert found == [
        ("personas/tars.yaml", "$.voice"),
        ("playbooks/book_appointment.yaml", "$.role"),
        ("playbooks/dinner_invitation.yaml", "$.role"),
        ("tars.yaml", "$.roles.contact.tools[0]"),
    ]


def test_a_broken_tars_yaml_shows_its_schema_errors_alone(example_project: Path, tars: Any) -> None:
    """References are checked against tars.yaml: while it fails its schema, they are not."""
    config = example_project / "tars.yaml"
    config.write_text(config.read_text().replace("  retries: 3\n", "  retries: many\n"))
    playbook = example_project / "playbooks" / "dinner_invitation.yaml"
    playbook.write_text(playbook.read_text().replace("role: delegate", "role: delegat"))
    result = tars("--project", example_project, "validate", "--json")
    assert [(p["file"], p["path"]) for p in json.loads(result.stdout)] == [("tars.yaml", "$.delivery.retries")]
