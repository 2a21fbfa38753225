"""Helpers for the scheduler tests: reminders put in directly, and waiting for the scheduler."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tars.project import Project

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


async def eventually(check: Callable[[], Any], timeout: float = 15, what: str = "the condition") -> Any:
    """Poll ``check`` (sync, run in a thread, or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.05)


async def status_becomes(project: Project, reminder_id: int, *statuses: str, timeout: float = 15) -> Any:
    def check() -> Any:
        found = reminder(project, reminder_id)
        return found if found.status in statuses else None

    return await eventually(lambda: asyncio.to_thread(check), timeout, f"reminder {reminder_id} → {statuses}")
