"""Wrong API tokens at the web view's sign-in, counted across processes (the ``pin_lockout``
table, under scopes starting ``web:``), as wrong owner PINs are (``tars.store.pin_attempts``).

A client address that gets the token wrong ``PER_ADDRESS`` times is locked out of signing in,
and so is everyone once ``OVERALL`` wrong tokens pile up from any addresses; each lockout
lasts twice as long as the one before, from ``pin_attempts.BACKOFF`` up to a day. The rows
live in the database, so every ``tars serve`` worker and a restarted one see the same lockout.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from tars.store.models import PinLockout, utcnow
from tars.store.pin_attempts import bump

PER_ADDRESS = 5
OVERALL = 20
EVERYONE = "web:*"


def _scope(address: str) -> str:
    return f"web:{address[:56]}"


def locked(session: Session, address: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """Until when signing in from ``address`` is refused, if it is now."""
    now = now or utcnow()
    until = [
        row.locked_until
        for row in (session.get(PinLockout, _scope(address)), session.get(PinLockout, EVERYONE))
        if row is not None and row.locked_until is not None and row.locked_until > now
    ]
    return max(until, default=None)


def record_failure(session: Session, address: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """Count a wrong token from ``address``; until when signing in is now locked, if it is."""
    now = now or utcnow()
    mine = bump(session, _scope(address), PER_ADDRESS, now)
    everyone = bump(session, EVERYONE, OVERALL, now)
    session.commit()
    return max((t for t in (mine, everyone) if t is not None), default=None)


def record_success(session: Session, address: str) -> None:
    """A right token: the address's count starts again (the overall count does not)."""
    row = session.get(PinLockout, _scope(address))
    if row is not None:
        row.failures, row.lockouts, row.locked_until = 0, 0, None
        session.add(row)
        session.commit()
