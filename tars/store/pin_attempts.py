"""Wrong owner PINs, counted across calls and processes (the ``pin_lockout`` table).

Three wrong tries end one call, but a caller who rings again must not keep guessing: a
number that gets the PIN wrong ``PER_NUMBER`` times in a row is locked out, and so is
every caller once ``OVERALL`` wrong PINs pile up from any numbers (a caller who spoofs a
fresh number per call). Each lockout lasts twice as long as the one before, from
``BACKOFF`` up to ``LONGEST``; a right PIN clears its number. The rows live in the
database, so a restart or another server sees the same lockout.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from tars.store.models import PinLockout, utcnow

PER_NUMBER = 5
OVERALL = 20
BACKOFF = dt.timedelta(minutes=15)
LONGEST = dt.timedelta(hours=24)
#: Failures older than this are forgotten (a typo a week ago is not an attack).
FORGET_AFTER = dt.timedelta(hours=24)
EVERYONE = "*"


@dataclass(frozen=True)
class Lockout:
    scope: str  # a phone number, or "*" for every caller
    until: dt.datetime

    def describe(self) -> str:
        who = "every caller" if self.scope == EVERYONE else self.scope
        return f"PIN entry is locked for {who} until {self.until:%Y-%m-%d %H:%M} UTC after repeated wrong PINs"


def _scope(number: str) -> str:
    return f"n:{number[:60]}"


def locked(session: Session, number: str, now: dt.datetime | None = None) -> Lockout | None:
    """The lockout that stops ``number`` entering a PIN now, if any (the longer one)."""
    now = now or utcnow()
    found: Lockout | None = None
    for scope in (_scope(number), EVERYONE):
        row = session.get(PinLockout, scope)
        until = row.locked_until if row is not None else None
        if until is not None and until > now and (found is None or until > found.until):
            found = Lockout(number if scope != EVERYONE else EVERYONE, until)
    return found


def bump(session: Session, scope: str, limit: int, now: dt.datetime) -> dt.datetime | None:
    """One more failure for ``scope`` (atomic in the database); the new lockout, if it set one.
    Web sign-ins (``tars.store.sign_in_attempts``) count theirs here too, under their own scopes."""
    row = session.get(PinLockout, scope)
    if row is None:
        try:
            session.add(PinLockout(scope=scope, failures=0, lockouts=0, updated_at=now))
            session.commit()
        except IntegrityError:  # another process made it first
            session.rollback()
        row = session.get(PinLockout, scope)
    assert row is not None
    if row.updated_at < now - FORGET_AFTER and (row.locked_until is None or row.locked_until < now):
        row.failures, row.lockouts = 0, 0
        session.add(row)
        session.flush()
    session.execute(
        update(PinLockout).where(PinLockout.scope == scope).values(failures=PinLockout.failures + 1, updated_at=now)
    )
    session.refresh(row)
    if row.failures < limit:
        return None
    until = now + min(LONGEST, BACKOFF * (2 ** min(row.lockouts, 16)))
    row.failures, row.lockouts, row.locked_until = 0, row.lockouts + 1, until
    session.add(row)
    return until


def record_failure(session: Session, number: str, now: dt.datetime | None = None) -> Lockout | None:
    """Count a wrong PIN from ``number``; the lockout it caused, if it caused one."""
    now = now or utcnow()
    mine = bump(session, _scope(number), PER_NUMBER, now)
    everyone = bump(session, EVERYONE, OVERALL, now)
    session.commit()
    if everyone is not None:
        return Lockout(EVERYONE, everyone)
    return Lockout(number, mine) if mine is not None else None


def record_success(session: Session, number: str) -> None:
    """A right PIN: the number's count starts again (the overall count does not)."""
    row = session.get(PinLockout, _scope(number))
    if row is not None:
        row.failures, row.lockouts, row.locked_until = 0, 0, None
        session.add(row)
        session.commit()
