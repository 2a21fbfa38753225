"""Helpers for the scheduler tests: reminders put in directly, and waiting for the scheduler."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from tars.project import Project
from tests.waiting import eventually

UTC = dt.UTC


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def add_due(
    project: Project,
    text: str,
    *,
    via: str = "default",
    ago: float = 0.5,
    every: str | None = None,
    url: str | None = None,
) -> int:
    """A reminder that fell due ``ago`` seconds ago (as if added earlier with `tars remind add`)."""
    from tars import timeparse
    from tars.store.database import connect
    from tars.store.reminders import add_reminder

    due = now() - dt.timedelta(seconds=ago)
    rule = timeparse.parse_repeat(every, project.owner.timezone).rule if every else None
    with connect(url or project.database_url) as db, db.session() as session:
        reminder = add_reminder(
            session,
            text=text,
            due=due,
            timezone=project.owner.timezone,
            now=due - dt.timedelta(seconds=1),
            recurrence=rule,
            channel=via,
        )
        assert reminder.id is not None
        return reminder.id


def reminder(project: Project, reminder_id: int, url: str | None = None) -> Any:
    from tars.store.database import connect
    from tars.store.reminders import get_reminder

    with connect(url or project.database_url) as db, db.session() as session:
        return get_reminder(session, reminder_id)


async def ticks_pass(scheduler: Any, count: int = 2, timeout: float = 15) -> None:
    """Wake ``scheduler`` until it has begun ``count`` more ticks: with two, one whole tick
    started after this call and ran to its end, so whatever it would do is done."""
    target = scheduler.ticks + count

    def passed() -> bool:
        scheduler.wake()
        return scheduler.ticks >= target

    await eventually(passed, timeout, f"{count} scheduler ticks")


async def status_becomes(project: Project, reminder_id: int, *statuses: str, timeout: float = 15) -> Any:
    def check() -> Any:
        found = reminder(project, reminder_id)
        return found if found.status in statuses else None

    return await eventually(lambda: asyncio.to_thread(check), timeout, f"reminder {reminder_id} → {statuses}")
