"""Tables fit an 80-column terminal: numbers never split, one line a call, tools one a line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SUMMARY = (
    "Booked a check-up for Wednesday at 3pm with Dr Patel; they asked to bring the insurance card "
    "and arrive ten minutes early."
)


@pytest.fixture
def cli(example_project: Path, tars: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    return lambda *args: tars("--project", example_project, *args, env={"COLUMNS": "80"})


def _calls(example_project: Path) -> None:
    from tars.loading import load_project
    from tars.store.calls import add_tool_invocation, start_call, update_call
    from tars.store.database import connect

    project = load_project(example_project)
    with connect(project.database_url) as db, db.session() as s:
        for _ in range(2):
            call = start_call(
                s,
                direction="outbound",
                from_number="+447700900999",
                to_number="+442079460123",
                playbook="book_appointment",
                status="completed",
            )
            update_call(s, call.id, summary=SUMMARY)
        for tool in ("goto_step", "record_outcome", "end_call"):
            add_tool_invocation(
                s, 1, tool, arguments={"step": "find_slot", "notes": SUMMARY}, allowed=True, result={"ok": SUMMARY}
            )
        s.commit()


def test_contacts_list_never_splits_a_number(cli: Callable[..., Any]) -> None:
    long = [
        "--relationship",
        "sister-in-law",
        "--email",
        "alexandra.montgomery@example.com",
        "--birthday",
        "1990-01-02",
    ]
    assert cli("contacts", "add", "Alexandra Montgomery-Smythe", "+447700900555", *long).exit_code == 0
    assert cli("contacts", "add", "Bob Smith", "+447700900123").exit_code == 0
    listed = cli("contacts", "list").stdout
    assert "+44 7700 900555" in listed and "+44 7700 900123" in listed
    assert "1990-01-02" in listed
    assert max(len(line) for line in listed.splitlines()) <= 80


def test_calls_list_fits_80_columns_with_the_summary_under_each_call(
    cli: Callable[..., Any], example_project: Path
) -> None:
    _calls(example_project)
    lines = cli("calls", "list").stdout.splitlines()
    assert len(lines) == 1 + 2 * 2 + 1, lines  # the header, two calls of two lines, the caption
    assert all(len(line) <= 80 for line in lines), lines
    for call, summary in (lines[1:3], lines[3:5]):
        assert "+442079460123" in call and "book_appointment" in call and "completed" in call
        assert summary.strip().startswith("Booked a check-up for Wednesday") and summary.endswith("…")


def test_calls_list_is_one_line_a_call_when_wide(
    example_project: Path, tars: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    _calls(example_project)
    lines = tars("--project", example_project, "calls", "list", env={"COLUMNS": "120"}).stdout.splitlines()
    assert len(lines) == 1 + 2 + 1, lines
    assert all(len(line) <= 120 for line in lines)
    assert all("book_appointment" in line and "Booked a check-up" in line for line in lines[1:3])


def test_calls_show_lists_tools_one_a_line_when_narrow(cli: Callable[..., Any], example_project: Path) -> None:
    _calls(example_project)
    shown = cli("calls", "show", "1").stdout
    tools = shown[shown.index("Tools\n") :].split("\n\n")[0].splitlines()[1:]
    assert [line.split()[1] for line in tools if line[:2].isdigit()] == ["goto_step", "record_outcome", "end_call"]
    assert len(tools) <= 3 * 4, "each tool takes a few wrapped lines, not a word a line"
