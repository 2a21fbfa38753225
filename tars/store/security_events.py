"""Refused inbound requests, kept (``security_event``), and the owner told of them at most
once per kind an hour (``security_alert``, shared by every process on the database).

``record`` stores one event; ``claim_alert`` says whether this event is the one the owner
hears about: the first of its kind, or the first an ``ALERT_EVERY`` after the last message.
The claim is one conditional ``UPDATE`` (or the ``INSERT`` of the kind's first row, where a
second process loses on the primary key), so two servers refusing at once send one message.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tars.store.models import SECURITY_KINDS, SecurityAlert, SecurityEvent, utcnow

ALERT_EVERY = dt.timedelta(hours=1)
DETAIL_LIMIT = 500


def record(
    session: Session, kind: str, detail: str, source: str | None = None, now: dt.datetime | None = None
) -> SecurityEvent:
    """Store one refused request. Commits."""
    if kind not in SECURITY_KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    event = SecurityEvent(at=now or utcnow(), kind=kind, detail=detail[:DETAIL_LIMIT], source=(source or None))
    if event.source is not None:
        event.source = event.source[:128]
    session.add(event)
    session.commit()
    session.refresh(event)
    return event


def claim_alert(session: Session, kind: str, now: dt.datetime | None = None, every: dt.timedelta = ALERT_EVERY) -> bool:
    """True if the owner is to be told of this ``kind`` now (and it is noted as told). Commits."""
    now = now or utcnow()
    moved = session.execute(
        update(SecurityAlert)
        .where(col(SecurityAlert.kind) == kind, col(SecurityAlert.sent_at) <= now - every)
        .values(sent_at=now)
    )
    if moved.rowcount:  # type: ignore[attr-defined]
        session.commit()
        return True
    if session.get(SecurityAlert, kind) is not None:
        session.commit()
        return False  # told within the hour
    try:
        session.add(SecurityAlert(kind=kind, sent_at=now))
        session.commit()
    except IntegrityError:  # another process told the owner first
        session.rollback()
        return False
    return True


def recent(session: Session, limit: int = 50, kind: str | None = None) -> list[SecurityEvent]:
    """The latest events first."""
    query = select(SecurityEvent).order_by(col(SecurityEvent.at).desc(), col(SecurityEvent.id).desc()).limit(limit)
    if kind is not None:
        query = query.where(col(SecurityEvent.kind) == kind)
    return list(session.exec(query))
