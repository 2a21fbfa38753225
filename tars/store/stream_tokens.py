"""Signed stream tokens accepted once (the ``used_stream_token`` table).

The parameters the server signs into a ``<Connect><Stream>`` are a bearer token: whoever
holds them could open a second model session for a live call, or one after it ended. The
first stream to present a token claims its MAC here; any later stream (on this server or
another) is refused. Rows are kept until the token expires, then swept.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from tars.store.models import UsedStreamToken, utcnow


def claim(session: Session, mac: str, expires_at: dt.datetime) -> bool:
    """True if this is the first use of the token ``mac``; False if it was used before."""
    session.execute(delete(UsedStreamToken).where(UsedStreamToken.expires_at < utcnow()))
    session.commit()
    try:
        session.add(UsedStreamToken(mac=mac[:64], expires_at=expires_at))
        session.commit()
    except IntegrityError:  # the primary key: someone claimed it first
        session.rollback()
        return False
    return True
