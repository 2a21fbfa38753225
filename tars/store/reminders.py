"""Reminders: made from words, listed, done, snoozed, cancelled, and delivered exactly once.

A reminder row is one reminder or one repeating series (``recurrence`` is an RRULE,
``series_start`` its first occurrence): when an occurrence is delivered, the same row moves
on to the next one, so its id stays what the owner knows it by. ``done`` on a repeating
reminder skips to the occurrence after; ``snooze`` moves the upcoming one; ``cancel`` ends it.

Delivery (the scheduler) goes through a lease, so a deliverer that dies never loses a
reminder and two deliverers never both send one:

    claimed = claim_due(session, now, owner_id="host-1:4242", lease_seconds=120, limit=10)
    for reminder in claimed:
        try:
            send(reminder)
        except Exception as exc:
            fail(session, reminder.id, "host-1:4242", str(exc), clock_now(), max_attempts=3)
        else:
            complete(session, reminder.id, "host-1:4242", clock_now())

``claim_due`` takes rows that are due (``pending`` and ``due``/``retry_at`` ≤ now) or whose
lease ran out (``delivering`` and ``lease_expires_at`` ≤ now) with one conditional UPDATE,
so a row changes hands only if it is still claimable when the UPDATE runs: safe under
SQLite's single writer and PostgreSQL's row locks alike (PostgreSQL also skips rows another
claimer holds, ``FOR UPDATE SKIP LOCKED``). The claimer's id must be unique to the claim
(the scheduler uses ``<server>#<n>``): the claimed rows are read back by it. All commit;
``complete_many`` records many deliveries in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, true, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from tars import timeparse
from tars.store.errors import InvalidValue, NotFound, is_row_id
from tars.store.models import CHANNELS, Contact, Reminder
from tars.store.wakeups import notify

log = logging.getLogger("tars.store")

OPEN = ("pending", "delivering", "failed")  # shown by `tars remind list` without --all
MAX_BACKOFF = dt.timedelta(hours=1)
#: "Done" this soon after a delivery refers to the reminder just delivered.
ACKNOWLEDGE_WITHIN = dt.timedelta(hours=1)


# --------------------------------------------------------------------------- making


def create_reminder(
    session: Session,
    *,
    text: str,
    when: str | None,
    timezone: str,
    now: dt.datetime,
    every: str | None = None,
    via: str = "default",
    contact: str | None = None,
) -> Reminder:
    """A reminder from the owner's words: ``when`` "tomorrow 2pm", ``every`` "every monday at 9",
    ``contact`` a contact's name. Bad input raises a StoreError or TimeParseError (both
    UserErrors) and nothing is written."""
    repeat = timeparse.parse_repeat(every, timezone) if every else None
    if when:
        due = timeparse.parse_future(when, timezone, now)
    elif repeat is not None and repeat.has_time:
        due = now.replace(microsecond=0) + dt.timedelta(seconds=1)
    elif repeat is not None:
        raise InvalidValue(
            f"{every!r} does not say at what time; say when the first one is",
            "add --at, e.g. --at 'tomorrow 9am', or put the time in the repeat: 'every day at 9'",
        )
    else:
        raise InvalidValue("say when to remind you", "e.g. --at 'tomorrow 2pm' or --at 'in 20 minutes'")
    contact_id = None
    if contact:
        from tars.store.contacts import get_contact

        contact_id = get_contact(session, contact, fuzzy=True).id
    return add_reminder(
        session,
        text=text,
        due=due,
        timezone=timezone,
        now=now,
        recurrence=repeat.rule if repeat else None,
        channel=via,
        contact_id=contact_id,
    )


def add_reminder(
    session: Session,
    *,
    text: str,
    due: dt.datetime,
    timezone: str,
    now: dt.datetime,
    recurrence: str | None = None,
    channel: str = "default",
    contact_id: int | None = None,
) -> Reminder:
    """A reminder at ``due`` (or, repeating, at the first occurrence of ``recurrence`` at or
    after ``due``). Raises InvalidValue for empty text, a time in the past, an unknown
    channel or a repeat that never fires."""
    text = text.strip()
    if not text:
        raise InvalidValue("a reminder needs some text", "e.g. tars remind add 'call mum' --at 'tomorrow 6pm'")
    if channel not in CHANNELS:
        raise InvalidValue(f"{channel!r} is not a way to deliver a reminder", f"use one of {', '.join(CHANNELS)}")
    timeparse.zone(timezone)
    if recurrence:
        first = timeparse.first_occurrence(recurrence, due, timezone)
        if first is None:
            raise InvalidValue(
                f"the repeat {recurrence!r} never fires after {timeparse.show(due, timezone)}",
                "check its UNTIL, COUNT and BY… parts (30 February does not exist)",
            )
        due = first
    if due <= now:
        raise InvalidValue(
            f"{timeparse.show(due, timezone)} ({timezone}) is in the past",
            "give a time in the future",
        )
    if contact_id is not None and session.get(Contact, contact_id) is None:
        raise NotFound(f"no contact with id {contact_id}")
    reminder = Reminder(
        text=text,
        due=due,
        timezone=timezone,
        recurrence=recurrence or None,
        series_start=due if recurrence else None,
        channel=channel,
        contact_id=contact_id,
        created_at=now,
        updated_at=now,
    )
    session.add(reminder)
    session.flush()
    notify(session)
    return reminder


# --------------------------------------------------------------------------- reading


def list_reminders(session: Session, *, include_closed: bool = False) -> list[Reminder]:
    """Open reminders (pending, delivering, failed), soonest first; ``include_closed``: all."""
    query = select(Reminder).order_by(col(Reminder.due), col(Reminder.id))
    if not include_closed:
        query = query.where(col(Reminder.status).in_(OPEN))
    return list(session.exec(query))


def get_reminder(session: Session, reminder_id: int) -> Reminder:
    reminder = session.get(Reminder, reminder_id, populate_existing=True) if is_row_id(reminder_id) else None
    if reminder is None:
        raise NotFound(f"no reminder with id {reminder_id}", "see them with `tars remind list --all`")
    return reminder


def contact_names(session: Session, reminders: list[Reminder]) -> dict[int, str]:
    from tars.store.contacts import names_by_id

    return names_by_id(session, (r.contact_id for r in reminders))


# --------------------------------------------------------------------------- the owner's changes


def mark_done(session: Session, reminder_id: int, now: dt.datetime, *, strict: bool = False) -> Reminder:
    """Done: a one-off reminder is closed (delivered); a repeating one moves to the next time.

    "Done" right after a delivery acknowledges what was just delivered ("call Helen" —
    "done!" on the reminder call): a delivered one-off stays as it is, and a repeating one
    that has just moved on to its next time is not moved again (if nothing else changed it
    since, within ``ACKNOWLEDGE_WITHIN`` of the delivery). ``strict`` (`tars remind done`):
    a one-off that is already done raises InvalidValue saying so."""
    reminder = get_reminder(session, reminder_id)
    if reminder.status == "cancelled":
        raise InvalidValue(f"reminder {reminder_id} was cancelled")
    if strict and reminder.status == "delivered":
        when = timeparse.show(reminder.delivered_at, reminder.timezone)
        raise InvalidValue(
            f"reminder {reminder_id} is already done" + (f" (since {when})" if when else ""),
            "nothing was changed; see it with `tars remind list --all`",
        )
    if reminder.status == "delivered" or _just_delivered(reminder, now):
        return reminder
    _release(reminder)
    if not _advance(reminder, now):
        reminder.status = "delivered"
        reminder.delivered_at = reminder.delivered_at or now
    reminder.updated_at = now
    session.add(reminder)
    session.flush()
    return reminder


def snooze(session: Session, reminder_id: int, until: dt.datetime, now: dt.datetime) -> Reminder:
    """Move the reminder (a repeating one: its upcoming occurrence) to ``until``; it is
    pending again even if it had been delivered or had failed."""
    reminder = get_reminder(session, reminder_id)
    if reminder.status == "cancelled":
        raise InvalidValue(f"reminder {reminder_id} was cancelled", "make a new one with `tars remind add`")
    if until <= now:
        raise InvalidValue(
            f"{timeparse.show(until, reminder.timezone)} is in the past",
            "snooze to a time in the future",
        )
    if reminder.status == "pending" and until < reminder.due:
        due, asked = timeparse.show(reminder.due, reminder.timezone), timeparse.show(until, reminder.timezone)
        raise InvalidValue(
            f"reminder {reminder_id} is due {due}; snoozing it to {asked} would bring it earlier",
            f"snoozing only puts a reminder off: give a time after {due} (a while such as '2 hours' counts from now)",
        )
    _release(reminder)
    reminder.due = until
    reminder.status = "pending"
    reminder.attempts = 0
    reminder.last_error = None
    reminder.updated_at = now
    session.add(reminder)
    session.flush()
    return reminder


def cancel(session: Session, reminder_id: int, now: dt.datetime) -> Reminder:
    """Cancel a reminder (a repeating one: the whole series). Kept, with status cancelled."""
    reminder = get_reminder(session, reminder_id)
    if reminder.status == "cancelled":
        raise InvalidValue(f"reminder {reminder_id} is already cancelled")
    _release(reminder)
    reminder.status = "cancelled"
    reminder.updated_at = now
    session.add(reminder)
    session.flush()
    return reminder


def _just_delivered(reminder: Reminder, now: dt.datetime) -> bool:
    """A repeating reminder delivered moments ago and untouched since (it moved on by itself)."""
    delivered = reminder.delivered_at
    return (
        reminder.status == "pending"
        and delivered is not None
        and reminder.updated_at == delivered
        and dt.timedelta() <= now - delivered <= ACKNOWLEDGE_WITHIN
    )


def _release(reminder: Reminder) -> None:
    reminder.lease_owner = None
    reminder.lease_expires_at = None
    reminder.retry_at = None


def _broken_repeat(reminder: Reminder, now: dt.datetime) -> str | None:
    """Why a repeating reminder's next time cannot be found (a rule or timezone stored before
    it was refused, or edited by hand), or None. A delivery then ends the reminder ``failed``
    with this reason, so `tars remind list` shows the owner the series stopped, and why."""
    if not reminder.recurrence:
        return None
    start = reminder.series_start or reminder.due
    try:
        timeparse.next_occurrence(reminder.recurrence, start, max(reminder.due, now), reminder.timezone)
    except timeparse.TimeParseError as exc:
        return (
            f"its repeat {reminder.recurrence[:200]!r} cannot be followed ({exc}), so it will not repeat; "
            "add it again with `tars remind add`"
        )
    return None


def _advance(reminder: Reminder, now: dt.datetime) -> bool:
    """Move a repeating reminder to its next occurrence after max(due, now); False at the end."""
    if not reminder.recurrence:
        return False
    start = reminder.series_start or reminder.due
    try:
        following = timeparse.next_occurrence(reminder.recurrence, start, max(reminder.due, now), reminder.timezone)
    except timeparse.TimeParseError as exc:  # a rule stored before it was refused: the series ends here
        log.warning(
            "reminder %s: its repeat %r cannot be followed (%s); it will not repeat",
            reminder.id,
            reminder.recurrence,
            exc,
        )
        following = None
    if following is None:
        return False
    reminder.due = following
    reminder.status = "pending"
    reminder.attempts = 0
    return True


# --------------------------------------------------------------------------- delivery


def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        and_(col(Reminder.status) == "pending", func.coalesce(Reminder.retry_at, Reminder.due) <= now),
        and_(col(Reminder.status) == "delivering", col(Reminder.lease_expires_at) <= now),
    )


def claim_due(
    session: Session,
    now: dt.datetime,
    owner_id: str,
    lease_seconds: float = 120,
    limit: int = 10,
    channels: Sequence[str] | None = None,
) -> list[Reminder]:
    """Take up to ``limit`` due reminders for ``owner_id`` until ``now + lease_seconds``;
    commits, and returns the claimed reminders (status ``delivering``, ``attempts`` counted).
    ``channels``, if given, limits the claim to reminders stored with one of these channels.

    Call it with a session that has nothing uncommitted. A reminder is never handed to two
    claimers whose leases overlap; one whose claimer died is taken again when its lease ends.
    """
    expires = now + dt.timedelta(seconds=lease_seconds)
    candidates = session.exec(
        select(Reminder.id)
        .where(_claimable(now), _on(channels))
        .order_by(func.coalesce(Reminder.retry_at, Reminder.due), col(Reminder.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not candidates:
        session.commit()
        return []
    # One conditional UPDATE for the lot: a row another claimer took meanwhile no longer
    # matches _claimable and is left alone. ``owner_id`` must be unique to this claim.
    taken = session.execute(
        update(Reminder)
        .where(col(Reminder.id).in_(candidates), _claimable(now))
        .values(
            status="delivering",
            lease_owner=owner_id,
            lease_expires_at=expires,
            attempts=col(Reminder.attempts) + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if taken.rowcount == 0:  # type: ignore[attr-defined]
        return []
    rows = session.exec(
        select(Reminder)
        .where(
            col(Reminder.id).in_(candidates),
            col(Reminder.status) == "delivering",
            col(Reminder.lease_owner) == owner_id,
            col(Reminder.lease_expires_at) == expires,
        )
        .order_by(col(Reminder.due), col(Reminder.id))
        .execution_options(populate_existing=True)
    )
    found = list(rows)
    session.commit()
    return found


def _on(channels: Sequence[str] | None) -> ColumnElement[bool]:
    return true() if channels is None else col(Reminder.channel).in_(channels)


def next_due(session: Session, channels: Sequence[str] | None = None) -> dt.datetime | None:
    """When the next reminder may be claimed, if any: a pending one falls due (its retry time,
    if it has one), or the lease on one being delivered runs out (of those stored with one of
    ``channels``, if given)."""
    on = _on(channels)
    pending, delivering = col(Reminder.status) == "pending", col(Reminder.status) == "delivering"
    first = session.exec(select(func.min(Reminder.due)).where(pending, col(Reminder.retry_at).is_(None), on)).one()
    retry = session.exec(select(func.min(Reminder.retry_at)).where(pending, on)).one()
    lease = session.exec(select(func.min(Reminder.lease_expires_at)).where(delivering, on)).one()
    session.commit()
    found = [t for t in (first, retry, lease) if t is not None]
    if not found:
        return None
    from tars.store.columns import UTCDateTime

    return min(UTCDateTime().process_result_value(t, session.get_bind().dialect) for t in found)


def complete(
    session: Session, reminder_id: int, owner_id: str, now: dt.datetime, *, late: bool = False, note: str | None = None
) -> Reminder | None:
    """Delivered: a one-off reminder is closed, a repeating one moves to its next occurrence
    (wall-clock time kept in its timezone). ``late``: it fell due while no server was running.
    ``note``: how it was delivered when not by its own channel, kept in ``last_error`` (so
    `tars remind list --all` shows it). Commits. None if ``owner_id`` no longer holds the
    lease (the owner snoozed or cancelled it meanwhile, or the lease ran out and another
    deliverer took it): then nothing is changed."""
    reminder = _held(session, reminder_id, owner_id)
    if reminder is None:
        return None
    values = _delivered(reminder, now, late)
    if note:
        values["last_error"] = note[:2000]
    return _finish(session, reminder_id, owner_id, now, values)


def complete_many(session: Session, deliveries: Sequence[tuple[int, str, bool]], now: dt.datetime) -> list[bool]:
    """``complete`` for many ``(reminder_id, owner_id, late)`` in one transaction (one commit,
    one turn at the write lock, however many deliveries finished meanwhile). Commits. For
    each: True if it was recorded, False if its lease had been lost."""
    ids = [reminder_id for reminder_id, _, _ in deliveries]
    state = {
        row.id: row
        for row in session.execute(
            select(Reminder.id, Reminder.status, Reminder.lease_owner, Reminder.recurrence).where(
                col(Reminder.id).in_(ids)
            )
        )
    }
    recorded: dict[int, bool] = {}
    one_offs: dict[tuple[str, bool], list[int]] = {}
    for reminder_id, owner_id, late in deliveries:
        row = state.get(reminder_id)
        if row is None or row.status != "delivering" or row.lease_owner != owner_id:
            recorded[reminder_id] = False
        elif row.recurrence:  # moves on to its next time: one by one
            reminder = _held(session, reminder_id, owner_id, end_read=False)
            recorded[reminder_id] = reminder is not None and _apply(
                session, reminder_id, owner_id, now, _delivered(reminder, now, late)
            )
        else:
            one_offs.setdefault((owner_id, late), []).append(reminder_id)
    for (owner_id, late), group in one_offs.items():  # closed: one UPDATE per claim
        values: dict[str, Any] = {"delivered_at": now, "last_error": None, "late": late, "status": "delivered"}
        if _apply_many(session, group, owner_id, now, values) == len(group):
            recorded.update(dict.fromkeys(group, True))
            continue
        closed = set(  # a lease was lost between the read and the UPDATE: which ones went through?
            session.exec(
                select(Reminder.id).where(
                    col(Reminder.id).in_(group), col(Reminder.status) == "delivered", col(Reminder.delivered_at) == now
                )
            )
        )
        recorded.update({reminder_id: reminder_id in closed for reminder_id in group})
    session.commit()
    return [recorded[reminder_id] for reminder_id in ids]


def _delivered(reminder: Reminder, now: dt.datetime, late: bool) -> dict[str, Any]:
    values: dict[str, Any] = {"delivered_at": now, "last_error": None, "late": late}
    broken = _broken_repeat(reminder, now)
    if broken is not None:
        values.update(status="failed", last_error=f"delivered, but {broken}"[:2000])
    elif _advance(reminder, now):
        values.update(due=reminder.due, status="pending", attempts=0)
    else:
        values.update(status="delivered")
    return values


def fail(
    session: Session,
    reminder_id: int,
    owner_id: str,
    error: str,
    now: dt.datetime,
    *,
    max_attempts: int = 3,
    backoff_seconds: float = 60,
) -> Reminder | None:
    """A delivery attempt failed. Retried after ``backoff_seconds * 2**(attempts - 1)`` (at most an
    hour) until ``max_attempts`` attempts; then ``failed`` (a repeating reminder moves on to its
    next occurrence instead, keeping ``last_error``). Commits. None if the lease was lost."""
    reminder = _held(session, reminder_id, owner_id)
    if reminder is None:
        return None
    values: dict[str, Any] = {"last_error": error[:2000]}
    if reminder.attempts < max_attempts:
        wait = min(dt.timedelta(seconds=backoff_seconds * 2 ** max(reminder.attempts - 1, 0)), MAX_BACKOFF)
        values.update(status="pending", retry_at=now + wait)
    elif (broken := _broken_repeat(reminder, now)) is not None:
        values.update(status="failed", retry_at=None, last_error=f"{error}; and {broken}"[:2000])
    elif _advance(reminder, now):
        values.update(due=reminder.due, status="pending", attempts=0, retry_at=None)
    else:
        values.update(status="failed", retry_at=None)
    return _finish(session, reminder_id, owner_id, now, values)


def skip(session: Session, reminder_id: int, owner_id: str, reason: str, now: dt.datetime) -> Reminder | None:
    """Not delivered on purpose (a late reminder under ``late_reminders: skip``): a one-off ends
    ``failed`` with ``reason`` (so `tars remind list` shows it), a repeating one moves on to its
    next occurrence, keeping ``reason`` in ``last_error``. Commits. None if the lease was lost."""
    reminder = _held(session, reminder_id, owner_id)
    if reminder is None:
        return None
    values: dict[str, Any] = {"last_error": reason[:2000], "retry_at": None}
    if _advance(reminder, now):
        values.update(due=reminder.due, status="pending", attempts=0)
    else:
        values.update(status="failed")
    return _finish(session, reminder_id, owner_id, now, values)


def extend_lease(
    session: Session, reminder_id: int, owner_id: str, until: dt.datetime, *, new_owner: str | None = None
) -> bool:
    """Keep holding a reminder until ``until`` (a reminder call that rings, then talks), or
    hand the lease to ``new_owner`` (only one of several callers can: the others find it
    gone). Commits. False if ``owner_id`` no longer holds it."""
    values: dict[str, Any] = {"lease_expires_at": until}
    if new_owner is not None:
        values["lease_owner"] = new_owner
    result = session.execute(
        update(Reminder)
        .where(
            col(Reminder.id) == reminder_id,
            col(Reminder.status) == "delivering",
            col(Reminder.lease_owner) == owner_id,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def _held(session: Session, reminder_id: int, owner_id: str, *, end_read: bool = True) -> Reminder | None:
    reminder = session.get(Reminder, reminder_id, populate_existing=True) if is_row_id(reminder_id) else None
    if reminder is None or reminder.status != "delivering" or reminder.lease_owner != owner_id:
        if end_read:
            session.rollback()
        return None
    session.expunge(reminder)  # _advance works on a copy; the UPDATE below is what counts
    return reminder


def _finish(
    session: Session, reminder_id: int, owner_id: str, now: dt.datetime, values: dict[str, Any]
) -> Reminder | None:
    applied = _apply(session, reminder_id, owner_id, now, values)
    session.commit()
    return get_reminder(session, reminder_id) if applied else None


def _apply(session: Session, reminder_id: int, owner_id: str, now: dt.datetime, values: dict[str, Any]) -> bool:
    """The change, only if ``owner_id`` still holds the lease; the lease is released."""
    return _apply_many(session, [reminder_id], owner_id, now, values) == 1


def _apply_many(
    session: Session, reminder_ids: Sequence[int], owner_id: str, now: dt.datetime, values: dict[str, Any]
) -> int:
    """The change to those of ``reminder_ids`` that ``owner_id`` still holds; how many."""
    values.update(lease_owner=None, lease_expires_at=None, updated_at=now)
    values.setdefault("retry_at", None)
    result = session.execute(
        update(Reminder)
        .where(
            col(Reminder.id).in_(reminder_ids),
            col(Reminder.status) == "delivering",
            col(Reminder.lease_owner) == owner_id,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- showing


def reminder_json(reminder: Reminder, contact_name: str | None = None) -> dict[str, Any]:
    tz = reminder.timezone
    return {
        "id": reminder.id,
        "text": reminder.text,
        "due": reminder.due.isoformat(),
        "due_local": timeparse.local(reminder.due, tz).isoformat(),
        "timezone": tz,
        "repeat": reminder.recurrence,
        "repeat_text": timeparse.describe_repeat(reminder.recurrence) or None,
        "via": reminder.channel,
        "contact_id": reminder.contact_id,
        "contact": contact_name,
        "kind": reminder.kind,
        "status": reminder.status,
        "attempts": reminder.attempts,
        "last_error": reminder.last_error,
        "late": reminder.late,
        "delivered_at": reminder.delivered_at.isoformat() if reminder.delivered_at else None,
        "retry_at": reminder.retry_at.isoformat() if reminder.retry_at else None,
        "created_at": reminder.created_at.isoformat(),
    }
