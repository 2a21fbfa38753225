"""Waking the scheduler when this process stores something for it to do.

Between ticks the scheduler sleeps until what it knows is due next, or ``poll_seconds``.
Whatever this process commits to its database that may change that — a reminder made or
moved (``create_reminder``/``snooze_reminder`` on a call, `tars remind` run in-process), a
goal call scheduled (``tars call --at`` through the API) — wakes it at once, so it is never
late by the poll interval. Other processes' writes are seen at the next poll.

It listens to SQLAlchemy's session events rather than to each place that writes, so a new
way of adding reminders needs nothing here::

    unwatch = watch(board.database, scheduler.wake, loop)
    ...
    unwatch()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

_KEY = "tars.scheduler.wake"


def watch(database: Any, wake: Callable[[], None], loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Call ``wake`` in ``loop`` after every commit, in this process, to ``database``'s
    database that added or changed a pending reminder or a queued, scheduled call. Returns
    the function that stops watching."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from tars.store.models import Call, CallMessage, Reminder

    url = database.engine.url

    def schedulable(row: Any) -> bool:
        if isinstance(row, Reminder):
            return row.status == "pending"
        if isinstance(row, Call):
            return row.status == "queued" and row.sid is None and row.scheduled_at is not None
        if isinstance(row, CallMessage):  # a message for a live call: said at the next tick
            return row.status == "pending" and row.to_call_id is not None
        return False

    def after_flush(session: Session, _context: Any) -> None:
        # new and dirty still hold what was just flushed (SQLAlchemy's documented behaviour)
        if any(schedulable(row) for row in itertools.chain(session.new, session.dirty)):
            engine = getattr(session.get_bind(), "engine", None)
            if engine is not None and engine.url == url:
                session.info[_KEY] = True

    def after_commit(session: Session) -> None:
        if session.info.pop(_KEY, False):
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
                loop.call_soon_threadsafe(wake)

    def after_rollback(session: Session) -> None:
        session.info.pop(_KEY, None)

    listeners = (("after_flush", after_flush), ("after_commit", after_commit), ("after_rollback", after_rollback))
    for name, listener in listeners:
        event.listen(Session, name, listener)

    def unwatch() -> None:
        for name, listener in listeners:
            with contextlib.suppress(Exception):
                event.remove(Session, name, listener)

    return unwatch
