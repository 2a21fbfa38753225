"""Scheduled calls are first-class: `tars call --at` says when and why it waits, `tars calls
list --scheduled` and `tars calls show` show it, `tars calls cancel` takes it off the queue;
`tars call --dry-run` states the calling window.

The clock is fixed (``TARS_NOW``) at 01:05 London time on a Thursday: the dentist
(``calling_window: callee``, open Mon-Fri 09:00-17:30) is closed until 09:00.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tars.cli.app import app
from tars.project import Project
from tests.server.harness import Line, Receptionist, make_project

# A Thursday night years ahead: the running server's scheduler keeps the real clock, and a call
# scheduled for a morning already past would be placed at once.
NIGHT = "2030-12-05T01:05:00+00:00"
BOOK = ["--playbook", "book_appointment", "--var", "preferred_day=Wednesday"]
WINDOW = "Bright Smile Dental's hours: mon–fri 09:00–17:30 (Europe/London)"


def run(project: Project, *args: str) -> Any:
    return CliRunner().invoke(app, ["--project", str(project.root), *args])


def test_dry_run_states_the_calling_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    monkeypatch.setenv("TARS_NOW", NIGHT)
    result = run(project, "call", "dentist", *BOOK, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"Calling window closed now; opens Thu 05 Dec 2030 09:00 — {WINDOW}" in result.output
    later = run(project, "call", "dentist", *BOOK, "--dry-run", "--at", "today 10am", "--json")
    window = json.loads(later.stdout)["window"]
    assert window["open"] is True and window["opens_at"] is None and window["rule"] == "callee"
    anytime = run(project, "call", "+14155550100", "--playbook", "business_inquiry", "--var", "question=x", "--dry-run")
    assert "Calling window open now — any time (the callee has no opening hours in the directory)" in anytime.output


async def test_a_scheduled_call_is_listed_shown_and_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    monkeypatch.setenv("TARS_NOW", NIGHT)
    async with Line(project, Receptionist) as line:
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        placed = await asyncio.to_thread(run, project, "call", "dentist", *BOOK, "--at", "in 5 minutes", "--no-wait")
        assert placed.exit_code == 0, placed.output
        assert "for Thu 05 Dec 2030 01:10" in placed.output
        assert "It waits for the calling window, which opens Thu 05 Dec 2030 09:00." in placed.output
        assert "Cancel it with tars calls cancel 1." in placed.output

        listed = run(project, "calls", "list", "--scheduled", "--json")
        assert [(c["id"], c["status"], c["scheduled_at"]) for c in json.loads(listed.stdout)] == [
            (1, "queued", "2030-12-05T01:10:00+00:00")
        ]
        table = run(project, "calls", "list", "--scheduled").output
        assert "Thu 05 Dec 2030 01:10" in table and "book_appointment" in table

        shown = " ".join(run(project, "calls", "show", "1").output.split())
        assert shown.startswith("Call 1 to Bright Smile Dental (+442079460123) — queued")
        assert "scheduled Thu 05 Dec 2030 01:10" in shown
        assert f"waits for the calling window ({WINDOW}) opens Thu 05 Dec 2030 09:00" in shown
        assert "_callee" not in shown

        cancelled = run(project, "calls", "cancel", "1")
        assert cancelled.exit_code == 0, cancelled.output
        assert "✓ Cancelled call 1 to Bright Smile Dental (book_appointment, due Thu 05 Dec 2030 01:10)" in (
            cancelled.output
        )
        again = run(project, "calls", "cancel", "1")
        assert again.exit_code == 1 and "Error: call 1 was already cancelled" in again.output
        assert "No calls are scheduled." in run(project, "calls", "list", "--scheduled").output
        assert "cancelled with `tars calls cancel`" in run(project, "calls", "show", "1").output
    assert not line.twilio.calls, "the cancelled call was never dialled"


def test_only_a_waiting_call_can_be_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tars.store.calls import start_call
    from tars.store.database import connect

    project = make_project(tmp_path / "p", monkeypatch)
    with connect(project.database_url) as db, db.session() as s:
        start_call(s, direction="inbound", from_number="+447700900111", to_number="+447700900999", status="completed")
        s.commit()
    done = run(project, "calls", "cancel", "1")
    assert done.exit_code == 1
    assert "Error: call 1 is not a scheduled call waiting to be placed (it is completed)" in done.output
    missing = run(project, "calls", "cancel", "7")
    assert missing.exit_code == 1 and "Error: there is no call 7" in missing.output
    typo = run(project, "calls", "cancel", "seven")
    assert typo.exit_code == 2 and "'seven' is not a call id" in typo.output


def test_a_call_outside_its_window_is_refused_off_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    monkeypatch.setenv("TARS_NOW", NIGHT)
    result = run(project, "call", "dentist", *BOOK, "--no-wait")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: the calling window of book_appointment is closed now: it opens Thu 05 Dec 2030 09:00 ({WINDOW})\n"
        "schedule it with --at '2030-12-05T09:00', or call anyway with --now\n"
    )
    clash = run(project, "call", "dentist", *BOOK, "--now", "--at", "tomorrow 10am")
    assert clash.exit_code == 2 and "--now and --at contradict each other" in clash.output


async def test_now_calls_outside_the_window_and_the_record_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    monkeypatch.setenv("TARS_NOW", NIGHT)
    async with Line(project, Receptionist) as line:
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        placed = await asyncio.to_thread(run, project, "call", "dentist", *BOOK, "--now", "--no-wait")
        assert placed.exit_code == 0, placed.output
        call = await line.twilio.next_call(timeout=20)
        assert call.to == "+442079460123"
        await call.wait_for_agent_utterance(timeout=30)  # answered and greeted, then the party hangs up
        await call.hang_up()
        await call.wait_ended(timeout=30)
    shown = " ".join(run(project, "calls", "show", "1").output.split())
    assert (
        "window placed outside the calling window with --now (the calling window of book_appointment is closed now:"
        in shown
    )


async def test_at_a_terminal_a_closed_window_offers_to_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import pty
    import subprocess
    import sys

    project = make_project(tmp_path / "p", monkeypatch)
    monkeypatch.setenv("TARS_NOW", NIGHT)
    async with Line(project, Receptionist) as line:
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        leader, follower = pty.openpty()
        argv = [sys.executable, "-m", "tars", "--project", str(project.root), "call", "dentist", *BOOK, "--no-wait"]
        child = subprocess.Popen(argv, stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        os.close(follower)
        os.write(leader, b"y\n")
        printed, _ = await asyncio.to_thread(child.communicate, timeout=120)
        os.close(leader)
    text = " ".join(printed.decode().split())
    assert child.returncode == 0, text
    assert "The calling window of book_appointment is closed now: it opens Thu 05 Dec 2030 09:00" in text
    assert "Schedule the call for then?" in text
    assert "for Thu 05 Dec 2030 09:00 — call 1" in text
    listed = json.loads(run(project, "calls", "list", "--scheduled", "--json").stdout)
    assert [(c["id"], c["scheduled_at"]) for c in listed] == [(1, "2030-12-05T09:00:00+00:00")]
