"""Dialling is deliberate: an exact name, alias or number dials; a fuzzy or ambiguous one is
confirmed at a terminal, refused with the candidates elsewhere, or taken with ``--yes``."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tars.cli.app import app
from tars.project import Project
from tests.server.harness import Line, Receptionist, make_project

GOLDEN = Path(__file__).parent / "golden"
BOOK = ["--playbook", "book_appointment", "--var", "preferred_day=Wednesday"]


@pytest.fixture(autouse=True)
def _inside_the_calling_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Wednesday, 10:00 in London: the dentist's calling window is open (see
    test_cli_scheduled_calls for calls outside it)."""
    monkeypatch.setenv("TARS_NOW", "2026-12-02T10:00:00+00:00")


def run(project: Project, *args: str) -> Any:
    return CliRunner().invoke(app, ["--project", str(project.root), *args])


def calls_recorded(project: Project) -> int:
    from tars.store.calls import list_calls
    from tars.store.database import connect

    with connect(project.database_url) as db, db.session() as s:
        return len(list_calls(s))


def test_a_fuzzy_name_is_refused_off_a_terminal_with_the_candidates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_goldens: bool
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    result = run(project, "call", "dentsit", *BOOK, "--no-wait")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    golden = GOLDEN / "call_fuzzy_refused.txt"
    if update_goldens:
        golden.write_text(result.output, encoding="utf-8")
    assert result.output == golden.read_text(encoding="utf-8")


def test_an_ambiguous_name_is_refused_even_with_yes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    for name, phone in (("Helen Price", "+447700900111"), ("Helen Park", "+447700900222")):
        assert run(project, "contacts", "add", name, phone).exit_code == 0
    argv = ["call", "Helen", "--playbook", "dinner_invitation", "--var", "guest_name=Helen"]
    result = run(project, *argv, "--var", "proposed_time=Friday", "--yes", "--no-wait")
    assert result.exit_code == 1
    assert "'Helen' could mean several: Helen Park (contact, +447700900222); Helen Price" in result.output


async def test_exact_names_dial_and_yes_takes_the_best_fuzzy_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line:
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        refused = await asyncio.to_thread(run, project, "call", "dent", *BOOK, "--no-wait")
        assert refused.exit_code == 1 and "'dent' is not an exact name" in refused.output
        assert calls_recorded(project) == 0, "a refused name asks the server for nothing"
        for target in (["the dentist"], ["dentsit", "--yes"]):
            result = await asyncio.to_thread(run, project, "call", *target, *BOOK, "--no-wait")
            assert result.exit_code == 0, result.output
            call = await line.twilio.next_call(timeout=20)
            assert call.to == "+442079460123"
            await call.wait_for_agent_utterance(timeout=30)  # answered and greeted, then the party hangs up
            await call.hang_up()
            await call.wait_ended(timeout=30)
    assert calls_recorded(project) == 2


def test_names_aliases_and_numbers_are_exact_and_the_rest_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    project = make_project(tmp_path / "p", monkeypatch)
    assert run(project, "contacts", "add", "Zoë O'Neil", "+447700900333").exit_code == 0
    for target, exact in [
        ("dentist", True),
        ("Bright Smile Dental", True),
        ("the dentist", True),
        ("+44 20 7946 0123", True),
        ("zoe o'neil", True),
        ("dentsit", False),
        ("bright", False),
        ("zoe", False),
    ]:
        result = run(project, "call", target, *BOOK, "--dry-run", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["needs_confirmation"] is not exact, target


def _at_a_terminal(project: Project, answer: str) -> tuple[int, str]:
    """`tars call dentsit …` with its standard input a terminal, answering ``answer``."""
    leader, follower = pty.openpty()
    env = {**os.environ, "NO_COLOR": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "tars", "--project", str(project.root), "call", "dentsit", *BOOK, "--no-wait"],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    os.close(follower)
    os.write(leader, answer.encode() + b"\n")
    printed, _ = child.communicate(timeout=120)
    os.close(leader)
    return child.returncode, printed.decode()


@pytest.mark.parametrize(("answer", "says"), [("n", "nothing was dialled"), ("y", "no TARS server has run")])
def test_a_fuzzy_name_is_confirmed_at_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, says: str
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    code, printed = _at_a_terminal(project, answer)
    assert "'dentsit' is not an exact name. Call Bright Smile Dental (directory, +442079460123)?" in printed
    assert code == 1 and says in printed, printed
    assert "Traceback" not in printed


def test_contacts_show_lists_the_contacts_a_beginning_could_mean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    for name, phone in (("Alice Smith", "+447700900111"), ("Alicia Jones", "+447700900222")):
        assert run(project, "contacts", "add", name, phone).exit_code == 0
    result = run(project, "contacts", "show", "al")
    assert result.exit_code == 1
    assert "'al' could mean several contacts: Alice Smith, Alicia Jones" in result.output
    assert "no contact named" not in result.output
    assert "Alicia Jones" in run(project, "contacts", "show", "alicia").output
