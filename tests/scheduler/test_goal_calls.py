"""Goal calls the scheduler places: retries after busy (inside the calling window) and calls
scheduled for later. The scheduler's clock is set by the test; everything else is real."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import EchoBrain
from tars.emulators.twilio.emulator import Party
from tars.scheduler.window import next_open
from tars.weekly_hours import Window
from tests.scheduler.helpers import eventually
from tests.server.harness import Line, make_project, place

UTC = dt.UTC
DENTIST = "+442079460123"  # Bright Smile Dental: Mon-Fri 09:00-17:30, Europe/London
WEDNESDAY_1725 = dt.datetime(2026, 11, 25, 17, 25, tzinfo=UTC)  # London is on GMT in November
THURSDAY_0900 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def calls(line: Line) -> list[Any]:
    from sqlmodel import col, select

    from tars.store.models import Call

    with line.db() as db, db.session() as s:
        return list(s.exec(select(Call).order_by(col(Call.id))))


async def retry_of(line: Line, call_id: int) -> Any:
    def find() -> Any:
        return next((c for c in calls(line) if c.retry_of == call_id), None)

    return await eventually(lambda: asyncio.to_thread(find), 15, f"a retry of call {call_id}")


async def test_busy_is_retried_inside_the_calling_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        clock = [WEDNESDAY_1725]
        line.server.server.scheduler.clock = lambda: clock[0]
        line.twilio.set_party(DENTIST, Party(answer="busy"))
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        assert placed["http"] == 201, placed
        first = await line.twilio.next_call(timeout=10)
        assert await first.wait_ended(timeout=10) == "busy"
        # busy: 3 retries, 10 minutes then doubling. 17:35 is after closing (17:30): Thursday 09:00.
        second_row = await retry_of(line, placed["call_id"])
        assert (second_row.scheduled_at, second_row.attempt, second_row.status, second_row.sid) == (
            THURSDAY_0900,
            2,
            "queued",
            None,
        )
        await asyncio.sleep(0.3)  # ticks pass; nothing is placed before its time
        assert len(line.twilio.calls) == 1
        clock[0] = THURSDAY_0900
        second = await line.twilio.next_call(timeout=10)
        assert second.to == DENTIST and f"call_id={second_row.id}" in second.params["Url"]
        assert await second.wait_ended(timeout=10) == "busy"
        third_row = await retry_of(line, second_row.id)
        assert (third_row.scheduled_at, third_row.attempt) == (THURSDAY_0900 + dt.timedelta(minutes=20), 3)
        rows = calls(line)
    assert [(c.id, c.status, c.follow_up) for c in rows] == [
        (placed["call_id"], "busy", "retry"),
        (second_row.id, "busy", "retry"),
        (third_row.id, "queued", None),
    ]
    assert rows[1].sid == second.sid and rows[1].inputs == rows[0].inputs and rows[1].playbook == "book_appointment"


async def test_retries_stop_when_the_policy_runs_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edits = [("playbooks/book_appointment.yaml", "busy: {retries: 3, backoff_minutes: 10}", "busy: {retries: 0}")]
    project = make_project(tmp_path / "p", monkeypatch, edits)
    async with Line(project, EchoBrain) as line:
        line.twilio.set_party(DENTIST, Party(answer="busy"))
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        await (await line.twilio.next_call(timeout=10)).wait_ended(timeout=10)

        def decided() -> Any:
            return [c for c in calls(line) if c.follow_up is not None]

        [row] = await eventually(lambda: asyncio.to_thread(decided), 15, "the retry decision")
    assert (row.id, row.follow_up) == (placed["call_id"], "none") and len(calls(line)) == 1


async def test_a_call_scheduled_for_later_is_placed_when_due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tars.store.call_queue import schedule_call

    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        clock = [dt.datetime(2026, 11, 28, 10, 0, tzinfo=UTC)]  # a Saturday: the dentist is closed
        line.server.server.scheduler.clock = lambda: clock[0]
        line.twilio.set_party(DENTIST, Party(answer="no-answer"))
        with line.db() as db, db.session() as s:
            row = schedule_call(
                s, from_number=line.number, to_number=DENTIST, playbook="book_appointment",
                inputs={"preferred_day": "Monday", "appointment_type": "check-up", "preferred_time": "any time"},
                at=clock[0] - dt.timedelta(minutes=1), callee="Bright Smile Dental",
            )  # fmt: skip
        monday = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

        def moved() -> Any:
            return next((c for c in calls(line) if c.id == row.id and c.scheduled_at == monday), None)

        await eventually(lambda: asyncio.to_thread(moved), 15, "waiting for the window")
        assert line.twilio.calls == {}
        clock[0] = monday
        placed = await line.twilio.next_call(timeout=10)
        assert f"call_id={row.id}" in placed.params["Url"]
        await placed.wait_ended(timeout=10)
        retry = await retry_of(line, row.id)  # no answer: 2 retries, 30 minutes first
    assert retry.scheduled_at == monday + dt.timedelta(minutes=30) and retry.attempt == 2


# ------------------------------------------------------------------------------ calling windows


def test_windows_open_and_close_in_the_callees_timezone() -> None:
    week = Window(({"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:30"},), "Europe/London")
    summer = dt.datetime(2026, 7, 1, 15, 0, tzinfo=UTC)  # Wednesday 16:00 in London (BST)
    assert week.next_open(summer) == summer
    assert week.next_open(dt.datetime(2026, 7, 1, 16, 45, tzinfo=UTC)) == dt.datetime(2026, 7, 2, 8, 0, tzinfo=UTC)
    friday_evening = dt.datetime(2026, 7, 3, 18, 0, tzinfo=UTC)
    assert week.next_open(friday_evening) == dt.datetime(2026, 7, 6, 8, 0, tzinfo=UTC)  # Monday 09:00 BST
    assert Window((), "Europe/London").next_open(friday_evening) == friday_evening  # any time


def test_a_playbooks_window_is_any_callee_or_explicit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edits = [("playbooks/business_inquiry.yaml", "calling_window: callee",
              'calling_window:\n  - {days: [sat], from: "10:00", to: "12:00"}')]  # fmt: skip
    project = make_project(tmp_path / "p", monkeypatch, edits)
    saturday_night = dt.datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    assert next_open(project, "book_appointment", DENTIST, saturday_night) == dt.datetime(
        2026, 11, 30, 9, 0, tzinfo=UTC
    )
    assert next_open(project, "book_appointment", "+441234567890", saturday_night) == saturday_night  # no hours
    assert next_open(project, "business_inquiry", DENTIST, saturday_night) == dt.datetime(
        2026, 12, 5, 10, 0, tzinfo=UTC
    )
    # dinner_invitation: every day 09:00-21:00, in the callee's timezone (or the owner's).
    assert next_open(project, "dinner_invitation", DENTIST, saturday_night) == dt.datetime(
        2026, 11, 29, 9, 0, tzinfo=UTC
    )
    assert next_open(project, "dinner_invitation", DENTIST, saturday_night - dt.timedelta(hours=2)) == (
        saturday_night - dt.timedelta(hours=2)
    )
