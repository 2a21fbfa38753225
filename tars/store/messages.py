"""Messages taken for the owner (the ``take_message`` tool), until they reach the owner."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, col, select

from tars.store.errors import InvalidValue, NotFound
from tars.store.models import Message, utcnow


def take_message(
    session: Session,
    text: str,
    *,
    caller_number: str | None = None,
    caller_name: str | None = None,
    call_id: int | None = None,
) -> Message:
    text = text.strip()
    if not text:
        raise InvalidValue("the message is empty")
    message = Message(text=text, caller_number=caller_number, caller_name=caller_name, call_id=call_id)
    session.add(message)
    session.flush()
    return message


def undelivered(session: Session) -> list[Message]:
    query = select(Message).where(Message.status == "pending").order_by(col(Message.created_at), col(Message.id))
    return list(session.exec(query))


def mark_message(session: Session, message_id: int, status: str, at: dt.datetime | None = None) -> Message:
    """``delivered`` (stamped ``at``) or ``failed``."""
    if status not in ("delivered", "failed", "pending"):
        raise InvalidValue(f"{status!r} is not a message status")
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(f"no message with id {message_id}")
    message.status = status
    message.delivered_at = (at or utcnow()) if status == "delivered" else None
    session.add(message)
    session.flush()
    return message


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "call_id": message.call_id,
        "caller_number": message.caller_number,
        "caller_name": message.caller_name,
        "text": message.text,
        "status": message.status,
        "delivered_at": message.delivered_at.isoformat() if message.delivered_at else None,
        "created_at": message.created_at.isoformat(),
    }
