"""`tars call` against a running server: the CLI asks, the server places and owns the call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tars.cli.app import app
from tests.server.harness import Line, make_project
from tests.server.test_goal_calls import Receptionist

#: A Wednesday, 10:00 in London: the dentist's calling window is open.
OPEN = "2026-12-02T10:00:00+00:00"


async def test_tars_call_places_the_call_and_watches_it_to_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    monkeypatch.setenv("TARS_NOW", OPEN)  # inside the dentist's calling window
    async with Line(project, Receptionist) as line:
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        argv = [
            "--project",
            str(project.root),
            "call",
            "dentist",
            "--playbook",
            "book_appointment",
            "--var",
            "preferred_day=Wednesday",
            "--wait",
            "--json",
        ]
        cli = asyncio.ensure_future(asyncio.to_thread(CliRunner().invoke, app, argv))
        call = await line.twilio.next_call(timeout=20)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("We have Wednesday at 3pm")
        await call.wait_ended(timeout=30)
        result = await asyncio.wait_for(cli, 60)
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout[result.stdout.index("{") :])
    assert final["status"] == "completed"
    assert final["outcome"] == {"status": "booked", "when": "2026-11-25T15:00:00+00:00"}
    assert final["summary"]


async def test_no_server_says_how_to_start_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    monkeypatch.setenv("TARS_NOW", OPEN)
    (project.state_dir).mkdir(parents=True, exist_ok=True)
    (project.state_dir / "api-token").write_text("t")
    monkeypatch.setenv("TARS_SERVER_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(
        app,
        [
            "--project",
            str(project.root),
            "call",
            "dentist",
            "--playbook",
            "book_appointment",
            "--var",
            "preferred_day=Wed",
            "--no-wait",
        ],
    )
    assert result.exit_code == 1
    assert "no TARS server is answering at http://127.0.0.1:9" in result.output
    assert "start one with `tars serve`" in result.output


def test_dry_run_shows_the_plan_and_dials_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    result = CliRunner().invoke(
        app,
        [
            "--project",
            str(project.root),
            "call",
            "dentsit",
            "--playbook",
            "book_appointment",
            "--var",
            "preferred_day=Wednesday",
            "--dry-run",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["target"] == {"name": "Bright Smile Dental", "phone": "+442079460123", "source": "directory"}
    assert [s["id"] for s in plan["steps"]] == ["introduce", "find_slot", "alternatives", "confirm", "wrap_up"]
    assert "on Wednesday" in plan["steps"][1]["instructions"]


def test_ambiguous_and_unknown_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    runner = CliRunner()
    for name in ("Helen Price", "Helen Park"):
        assert (
            runner.invoke(
                app, ["--project", str(project.root), "contacts", "add", name, "+447700900" + str(len(name) * 37)[:3]]
            ).exit_code
            == 0
        )
    result = runner.invoke(
        app,
        [
            "--project",
            str(project.root),
            "call",
            "Helen",
            "--playbook",
            "dinner_invitation",
            "--var",
            "guest_name=Helen",
            "--var",
            "proposed_time=Friday",
            "--dry-run",
        ],
    )
    assert result.exit_code == 1
    assert "'Helen' could mean several: Helen Park" in result.output
    result = runner.invoke(
        app,
        [
            "--project",
            str(project.root),
            "call",
            "the plumber",
            "--playbook",
            "business_inquiry",
            "--var",
            "question=hours",
            "--dry-run",
        ],
    )
    assert result.exit_code == 1 and "nobody called 'the plumber'" in result.output
