"""Transfers of a call (``CallTransfer``): started when TARS puts a caller through (or refuses
to), moved on by the Twilio webhooks that report how it went, read by ``tars calls show`` and
the after-call report. Any server finds a transfer here by its id; nothing is kept in memory.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import exists
from sqlmodel import Session, col, select

from tars.store.errors import NotFound
from tars.store.models import TRANSFER_KINDS, TRANSFER_RESULTS, Call, CallTransfer, utcnow

#: Results after which the caller is back with TARS (or the line is down): the transfer is over.
OVER = ("refused", "completed", "busy", "no-answer", "declined", "failed")
#: Results that bring the caller back to TARS to leave a message.
BACK = ("busy", "no-answer", "declined", "failed")


def start_transfer(session: Session, call_id: int, *, kind: str, target: str, **columns: Any) -> CallTransfer:
    """A new transfer on ``call_id``: ``ringing``, or ``refused`` with ``reason`` in ``columns``."""
    if kind not in TRANSFER_KINDS:
        raise ValueError(f"{kind!r} is not a transfer kind")
    transfer = CallTransfer(call_id=call_id, kind=kind, target=target, **columns)
    if transfer.result == "refused":
        transfer.ended_at = transfer.started_at
    session.add(transfer)
    session.flush()
    return transfer


def get_transfer(session: Session, transfer_id: int) -> CallTransfer:
    found = session.get(CallTransfer, transfer_id)
    if found is None:
        raise NotFound(f"no transfer {transfer_id}", "see a call's transfers with `tars calls show`")
    return found


def settle(
    session: Session, transfer_id: int, result: str, *, talk_seconds: int | None = None, **columns: Any
) -> CallTransfer | None:
    """Move a transfer on to ``result``; None if it was already over (a webhook repeated, or two
    reports racing: the first one wins)."""
    if result not in TRANSFER_RESULTS:
        raise ValueError(f"{result!r} is not a transfer result")
    transfer = get_transfer(session, transfer_id)
    if transfer.result in OVER:
        return None
    now = utcnow()
    if result == "connected" and transfer.answered_at is None:
        transfer.answered_at = now
    if result in OVER:
        transfer.ended_at = now
        if talk_seconds is not None:
            transfer.talk_seconds = talk_seconds
        elif transfer.answered_at is not None:
            transfer.talk_seconds = int((now - transfer.answered_at).total_seconds())
    transfer.result = result
    for name, value in columns.items():
        setattr(transfer, name, value)
    session.add(transfer)
    return transfer


def end_open(session: Session, call_id: int, ended: dt.datetime) -> None:
    """The call ended unseen (its last webhooks lost): a transfer connected then is complete,
    one still ringing failed; the reason says how it is known."""
    for transfer in session.exec(
        select(CallTransfer).where(CallTransfer.call_id == call_id, col(CallTransfer.result).in_(UNDER_WAY))
    ):
        connected = transfer.result == "connected"
        transfer.result = "completed" if connected else "failed"
        transfer.ended_at = ended
        if connected and transfer.answered_at is not None:
            transfer.talk_seconds = max(0, int((_aware(ended) - _aware(transfer.answered_at)).total_seconds()))
        if not connected:
            transfer.reason = "the call ended before Twilio's report of the transfer reached a server"
        session.add(transfer)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def transfers_of(session: Session, call_id: int) -> list[CallTransfer]:
    return list(
        session.exec(select(CallTransfer).where(CallTransfer.call_id == call_id).order_by(col(CallTransfer.id)))
    )


def to_resume(session: Session, call_id: int) -> CallTransfer | None:
    """The transfer that has just brought the caller back to TARS, once: marked resumed."""
    found = session.exec(
        select(CallTransfer)
        .where(CallTransfer.call_id == call_id, col(CallTransfer.result).in_(BACK))
        .where(col(CallTransfer.resumed).is_(False))
        .order_by(col(CallTransfer.id).desc())
    ).first()
    if found is not None:
        found.resumed = True
        session.add(found)
    return found


#: Results while the call is being put through: it is live at Twilio, with no media stream of TARS's.
UNDER_WAY = ("ringing", "connected")


def under_way(session: Session, call_id: int) -> bool:
    """Whether the call is being put through now (ringing or connected), whichever server started it."""
    found = session.exec(
        select(CallTransfer.id).where(CallTransfer.call_id == call_id, col(CallTransfer.result).in_(UNDER_WAY))
    ).first()
    return found is not None


#: The key a goal call's ``run_state`` holds alone while its stream is being moved into a
#: transfer (``tars calls join``), by any server: the server holding the stream stores the
#: playbook run there as the stream ends (``tars.telephony.transfers.going_on``), and a stream
#: that brings the call back waits for it (``tars.calls.setup.goal_setup``).
MOVING = "stream_moving"


def mark_moving(session: Session, call_id: int) -> None:
    """The goal call's stream is about to be moved: its run is stored when the stream ends."""
    call = session.get(Call, call_id)
    if call is not None:
        call.run_state = {MOVING: True}
        session.add(call)


def is_moving(state: dict[str, Any] | None) -> bool:
    return bool(state and state.get(MOVING))


def not_moving(session: Session, call_id: int) -> None:
    """The move did not happen (Twilio refused it): the call is still on its stream."""
    call = session.get(Call, call_id)
    if call is not None and is_moving(call.run_state):
        call.run_state = None
        session.add(call)


def being_put_through() -> Any:
    """A clause for queries on ``Call``: the call has a transfer under way. Such a call is live
    without a stream (holding, ringing, in a conference): no server holds it, none has died
    with it, and the transfer's webhooks finish it, on whichever server Twilio reaches."""
    return exists().where(col(CallTransfer.call_id) == col(Call.id), col(CallTransfer.result).in_(UNDER_WAY))


def finish_connected(session: Session, call_sid: str) -> list[int]:
    """The call ``call_sid`` has ended: its transfers still connected are complete. Their ids."""
    rows = session.exec(
        select(CallTransfer)
        .join(Call, col(Call.id) == col(CallTransfer.call_id))
        .where(Call.sid == call_sid, CallTransfer.result == "connected")
    ).all()
    done = []
    for transfer in rows:
        if transfer.id is not None and settle(session, transfer.id, "completed") is not None:
            done.append(transfer.id)
    return done


def live_goal_call_to(session: Session, number: str) -> Any:
    """The goal call TARS is on with ``number`` right now (its latest), or None."""
    return session.exec(
        select(Call)
        .where(Call.to_number == number, col(Call.playbook).is_not(None), Call.status == "in-progress")
        .where(col(Call.sid).is_not(None))
        .order_by(col(Call.id).desc())
    ).first()


def ring_seconds(transfer: CallTransfer) -> int | None:
    """How long the target's phone rang (started until answered or given up)."""
    end = transfer.answered_at or transfer.ended_at
    if end is None or transfer.result == "refused":
        return None
    return max(0, int((end - transfer.started_at).total_seconds()))


def describe(transfer: CallTransfer) -> str:
    """One line for `tars calls show` and the after-call report."""
    who = transfer.target_name or transfer.target
    if transfer.result == "refused":
        return f"{transfer.kind} transfer to {who}: refused ({transfer.reason})"
    parts = [f"{transfer.kind} transfer to {who}: {transfer.result}"]
    rang = ring_seconds(transfer)
    if rang is not None:
        parts.append(f"rang {rang} s")
    if transfer.talk_seconds is not None:
        parts.append(f"talked {transfer.talk_seconds} s")
    if transfer.reason:
        parts.append(transfer.reason)
    return ", ".join(parts)


def transfer_json(transfer: CallTransfer) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": transfer.id, "kind": transfer.kind, "target": transfer.target, "target_name": transfer.target_name,
        "number": transfer.number, "requested_by": transfer.requested_by, "about": transfer.about,
        "result": transfer.result, "reason": transfer.reason, "started_at": iso(transfer.started_at),
        "answered_at": iso(transfer.answered_at), "ended_at": iso(transfer.ended_at),
        "ring_seconds": ring_seconds(transfer), "talk_seconds": transfer.talk_seconds,
    }  # fmt: skip
