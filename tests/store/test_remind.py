"""`tars remind`: reminders in plain words, through the real CLI, on SQLite and PostgreSQL.

The clock is TARS_NOW = Saturday 29 March 2025 10:00 in Budapest (UTC+1); that night the
clocks go forward to UTC+2.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from store_helpers import Store, seed_reminder
from typer.testing import Result

Tars = Callable[..., Result]


def add(tars: Tars, *args: str) -> dict[str, Any]:
    result = tars("remind", "add", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def listed(tars: Tars, *args: str) -> list[dict[str, Any]]:
    result = tars("remind", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_tomorrow_2pm_is_stored_as_the_right_instant_across_dst(store: Store, tars: Tars) -> None:
    reminder = add(tars, "call the dentist", "--at", "tomorrow 2pm")
    # 14:00 on Sunday is CEST (UTC+2): 12:00 UTC, although "now" is still UTC+1.
    assert reminder["due"] == "2025-03-30T12:00:00+00:00"
    assert reminder["due_local"] == "2025-03-30T14:00:00+02:00"
    assert reminder["timezone"] == "Europe/Budapest" and reminder["status"] == "pending"
    # In the database itself: UTC text in SQLite, a timestamptz for that instant in PostgreSQL.
    raw = store.sql("SELECT due FROM reminder WHERE id = :id", id=reminder["id"])[0][0]
    if isinstance(raw, str):
        assert raw.startswith("2025-03-30 12:00:00")
    else:
        assert raw == dt.datetime(2025, 3, 30, 12, 0, tzinfo=dt.UTC)


def test_add_list_done_snooze_rm(store: Store, tars: Tars) -> None:
    shown = tars("remind", "add", "water the plants", "--at", "in 20 minutes")
    assert shown.exit_code == 0, shown.output
    assert "Reminder 1: water the plants — Sat 29 Mar 2025 10:20 (in 20 minutes), via call" in shown.stdout
    add(tars, "pay rent", "--at", "next Friday at 9", "--via", "sms")
    table = tars("remind", "list")
    assert "water the plants" in table.stdout and "Fri 04 Apr 2025 09:00" in table.stdout
    assert "times in Europe/Budapest" in table.stdout
    assert [r["text"] for r in listed(tars)] == ["water the plants", "pay rent"]

    snoozed = tars("remind", "snooze", "1", "1h", "--json")
    assert snoozed.exit_code == 0, snoozed.output
    assert json.loads(snoozed.stdout)["due_local"] == "2025-03-29T11:00:00+01:00"
    later = json.loads(tars("remind", "snooze", "1", "tomorrow 9am", "--json").stdout)
    assert later["due"] == "2025-03-30T07:00:00+00:00"

    done = tars("remind", "done", "2")
    assert done.exit_code == 0 and "Done: reminder 2, pay rent" in done.stdout
    assert tars("remind", "rm", "1").exit_code == 0
    assert listed(tars) == []
    assert "No reminders" in tars("remind", "list").stdout
    everything = {r["id"]: r["status"] for r in listed(tars, "--all")}
    assert everything == {1: "cancelled", 2: "delivered"}


def test_repeating_reminders_keep_their_wall_clock_time(store: Store, tars: Tars) -> None:
    daily = add(tars, "vitamins", "--at", "today 9pm", "--every", "daily")
    assert daily["due_local"] == "2025-03-29T21:00:00+01:00"
    assert daily["repeat"] == "FREQ=DAILY" and daily["repeat_text"] == "every day"
    moved = json.loads(tars("remind", "done", str(daily["id"]), "--json").stdout)
    assert moved["status"] == "pending"
    assert moved["due_local"] == "2025-03-30T21:00:00+02:00"  # still 21:00, now in summer time

    weekly = add(tars, "standup", "--every", "every weekday at 9:30")  # no --at: the rule has a time
    assert weekly["due_local"] == "2025-03-31T09:30:00+02:00"  # Saturday now: Monday is first
    assert [r["repeat_text"] for r in listed(tars)] == ["every day", "every weekday at 09:30"]


def test_reminders_can_be_about_a_contact(store: Store, tars: Tars) -> None:
    assert tars("contacts", "add", "Alice Smith", "+447700900123").exit_code == 0
    reminder = add(tars, "birthday present", "--at", "tomorrow 10am", "--contact", "alice")
    assert reminder["contact"] == "Alice Smith"
    assert listed(tars)[0]["contact"] == "Alice Smith"
    assert tars("contacts", "rm", "Alice Smith").exit_code == 0
    assert listed(tars)[0]["contact"] is None  # the reminder stays, unlinked


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--at", "yesterday 3pm"], "'yesterday 3pm' is in the past (Fri 28 Mar 2025 15:00"),
        (["x", "--at", "2025-03-29T09:00"], "is in the past"),
        (["x", "--at", "when pigs fly"], "could not understand the time 'when pigs fly'"),
        (["x"], "say when to remind you"),
        (["x", "--every", "daily"], "does not say at what time"),
        (["x", "--at", "tomorrow 9am", "--every", "every blue moon"], "could not understand the repeat"),
        (["x", "--at", "tomorrow 9am", "--every", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"], "never fires"),
        (["x", "--at", "tomorrow 9am", "--every", "FREQ=DAILY;UNTIL=20250301"], "never fires"),
        (["x", "--at", "tomorrow 9am", "--via", "pigeon"], "'pigeon' is not a way to deliver"),
        (["x", "--at", "tomorrow 9am", "--contact", "Nobody"], "no contact named 'Nobody'"),
        (["  ", "--at", "tomorrow 9am"], "a reminder needs some text"),
    ],
)
def test_bad_reminders_are_refused_and_nothing_is_written(
    store: Store, tars: Tars, args: list[str], message: str
) -> None:
    seed_reminder(store, "an existing one", 22)
    before = store.snapshot()
    result = tars("remind", "add", *args)
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert store.snapshot() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["done", "99"], "no reminder with id 99"),
        (["snooze", "99", "10 minutes"], "no reminder with id 99"),
        (["rm", "99"], "no reminder with id 99"),
        (["snooze", "1", "yesterday"], "is in the past"),
        (["snooze", "1", "soonish"], "could not understand the time 'soonish'"),
        (["done", "2"], "reminder 2 was cancelled"),
        (["rm", "2"], "reminder 2 is already cancelled"),
        (["snooze", "2", "1h"], "reminder 2 was cancelled"),
    ],
)
def test_bad_changes_are_refused_and_nothing_is_written(
    store: Store, tars: Tars, args: list[str], message: str
) -> None:
    seed_reminder(store, "one", 22)
    seed_reminder(store, "two", 23, cancelled=True)
    before = store.snapshot()
    result = tars("remind", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert store.snapshot() == before


def test_non_numeric_id_is_a_usage_error(store: Store, tars: Tars) -> None:
    assert tars("remind", "done", "first").exit_code == 2
