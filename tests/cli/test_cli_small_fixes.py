"""Smaller things a new user tripped over: a role nobody has, a number two contacts share,
and who may read the database."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def contacts(example_project: Path, tars: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    return lambda *args: tars("--project", example_project, "contacts", *args)


def test_listing_by_a_role_says_whether_the_role_exists(contacts: Callable[..., Any]) -> None:
    assert contacts("add", "Alice Smith", "+447700900111").exit_code == 0
    unknown = contacts("list", "--role", "delegat")
    assert unknown.exit_code == 1
    assert unknown.output == (
        "Error: 'delegat' is not a role in tars.yaml; did you mean 'delegate'?\n"
        "roles: automation, contact, delegate, owner, unknown, blocked\n"
    )
    nobody = contacts("list", "--role", "delegate")
    assert nobody.exit_code == 0 and nobody.output == "No contact has the role 'delegate'.\n"
    assert "No contacts yet" not in nobody.output


def test_a_shared_number_is_pointed_out(contacts: Callable[..., Any]) -> None:
    assert contacts("add", "Bob Smith", "07700 900123").exit_code == 0
    second = contacts("add", "Jane Smith", "+447700900123", "--role", "delegate")
    assert second.exit_code == 0
    assert (
        "Note: +44 7700 900123 is also the number of Bob Smith; calls from it are taken as Bob Smith's (role contact)."
        in " ".join(second.output.split())
    )
    assert "Note:" not in contacts("add", "Carol", "+447700900124").output


def test_the_database_is_readable_by_its_owner_alone(contacts: Callable[..., Any], example_project: Path) -> None:
    assert contacts("list").exit_code == 0
    database = example_project / ".tars" / "tars.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["remind", "done", "abc"], "Invalid value for 'reminder_id': expected a whole number"),
        (["calls", "list", "-n", "0"], "Invalid value for '--limit' / '-n': must be at least 1"),
    ],
    ids=" ".join,
)
def test_parameter_errors_are_in_plain_words(
    args: list[str], says: str, example_project: Path, tars: Callable[..., Any]
) -> None:
    result = tars("--project", example_project, *args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert says in result.output
    assert "Input should" not in result.output and "Value error" not in result.output


def test_a_time_in_another_language_says_only_english_is_read(
    contacts: Callable[..., Any], example_project: Path, tars: Callable[..., Any]
) -> None:
    result = tars("--project", example_project, "remind", "add", "x", "--at", "demain 9h")
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: could not understand the time 'demain 9h'\ntimes are read in English: try 'tomorrow 2pm'"
    )


def test_errors_are_json_too_with_json(contacts: Callable[..., Any]) -> None:
    import json

    result = contacts("show", "nobody", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": "no contact named 'nobody'",
        "hint": "see them with `tars contacts list`; add one with `tars contacts add NAME PHONE`",
        "exit_code": 1,
    }
    assert "Error: no contact named 'nobody'" in result.stderr
