"""Telling every server that there is new work: ``NOTIFY tars_wake`` on PostgreSQL.

Sent in the transaction that stores the work (a reminder, a scheduled call, a message for a
live call), so PostgreSQL delivers it at commit and never for work rolled back; servers
listen (``tars.scheduler.listen``) and look at once instead of at their next poll. On
SQLite this does nothing: there, servers poll.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

CHANNEL = "tars_wake"


def notify(session: Session) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
