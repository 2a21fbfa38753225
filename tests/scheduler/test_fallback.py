"""No reminder lost silently: a ``call`` reminder whose last attempt does not get through is
texted to the owner instead, and `tars remind list` says how it went."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import EchoBrain
from tars.emulators.twilio.emulator import Party
from tests.scheduler.helpers import add_due, eventually, reminder, status_becomes
from tests.server.harness import Line, make_project

ONE_RETRY = ("tars.yaml", "  retries: 3\n", "  retries: 1\n")  # delivery.retries: two attempts in all


async def test_a_reminder_call_that_never_gets_through_is_texted_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tars: Any
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [ONE_RETRY])
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        line.server.server.scheduler.backoff_seconds = 0.2
        line.twilio.set_party(project.owner.phone, Party(answer="no-answer"))
        rid = add_due(project, "call Helen", via="call")
        done = await status_becomes(project, rid, "delivered", "failed")
        await line.settle()
        rung = [c for c in line.twilio.calls.values() if c.to == project.owner.phone]
        texts = [(m.to, m.body) for m in line.twilio.messages]
    assert len(rung) == 2  # the attempt and its one retry, both unanswered
    # Exactly one text, although both the status callback and the scheduler see each call end.
    said = "Reminder: call Helen (TARS could not reach you by phone: nobody answered the reminder call)"
    assert texts == [(project.owner.phone, said)]
    assert done.status == "delivered" and done.attempts == 2 and done.lease_owner is None
    assert done.last_error == "by SMS: the call did not get through (nobody answered the reminder call)"
    listed = tars("--project", project.root, "remind", "list", "--all", "--json")
    assert listed.exit_code == 0, listed.output
    [shown] = json.loads(listed.stdout)
    assert (shown["status"], shown["last_error"]) == ("delivered", done.last_error)
    table = tars("--project", project.root, "remind", "list", "--all")
    assert "delivered: by SMS" in table.stdout


async def test_a_repeating_reminder_is_texted_and_moves_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [("tars.yaml", "  retries: 3\n", "  retries: 0\n")])
    async with Line(project, EchoBrain) as line:
        line.twilio.set_party(project.owner.phone, Party(answer="busy"))
        rid = add_due(project, "take the pills", via="call", every="daily")
        first = reminder(project, rid)

        def moved_on() -> Any:
            found = reminder(project, rid)
            return found if found.due != first.due else None

        moved = await eventually(lambda: asyncio.to_thread(moved_on), 15, "the next occurrence")
        await line.settle()
        bodies = [m.body for m in line.twilio.messages]
    assert bodies == ["Reminder: take the pills (TARS could not reach you by phone: the owner's line was busy)"]
    assert moved.due > first.due and moved.attempts == 0 and moved.delivered_at is not None
    assert moved.last_error == "by SMS: the call did not get through (the owner's line was busy)"


async def test_when_the_text_fails_too_the_reminder_fails_with_both_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [("tars.yaml", "  retries: 3\n", "  retries: 0\n")])
    async with Line(project, EchoBrain) as line:
        line.twilio.numbers = {"+15550000000"}  # the TARS number is no longer Twilio's: calls and texts refused
        rid = add_due(project, "call Helen", via="call")
        gone = await status_becomes(project, rid, "failed")
        assert line.twilio.messages == []
    assert gone.last_error.startswith("Twilio refused the reminder call: ")
    assert "; the text sent instead failed too: Twilio refused the SMS to " in gone.last_error


def test_a_reminder_call_twilio_refused_has_one_reason_whoever_settles_it() -> None:
    """The placing reports the refusal; the scheduler's follow-up of ended reminder calls may
    see the failed row first. Either way the reminder's reason is the placing's own words."""
    from tars.scheduler.reminders import unannounced_reason

    refused = "Twilio refused the reminder call: HTTP 400 error: The source phone number is not yet verified."
    assert unannounced_reason("failed", refused, placed=False) == refused
    dropped = unannounced_reason("failed", "Twilio error 31005", placed=True)
    assert dropped == "the reminder call failed: Twilio error 31005"


async def test_reminders_by_other_channels_are_not_texted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    webhook = ("tars.yaml", "  late_reminders:\n", "  webhook:\n    url: http://127.0.0.1:9/hook\n"
               "    retries: 0\n  late_reminders:\n")  # fmt: skip
    project = make_project(tmp_path / "p", monkeypatch, [webhook, ("tars.yaml", "  retries: 3\n", "  retries: 0\n")])
    async with Line(project, EchoBrain) as line:
        line.webhooks.reply("delivery", 500, {"error": "n8n is down"})
        rid = add_due(project, "pay the rent", via="webhook")
        gone = await status_becomes(project, rid, "failed")
        assert line.twilio.messages == []
    assert "HTTP 500" in gone.last_error
