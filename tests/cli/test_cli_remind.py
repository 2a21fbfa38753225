"""`tars remind`: a channel that cannot deliver is refused when the reminder is added, snoozing
never brings a reminder earlier, and a reminder done twice says it already was.

The clock is fixed (``TARS_NOW``) on Wednesday 2 December 2026, 02:00 London time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

NOW = "2026-12-02T02:00:00+00:00"


@pytest.fixture
def remind(example_project: Path, tars: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    monkeypatch.setenv("TARS_NOW", NOW)
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))

    def run(*args: str) -> Any:
        return tars("--project", example_project, "remind", *args)

    return run


def test_a_webhook_reminder_without_delivery_webhook_is_refused(remind: Callable[..., Any]) -> None:
    result = remind("add", "hook", "--at", "in 1 minute", "--via", "webhook")
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: reminders via webhook need delivery.webhook, which is not configured in tars.yaml\n"
        "add delivery: {webhook: {url: https://…}} to tars.yaml"
    )
    assert json.loads(remind("list", "--all", "--json").stdout) == [], "nothing was written"
    assert remind("add", "ring", "--at", "in 1 minute", "--via", "call").exit_code == 0


def test_snoozing_never_brings_a_reminder_earlier(remind: Callable[..., Any]) -> None:
    assert remind("add", "dinner", "--at", "thursday 6pm").exit_code == 0
    earlier = remind("snooze", "1", "in 2 hours")
    assert earlier.exit_code == 1
    assert (
        "Error: reminder 1 is due Thu 03 Dec 2026 18:00; snoozing it to Wed 02 Dec 2026 04:00 would bring it earlier"
        in earlier.output
    )
    assert json.loads(remind("list", "--json").stdout)[0]["due"].startswith("2026-12-03T18:00")
    later = remind("snooze", "1", "friday 9am")
    assert later.exit_code == 0, later.output
    assert "✓ Snoozed: reminder 1, dinner — next Fri 04 Dec 2026 09:00" in later.output


def test_done_twice_says_it_was_already_done(remind: Callable[..., Any]) -> None:
    assert remind("add", "stretch", "--at", "in 1 hour").exit_code == 0
    first = remind("done", "1")
    assert first.exit_code == 0 and "✓ Done: reminder 1, stretch" in first.output
    again = remind("done", "1")
    assert again.exit_code == 1
    assert "Error: reminder 1 is already done (since Wed 02 Dec 2026 02:00)" in again.output
    assert "✓" not in again.output


def test_adding_a_reminder_says_when_no_server_would_deliver_it(remind: Callable[..., Any]) -> None:
    result = remind("add", "stretch", "--at", "in 1 hour")
    assert result.exit_code == 0
    assert "Note: no TARS server is running for this project; reminders are delivered only while `tars serve` runs" in (
        " ".join(result.output.split())
    )


async def test_no_note_while_a_server_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from typer.testing import CliRunner

    from tars.cli.app import app
    from tests.server.harness import Line, Receptionist, make_project

    project = make_project(tmp_path / "p", monkeypatch)
    monkeypatch.setenv("TARS_NOW", NOW)
    async with Line(project, Receptionist) as line:
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        argv = ["--project", str(project.root), "remind", "add", "stretch", "--at", "in 1 hour"]
        result = await asyncio.to_thread(CliRunner().invoke, app, argv)
    assert result.exit_code == 0, result.output
    assert "✓ Reminder 1: stretch" in result.output
    assert "Note:" not in result.output


def test_a_monthly_reminder_on_the_31st_says_which_months_it_skips(remind: Callable[..., Any]) -> None:
    result = remind("add", "rent", "--at", "2026-12-31T09:00", "--every", "monthly")
    assert result.exit_code == 0, result.output
    assert (
        "Note: months without a 31st are skipped (February, April, June, September and November); "
        "for the last day of every month use --every 'FREQ=MONTHLY;BYMONTHDAY=-1'."
    ) in " ".join(result.output.split())
    last_day = remind("add", "rent", "--at", "2026-12-31T09:00", "--every", "FREQ=MONTHLY;BYMONTHDAY=-1")
    assert last_day.exit_code == 0 and "skipped" not in last_day.output
