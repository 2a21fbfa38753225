"""Signed hook requests accepted once (the ``hook_request`` table).

A signed n8n task is a bearer instruction: whoever captured one could send it again and
have TARS place the same call twice. The first request to present an id claims it here
(on any server sharing the database); a later one with the same id is refused as a replay.
Rows are kept until the request's timestamp would be refused anyway, then swept.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from tars.store.models import HookRequest, utcnow


def claim(session: Session, request_id: str, source: str, expires_at: dt.datetime) -> bool:
    """True if this is the first use of ``request_id``; False if it was seen before."""
    session.execute(delete(HookRequest).where(HookRequest.expires_at < utcnow()))
    session.commit()
    try:
        session.add(HookRequest(request_id=request_id[:128], source=source, expires_at=expires_at))
        session.commit()
    except IntegrityError:  # the primary key: it was claimed first
        session.rollback()
        return False
    return True
