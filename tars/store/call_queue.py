"""Calls for later: goal calls scheduled for a time, retries after busy or no answer, reminder
calls, and the owner's live calls — what the scheduler claims, places and checks.

A scheduled call is a ``queued`` Call row with ``scheduled_at`` and no ``sid``. Claiming works
as for reminders (``tars.store.reminders``): one conditional UPDATE per row takes a lease, so
two servers never place one call twice and a server that dies mid-placement loses only its
lease; the call is claimed again when the lease runs out::

    for call in claim_due_calls(session, now, "host:4242#7", lease_seconds=120, limit=5):
        place(call)                                 # sets the call's sid
        release_call(session, call.id, "host:4242#7")

A retry is a new row (``attempt`` + 1, ``retry_of``); ``follow_up`` on the ended call records
once, whoever decides it, that a retry was scheduled ("retry") or that none will be ("none").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, case, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from tars.store.calls import start_call
from tars.store.errors import InvalidValue
from tars.store.models import Call, CallMessage, Reminder
from tars.store.transfers import being_put_through
from tars.store.wakeups import notify

FINAL = ("completed", "busy", "no-answer", "failed", "voicemail")
#: Goal calls that ended like this are retried per their playbook's policy (``busy``,
#: ``no_answer``, ``voicemail``; the voicemail one retries nothing unless it says so).
RETRYABLE = ("busy", "no-answer", "voicemail")


# --------------------------------------------------------------------------- scheduled goal calls


def schedule_call(
    session: Session,
    *,
    from_number: str,
    to_number: str,
    playbook: str,
    inputs: dict[str, Any] | None,
    at: dt.datetime,
    contact_id: int | None = None,
    attempt: int = 1,
    retry_of: int | None = None,
    **columns: Any,
) -> Call:
    """A goal call to place at ``at`` (the scheduler places it when due, in the playbook's
    calling window); ``columns`` as ``start_call`` takes them (callee, requested_by …)."""
    if at.tzinfo is None:
        raise InvalidValue("a scheduled call needs a timezone-aware time")
    call = start_call(
        session,
        direction="outbound",
        from_number=from_number,
        to_number=to_number,
        contact_id=contact_id,
        playbook=playbook,
        inputs=inputs,
        status="queued",
        **columns,
    )
    call.scheduled_at = at
    call.attempt = attempt
    call.retry_of = retry_of
    session.add(call)
    notify(session)
    session.flush()
    return call


def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        col(Call.status) == "queued",
        col(Call.sid).is_(None),
        col(Call.scheduled_at).is_not(None),
        col(Call.scheduled_at) <= now,
        or_(col(Call.lease_expires_at).is_(None), col(Call.lease_expires_at) <= now),
    )


def claim_due_calls(
    session: Session, now: dt.datetime, owner_id: str, lease_seconds: float = 120, limit: int = 10
) -> list[Call]:
    """Take up to ``limit`` scheduled calls that are due (or whose claimer's lease ran out) for
    ``owner_id`` until ``now + lease_seconds``; commits and returns them, soonest first."""
    expires = now + dt.timedelta(seconds=lease_seconds)
    candidates = session.exec(
        select(Call.id)
        .where(_claimable(now))
        .order_by(col(Call.scheduled_at), col(Call.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed: list[int] = []
    for call_id in candidates:
        result = session.execute(
            update(Call)
            .where(col(Call.id) == call_id, _claimable(now))
            .values(lease_owner=owner_id, lease_expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(call_id)  # type: ignore[arg-type]
    session.commit()
    if not claimed:
        return []
    rows = list(
        session.exec(
            select(Call)
            .where(col(Call.id).in_(claimed))
            .order_by(col(Call.scheduled_at), col(Call.id))
            .execution_options(populate_existing=True)
        )
    )
    session.commit()
    return rows


def next_scheduled_call(session: Session) -> dt.datetime | None:
    """When the next scheduled call may be claimed (its time, or when the lease on it runs
    out), if any. Commits."""
    lease = col(Call.lease_expires_at)
    claimable_from = case((and_(lease.is_not(None), lease > col(Call.scheduled_at)), lease), else_=Call.scheduled_at)
    found = session.exec(
        select(func.min(claimable_from)).where(
            col(Call.status) == "queued", col(Call.sid).is_(None), col(Call.scheduled_at).is_not(None)
        )
    ).one()
    session.commit()
    if found is None:
        return None
    from tars.store.columns import UTCDateTime

    return UTCDateTime().process_result_value(found, session.get_bind().dialect)


def release_call(session: Session, call_id: int, owner_id: str, *, scheduled_at: dt.datetime | None = None) -> bool:
    """Let go of a claimed call: placed (its sid is set), failed, or put off to ``scheduled_at``
    (outside its calling window). Commits. False if ``owner_id`` no longer held it."""
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if scheduled_at is not None:
        values["scheduled_at"] = scheduled_at
    result = session.execute(
        update(Call)
        .where(col(Call.id) == call_id, col(Call.lease_owner) == owner_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def scheduled_calls(session: Session, limit: int = 50) -> list[Call]:
    """Goal calls waiting to be placed (scheduled for later, or retries), soonest first."""
    query = (
        select(Call)
        .where(col(Call.status) == "queued", col(Call.sid).is_(None), col(Call.scheduled_at).is_not(None))
        .order_by(col(Call.scheduled_at), col(Call.id))
        .limit(limit)
    )
    return list(session.exec(query))


#: The failure reason of a scheduled call the owner cancelled (its status becomes ``failed``).
CANCELLED = "cancelled with `tars calls cancel` before it was placed"


def cancel_scheduled_call(session: Session, call_id: int, now: dt.datetime) -> Call:
    """Take a scheduled call off the queue before it is placed: it ends ``failed`` with the
    reason ``CANCELLED`` and is never retried. Commits. Raises NotFound, or InvalidValue (with
    what it is instead) for a call that is not waiting to be placed."""
    from tars.store.errors import NotFound

    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"there is no call {call_id}", "see them with `tars calls list --scheduled`")
    waiting = call.status == "queued" and call.sid is None and call.scheduled_at is not None
    if not waiting:
        if call.failure_reason == CANCELLED:
            raise InvalidValue(f"call {call_id} was already cancelled")
        raise InvalidValue(
            f"call {call_id} is not a scheduled call waiting to be placed (it is {call.status})",
            "only calls in `tars calls list --scheduled` can be cancelled",
        )
    result = session.execute(
        update(Call)
        .where(
            col(Call.id) == call_id,
            col(Call.status) == "queued",
            col(Call.sid).is_(None),
            or_(col(Call.lease_expires_at).is_(None), col(Call.lease_expires_at) <= now),
        )
        .values(status="failed", failure_reason=CANCELLED, follow_up="none", ended_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidValue(
            f"call {call_id} is being placed right now, so it can no longer be cancelled",
            f"follow it with `tars calls show {call_id}`",
        )
    session.refresh(call)
    return call


# --------------------------------------------------------------------------- retries


def calls_to_follow_up(session: Session, limit: int = 50) -> list[Call]:
    """Goal calls that ended busy or unanswered and have no retry decision yet, oldest first."""
    query = (
        select(Call)
        .where(
            col(Call.direction) == "outbound",
            col(Call.playbook).is_not(None),
            col(Call.status).in_(RETRYABLE),
            col(Call.follow_up).is_(None),
        )
        .order_by(col(Call.id))
        .limit(limit)
    )
    return list(session.exec(query))


def schedule_retry(session: Session, call: Call, at: dt.datetime) -> Call | None:
    """The next attempt of ``call`` at ``at``, decided once: None (and nothing written) if a
    retry decision for ``call`` was already made, by this server or another. Commits."""
    taken = session.execute(
        update(Call)
        .where(col(Call.id) == call.id, col(Call.follow_up).is_(None))
        .values(follow_up="retry")
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    try:
        retry = schedule_call(
            session,
            from_number=call.from_number,
            to_number=call.to_number,
            playbook=str(call.playbook),
            inputs=call.inputs,
            at=at,
            contact_id=call.contact_id,
            attempt=call.attempt + 1,
            retry_of=call.id,
            callee=call.callee,
            role=call.role,
            requested_by=call.requested_by,
            report_via=call.report_via,
            after_outcome=call.after_outcome,
        )
        session.commit()
    except IntegrityError:  # another server scheduled it between our UPDATE and INSERT
        session.rollback()
        return None
    return retry


def no_retry(session: Session, call_id: int) -> bool:
    """Record that ``call_id`` will not be retried (policy exhausted). Commits."""
    result = session.execute(
        update(Call)
        .where(col(Call.id) == call_id, col(Call.follow_up).is_(None))
        .values(follow_up="none")
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def attempts_of(session: Session, call_id: int) -> list[Call]:
    """Every attempt of the call series ``call_id`` belongs to, first to last."""
    first = session.get(Call, call_id)
    while first is not None and first.retry_of is not None:
        first = session.get(Call, first.retry_of)
    series: list[Call] = []
    current = first
    while current is not None:
        series.append(current)
        current = session.exec(select(Call).where(col(Call.retry_of) == current.id)).first()
    return series


# --------------------------------------------------------------------------- reminder calls


def start_reminder_call(session: Session, *, reminder_id: int, from_number: str, to_number: str, lease: str) -> Call:
    """The Call row of a call announcing ``reminder_id``, placed under the reminder lease ``lease``."""
    call = start_call(
        session,
        direction="outbound",
        from_number=from_number,
        to_number=to_number,
        status="queued",
        reminder_lease=lease,
        role="owner",
    )
    call.reminder_id = reminder_id
    session.add(call)
    session.flush()
    return call


def unfinished_reminder_calls(session: Session, limit: int = 50) -> list[tuple[Call, Reminder]]:
    """Reminder calls that have ended while their reminder is still being delivered: the
    announcement never happened (busy, no answer, voicemail, hung up first)."""
    query = (
        select(Call, Reminder)
        .join(Reminder, col(Reminder.id) == col(Call.reminder_id))
        .where(col(Call.status).in_(FINAL), col(Reminder.status) == "delivering")
        .order_by(col(Call.id))
        .limit(limit)
    )
    return [(call, reminder) for call, reminder in session.exec(query)]


# --------------------------------------------------------------------------- the owner's live calls


def mark_live(session: Session, call_ids: Iterable[int], server_id: str, until: dt.datetime) -> None:
    """``server_id`` holds the media streams of these owner calls until ``until`` (renewed while live)."""
    ids = list(call_ids)
    if ids:
        session.execute(
            update(Call)
            .where(col(Call.id).in_(ids))
            .values(live_on=server_id, live_until=until)
            .execution_options(synchronize_session=False)
        )
    session.commit()


def let_go(session: Session, call_id: int, server_id: str) -> None:
    """``server_id`` no longer holds a stream of the call, which goes on without one (put
    through, or onto a fresh stream): its live session ends, unless another server has taken
    the call's next stream meanwhile. The Call row stays as it is."""
    session.execute(
        update(Call)
        .where(col(Call.id) == call_id, col(Call.live_on) == server_id)
        .values(live_on=None, live_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def owner_live_elsewhere(session: Session, server_id: str, now: dt.datetime) -> str | None:
    """The server (other than ``server_id``) holding a live owner call now, if any."""
    query = select(Call.live_on).where(
        col(Call.live_until) > now,
        col(Call.live_on).is_not(None),
        col(Call.live_on) != server_id,
        col(Call.role) == "owner",
        col(Call.kind) == "voice",
    )
    found = session.exec(query.limit(1)).first()
    session.commit()
    return found


def reap_lapsed(session: Session, now: dt.datetime, after: dt.timedelta) -> list[int]:
    """Calls whose server stopped renewing their live session ``after`` ago (it died): ended
    ``failed`` with the reason, their pending messages failed. Returns their ids. Commits."""
    query = select(Call.id).where(
        col(Call.live_on).is_not(None),
        col(Call.live_until) < now - after,
        col(Call.status).in_(("queued", "ringing", "in-progress")),
        ~being_put_through(),  # live at Twilio without a stream; its transfer's webhooks finish it
    )
    ids = list(session.exec(query))
    if ids:
        session.execute(
            update(Call)
            .where(col(Call.id).in_(ids))
            .values(
                status="failed",
                failure_reason="the server holding the call stopped (its live session lapsed)",
                ended_at=now,
                live_on=None,
                live_until=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(CallMessage)
            .where(col(CallMessage.to_call_id).in_(ids), col(CallMessage.status) == "pending")
            .values(status="failed", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return ids


def live_sessions(session: Session, now: dt.datetime) -> list[Call]:
    """Every live call on any server (its heartbeat not lapsed), oldest first."""
    query = select(Call).where(
        col(Call.live_until) > now, col(Call.live_on).is_not(None), col(Call.status).in_(("ringing", "in-progress"))
    )
    found = list(session.exec(query.order_by(col(Call.id))))
    session.commit()
    return found


def live_elsewhere(session: Session, server_id: str, now: dt.datetime, *, excluding_sid: str = "") -> int:
    """How many live sessions other servers hold now (for the capacity limit)."""
    query = (
        select(func.count())
        .select_from(Call)
        .where(
            col(Call.live_until) > now,
            col(Call.live_on).is_not(None),
            col(Call.live_on) != server_id,
            col(Call.status).in_(("ringing", "in-progress")),
            col(Call.kind) == "voice",  # text sessions hold no phone line
        )
    )
    if excluding_sid:
        query = query.where(or_(col(Call.sid).is_(None), col(Call.sid) != excluding_sid))
    count = session.exec(query).one()
    session.commit()
    return int(count)
