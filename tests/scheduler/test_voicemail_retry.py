"""A goal call that reaches voicemail: the playbook's message is left, and the call is tried
again per its ``voicemail`` policy (``retries``, ``backoff_minutes``), inside the calling
window and within the attempt limit. The scheduler's clock is set by the test; Twilio and
Gemini are the emulators."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import EchoBrain
from tars.emulators.twilio.emulator import Party
from tests.scheduler.helpers import eventually, ticks_pass
from tests.server.harness import Line, make_project

UTC = dt.UTC
DENTIST = "+442079460123"  # Bright Smile Dental: Mon-Fri 09:00-17:30, Europe/London (GMT in November)
WEDNESDAY_1645 = dt.datetime(2026, 11, 25, 16, 45, tzinfo=UTC)
THURSDAY_0900 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MESSAGE = "Hello, this is TARS calling for Alex Morgan to book a check-up. We'll try again later. Thank you."
# The shipped book_appointment: leave the message, then call again (2 retries, 60 minutes first).
POLICY = "  retries: 2  # the message promises it: call again, 60 then 120 minutes later, in opening hours\n"


def calls(line: Line) -> list[Any]:
    from sqlmodel import col, select

    from tars.store.models import Call

    with line.db() as db, db.session() as s:
        return list(s.exec(select(Call).order_by(col(Call.id))))


async def decided(line: Line, call_id: int) -> Any:
    """The ended call ``call_id`` once its retry decision is recorded."""

    def find() -> Any:
        return next((c for c in calls(line) if c.id == call_id and c.follow_up is not None), None)

    return await eventually(lambda: asyncio.to_thread(find), 15, f"the retry decision on call {call_id}")


def retry_of(line: Line, call_id: int) -> Any:
    return next((c for c in calls(line) if c.retry_of == call_id), None)


async def test_voicemail_is_retried_in_the_calling_window_until_the_policy_runs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    assert project.playbooks["book_appointment"].voicemail_retry.retries == 2
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        clock = [WEDNESDAY_1645]
        line.server.server.scheduler.clock = lambda: clock[0]
        line.twilio.set_party(DENTIST, Party(answer="voicemail"))
        status, placed = await line.place_goal_call("dentist", "book_appointment", {"preferred_day": "Wednesday"})
        assert status == 201, placed
        first = await line.twilio.next_call(timeout=10)
        assert first.params.get("MachineDetection") == "DetectMessageEnd"
        await first.wait_ended(timeout=10)
        assert [u.text for u in first.heard] == [MESSAGE]  # the message is left, then the retry planned
        assert (await decided(line, placed["call_id"])).follow_up == "retry"
        # 16:45 + 60 minutes is after closing (17:30): the retry waits for Thursday 09:00.
        second_row = retry_of(line, placed["call_id"])
        assert (second_row.scheduled_at, second_row.attempt, second_row.sid) == (THURSDAY_0900, 2, None)
        await ticks_pass(line.server.server.scheduler)  # a whole tick: nothing is placed before its time
        assert len(line.twilio.calls) == 1

        clock[0] = THURSDAY_0900
        second = await line.twilio.next_call(timeout=10)
        assert f"call_id={second_row.id}" in second.params["Url"]
        await second.wait_ended(timeout=10)
        await decided(line, second_row.id)
        third_row = retry_of(line, second_row.id)  # the backoff doubles: 120 minutes
        assert (third_row.scheduled_at, third_row.attempt) == (THURSDAY_0900 + dt.timedelta(minutes=120), 3)

        clock[0] = third_row.scheduled_at
        third = await line.twilio.next_call(timeout=10)
        await third.wait_ended(timeout=10)
        assert (await decided(line, third_row.id)).follow_up == "none"  # two retries made: no more
        rows = calls(line)
    assert [(c.status, c.attempt, c.follow_up) for c in rows] == [
        ("voicemail", 1, "retry"),
        ("voicemail", 2, "retry"),
        ("voicemail", 3, "none"),
    ]
    assert [u.text for u in third.heard] == [MESSAGE]  # every attempt leaves the message
    assert rows[2].inputs == rows[0].inputs
    assert all(not s.started for s in line.gemini.sessions)  # opened while ringing, never used


async def test_voicemail_is_not_retried_unless_the_playbook_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [("playbooks/book_appointment.yaml", POLICY, "")])
    assert project.playbooks["book_appointment"].voicemail_retry.retries == 0
    async with Line(project, EchoBrain) as line:
        line.twilio.set_party(DENTIST, Party(answer="voicemail"))
        _status, placed = await line.place_goal_call("dentist", "book_appointment", {"preferred_day": "Wednesday"})
        await (await line.twilio.next_call(timeout=10)).wait_ended(timeout=10)
        row = await decided(line, placed["call_id"])
        assert [u.text for u in line.twilio.calls[row.sid].heard] == [MESSAGE]
    assert (row.status, row.follow_up) == ("voicemail", "none") and len(calls(line)) == 1


def test_a_voicemail_policy_is_checked_like_the_others(tmp_path: Path, tars: Any) -> None:
    from tars.scaffold import scaffold

    scaffold(tmp_path / "p")
    playbook = tmp_path / "p" / "playbooks" / "book_appointment.yaml"
    playbook.write_text(playbook.read_text().replace(POLICY, "  retries: 11\n"))
    result = tars("--project", tmp_path / "p", "validate")
    assert result.exit_code == 1
    assert "playbooks/book_appointment.yaml:68:12  $.voicemail.retries  11 is too large; must be <= 10" in result.output


async def test_a_voicemail_call_from_before_the_upgrade_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A voicemail call that ended days ago with no retry decision (TARS did not retry voicemail
    then) is not called again now."""
    from tars.store.calls import start_call, update_call

    project = make_project(tmp_path / "p", monkeypatch)
    from tars.store.database import connect

    with connect(project.database_url) as db, db.session() as s:
        old = start_call(s, direction="outbound", from_number="+447700900999", to_number=DENTIST,
                         playbook="book_appointment", inputs={"preferred_day": "Monday"}, status="queued")  # fmt: skip
        update_call(s, old.id, status="voicemail", ended_at=dt.datetime.now(UTC) - dt.timedelta(days=3))
        old_id = old.id
    async with Line(project, EchoBrain) as line:
        row = await decided(line, old_id)
    assert row.follow_up == "none" and len(calls(line)) == 1
