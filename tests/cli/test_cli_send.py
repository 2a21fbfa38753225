"""`tars send --simulate "…"`: the owner texts TARS from the command line; a text session runs
here against the emulated text model and answers from the project's own store. (Without
--simulate it goes to the running server: tests/server/test_text_sessions.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def run(example_project: Path, tars: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    def invoke(*args: str) -> Any:
        return tars("--project", example_project, *args)

    return invoke


def test_what_reminders_do_i_have_is_answered_from_the_store(run: Callable[..., Any]) -> None:
    assert run("remind", "add", "call mum", "--at", "tomorrow 5pm").exit_code == 0
    result = run("send", "--simulate", "what reminders do I have?")
    assert result.exit_code == 0, result.output
    assert "tool list_reminders" in result.stdout
    assert "TARS  You have 1 reminder: call mum (" in result.stdout
    assert "17:00)." in result.stdout
    [session] = json.loads(run("calls", "list", "--kind", "text", "--json").stdout)
    assert (session["kind"], session["status"]) == ("text", "completed")
    assert json.loads(run("calls", "list", "--kind", "voice", "--json").stdout) == []
    shown = run("calls", "show", str(session["id"])).stdout
    assert "what reminders do I have?" in shown and "list_reminders" in shown


def test_a_reminder_made_by_text_is_in_the_store(run: Callable[..., Any]) -> None:
    sent = json.loads(run("send", "--simulate", "remind me at 5pm to call mum", "--json").stdout)
    assert [(t["name"], t["allowed"]) for t in sent["tools"]] == [("create_reminder", True)]
    assert sent["answer"].startswith("Done: I'll remind you to call mum at ")
    [reminder] = json.loads(run("remind", "list", "--json").stdout)
    assert reminder["text"] == "call mum"


def test_an_empty_message_or_an_unknown_kind_is_refused(run: Callable[..., Any]) -> None:
    empty = run("send", "  ")
    assert empty.exit_code == 1
    assert "Error: the message is empty" in empty.output
    kind = run("calls", "list", "--kind", "sms")
    assert kind.exit_code == 1
    assert "Error: --kind 'sms' is not a kind of call" in kind.output
    assert "use --kind voice or --kind text" in kind.output


def test_without_a_server_send_says_how_to_start_one(run: Callable[..., Any]) -> None:
    result = run("send", "what reminders do I have?")
    assert result.exit_code == 1
    assert "Error: no TARS server has run for this project yet" in result.output
    assert "start one with `tars serve`, or try `--simulate`" in result.output
