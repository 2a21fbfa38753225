"""Messages between live calls and the owner (``CallMessage``): questions a goal call asks,
one-way notes, and reports of finished goal calls.

Stored before they are sent, so nothing is lost when a process restarts; any server takes
the ones for the owner's live call it holds (``pending_for``), and an SMS reply reaches the
question whose ``code`` it carries (``answer_by_code``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable

from sqlalchemy import update
from sqlmodel import Session, col, select

from tars.store.models import Call, CallMessage, utcnow
from tars.store.wakeups import notify

#: Open questions: asked, not yet answered or expired.
OPEN = ("pending", "delivered")
CODE_DIGITS = 4


def _new_code(session: Session) -> str:
    """A reply code no open question is using."""
    taken = set(session.exec(select(CallMessage.code).where(col(CallMessage.status).in_(OPEN))).all())
    while True:
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        if code not in taken:
            return code


def new_message(
    session: Session,
    *,
    kind: str,
    text: str,
    from_call_id: int | None,
    to_call_id: int | None,
    channel: str,
    expires_at: dt.datetime | None = None,
    status: str = "pending",
) -> CallMessage:
    message = CallMessage(
        kind=kind,
        text=text,
        from_call_id=from_call_id,
        to_call_id=to_call_id,
        channel=channel,
        status=status,
        expires_at=expires_at,
        code=_new_code(session) if kind == "question" else None,
    )
    session.add(message)
    if message.to_call_id is not None:
        notify(session)  # the server holding that call says it at once
    session.commit()
    session.refresh(message)
    return message


def get_message(session: Session, message_id: int) -> CallMessage | None:
    found = session.get(CallMessage, message_id)
    session.commit()
    return found


def pending_for(session: Session, call_ids: Iterable[int]) -> list[CallMessage]:
    """Messages waiting to be said in these live calls, oldest first."""
    ids = list(call_ids)
    if not ids:
        return []
    query = (
        select(CallMessage)
        .where(col(CallMessage.to_call_id).in_(ids), col(CallMessage.status) == "pending")
        .order_by(col(CallMessage.id))
    )
    found = list(session.exec(query))
    session.commit()
    return found


def set_status(session: Session, message_id: int, status: str, *, only_if: Iterable[str] = OPEN) -> bool:
    """Move a message on (delivered, expired, failed) unless it has already moved past ``only_if``."""
    return _move(session, message_id, only_if, status=status)


def answer(session: Session, message_id: int, text: str) -> bool:
    """Answer an open question; False if it was answered or expired already."""
    return _move(session, message_id, OPEN, status="answered", answer=text, answered_at=utcnow())


def _move(session: Session, message_id: int, only_if: Iterable[str], **values: object) -> bool:
    done = session.execute(
        update(CallMessage)
        .where(col(CallMessage.id) == message_id, col(CallMessage.status).in_(list(only_if)))
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(done.rowcount)  # type: ignore[attr-defined]


def open_questions(session: Session, *, channel: str | None = None, to_call_id: int | None = None) -> list[CallMessage]:
    query = select(CallMessage).where(col(CallMessage.kind) == "question", col(CallMessage.status).in_(OPEN))
    if channel is not None:
        query = query.where(col(CallMessage.channel) == channel)
    if to_call_id is not None:
        query = query.where(col(CallMessage.to_call_id) == to_call_id)
    found = list(session.exec(query.order_by(col(CallMessage.id))))
    session.commit()
    return found


def owner_live_call(session: Session, now: dt.datetime, *, excluding: int | None = None) -> Call | None:
    """The owner's live call on any server (its heartbeat not lapsed), newest first."""
    query = select(Call).where(
        col(Call.role) == "owner",
        col(Call.live_until) > now,
        col(Call.status).in_(("ringing", "in-progress")),
        col(Call.kind) == "voice",  # a text session is told nothing mid-conversation: the owner gets an SMS
    )
    if excluding is not None:
        query = query.where(col(Call.id) != excluding)
    found = session.exec(query.order_by(col(Call.id).desc()).limit(1)).first()
    session.commit()
    return found
