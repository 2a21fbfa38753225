"""Delivering one claimed reminder, and settling it: delivered, retried, failed or skipped.

The channel is the reminder's own (``--via``) or ``delivery.reminders`` in tars.yaml:

* ``sms``     — Twilio Messages to the owner: delivered when Twilio accepts the message;
* ``webhook`` — a signed JSON POST to ``delivery.webhook``: delivered on a 2xx answer;
* ``call``    — a call to the owner in which the persona announces it
  (``tars.scheduler.reminder_calls``): delivered once the model has finished its first turn
  on the answered call (the announcement), else retried.

If the owner is on a live call with this server when a reminder on one of the channels in
``delivery.said_in_owner_call`` (default: ``call`` only) falls due, it is said in that call
(``say_to_model``) instead of being sent, and is delivered once the model has finished its next
turn (one reminder at a time per call). If the call ends first, the attempt failed and is
retried (by its channel, unless the owner is on a call again). SMS and webhook reminders go
out on their own channel during a call unless that setting names them.

**Late reminders.** A reminder first claimed more than ``scheduler.late_after_seconds`` (60 s)
after it fell due, with no retry pending, fell due while no server was running: it is *late*. With
``delivery.late_reminders.action: deliver`` (the default) it is delivered, saying so, and
stored with ``late``; with ``skip`` those more than ``skip_after_hours`` late are not
delivered (a one-off ends ``failed`` with the reason, a repeating one moves on).

**Failures** (Twilio refuses, the webhook keeps failing, nobody answers the call) are
retried after ``backoff * 2^(attempt-1)`` (``scheduler.backoff_seconds``) until
``1 + delivery.retries`` attempts, then the reminder ends ``failed`` with the reason
(``tars remind list`` shows it).

**No reminder lost silently.** When the last attempt of a ``call`` reminder fails and
Twilio credentials are configured, the reminder is texted to the owner instead, saying the
call did not get through (``fall_back_to_sms``). It is then delivered — a repeating one
moves on — with ``last_error`` saying so ("by SMS: the call did not get through (…)"),
which ``tars remind list --all`` shows; if the text fails too, it ends ``failed`` with both
reasons.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tars import metrics
from tars.delivery import DeliveryError
from tars.store.models import CHANNELS

if TYPE_CHECKING:
    from tars.project import Project
    from tars.scheduler.jobs import Runner, Slot
    from tars.telephony.switchboard import Switchboard

log = logging.getLogger("tars.scheduler")

#: Said when a reminder call did not get through and the reminder goes by text instead.
#: A claim on a reminder being called about lasts this long while the phone rings.
RINGING_LEASE = dt.timedelta(minutes=3)
FALLBACK_TEXT = "Reminder: {text} (TARS could not reach you by phone: {reason})"


# ------------------------------------------------------------------------------ policy


def channel_for(project: Project, reminder: Any) -> str:
    if reminder.channel and reminder.channel != "default":
        return str(reminder.channel)
    return str(project.section("delivery").get("reminders") or "sms")


def said_in_owner_call(project: Project, channel: str) -> bool:
    """Whether a reminder on ``channel`` is said in the owner's live call instead of sent."""
    return channel in (project.section("delivery").get("said_in_owner_call") or ["call"])


def sent_during_owner_call(project: Project) -> list[str]:
    """The stored channels (``--via`` values) of reminders that go out on their own channel
    even while the owner is on a call with TARS."""
    default = str(project.section("delivery").get("reminders") or "sms")
    return [c for c in CHANNELS if not said_in_owner_call(project, default if c == "default" else c)]


def is_late(reminder: Any, now: dt.datetime, after: dt.timedelta) -> bool:
    """Fell due while no server was running (first claimed ``after`` past due; not a retry)."""
    return reminder.retry_at is None and now - reminder.due > after


def skip_reason(project: Project, reminder: Any, now: dt.datetime) -> str | None:
    """Why a late reminder is not delivered (``late_reminders: skip``), or None to deliver it."""
    policy: Mapping[str, Any] = project.section("delivery").get("late_reminders") or {}
    if policy.get("action", "deliver") != "skip":
        return None
    hours = float(policy.get("skip_after_hours", 12))
    if now - reminder.due <= dt.timedelta(hours=hours):
        return None
    return (
        f"skipped: it fell due at {_when(reminder)} while TARS was not running "
        f"(delivery.late_reminders: skip after {hours:g} h)"
    )


def _when(reminder: Any) -> str:
    from tars.timeparse import show

    return show(reminder.due, reminder.timezone)


# ------------------------------------------------------------------------------ words


def reminder_text(reminder: Any, late: bool) -> str:
    """What an SMS or webhook says."""
    text = f"Reminder: {reminder.text}"
    return f"{text} (late: it was due {_when(reminder)})" if late else text


def announcement(project: Project, reminder: Any, late: bool, *, on_call: bool) -> str:
    """What the model is told: during another call (``on_call``) or on the reminder's own call."""
    owner = project.owner.name
    due = f"It was due {_when(reminder)}, while TARS was not running; say it is late. " if late else ""
    tools = (
        f"If they say it is done, use complete_reminder with id {reminder.id}; if they want it later "
        f'("snooze ten minutes", "remind me at five"), use snooze_reminder with id {reminder.id} '
        "and their words as until."
    )
    if on_call:
        return (
            f'[Reminder {reminder.id}] {owner} asked to be reminded now: "{reminder.text}". {due}'
            f"Tell them at the next natural pause, briefly. {tools}"
        )
    return (
        f"[Reminder {reminder.id}] The call has connected: you are calling {owner} to remind them: "
        f'"{reminder.text}". {due}Greet them briefly and give them the reminder now. {tools} '
        "Then say goodbye and use end_call."
    )


def webhook_payload(reminder: Any, late: bool, now: dt.datetime) -> dict[str, Any]:
    from tars.timeparse import local

    return {
        "kind": "reminder",
        "text": reminder_text(reminder, late),
        "late": late,
        "sent_at": now.isoformat(),
        "reminder": {
            "id": reminder.id,
            "text": reminder.text,
            "due": reminder.due.isoformat(),
            "due_local": local(reminder.due, reminder.timezone).isoformat(),
            "timezone": reminder.timezone,
            "repeat": reminder.recurrence,
            "attempt": reminder.attempts,
        },
    }


# ------------------------------------------------------------------------------ settling


async def delivered(board: Switchboard, reminder_id: int, lease: str, *, late: bool) -> bool:
    """Record the delivery under ``lease``; False if the lease was lost meanwhile (snoozed,
    done or cancelled by the owner, or taken over after it ran out)."""
    from tars.store.reminders import complete

    if board.scheduler is not None:
        done = await board.scheduler.settle(reminder_id, lease, late)
    else:
        now = clock(board)
        done = await board.db(lambda s: complete(s, reminder_id, lease, now, late=late)) is not None
    if done:
        log.info("reminder %s delivered%s", reminder_id, " (late)" if late else "")
    return done


async def failed(board: Switchboard, reminder_id: int, lease: str, reason: str) -> Any:
    """A failed attempt under ``lease``: retried with backoff, or ``failed`` after the last
    (a ``call`` reminder's last failed attempt is texted instead: ``fall_back_to_sms``)."""
    from tars.store.reminders import fail

    scheduler = board.scheduler
    now = clock(board)
    attempts = scheduler.max_attempts if scheduler is not None else 4
    backoff = scheduler.backoff_seconds if scheduler is not None else 60.0
    fallback = await _fallback_lease(board, reminder_id, lease, attempts)
    if fallback is not None:
        return await fall_back_to_sms(board, reminder_id, fallback, reason)
    result = await board.db(
        lambda s: fail(s, reminder_id, lease, reason, now, max_attempts=attempts, backoff_seconds=backoff)
    )
    if result is not None:
        when = f"retry at {result.retry_at:%H:%M:%S} UTC" if result.retry_at else result.status
        log.warning("reminder %s: %s (%s)", reminder_id, reason, when)
        if scheduler is not None:
            scheduler.wake()  # its retry may be due before what the scheduler sleeps until
    return result


def sms_configured(board: Switchboard) -> bool:
    """Twilio can text the owner: credentials and the TARS number are set."""
    endpoints = board.endpoints
    number = board.project.section("telephony").get("number")
    return bool(endpoints.twilio_account_sid and endpoints.twilio_auth_token and number)


async def _fallback_lease(board: Switchboard, reminder_id: int, lease: str, max_attempts: int) -> str | None:
    """If this failed attempt was a ``call`` reminder's last and SMS is configured, take the
    reminder over for the text (a new lease, so the status callback and the scheduler's
    follow-up, which may both report the call's end, cannot both text it); else None."""
    from tars.store.reminders import extend_lease, get_reminder

    if not sms_configured(board):
        return None
    held = await board.db(lambda s: get_reminder(s, reminder_id))
    if (
        held.status != "delivering"
        or held.lease_owner != lease
        or held.attempts < max_attempts
        or channel_for(board.project, held) != "call"
    ):
        return None
    fallback = f"{lease}/sms"
    until = clock(board) + dt.timedelta(minutes=2)
    taken = await board.db(lambda s: extend_lease(s, reminder_id, lease, until, new_owner=fallback))
    return fallback if taken else None


async def fall_back_to_sms(board: Switchboard, reminder_id: int, lease: str, reason: str) -> Any:
    """Text the owner a reminder whose calls did not get through (held under ``lease``):
    delivered, noting how; or ``failed`` with both reasons if the text fails too."""
    from tars.store.reminders import complete, fail, get_reminder

    reminder = await board.db(lambda s: get_reminder(s, reminder_id))
    text = FALLBACK_TEXT.format(text=reminder.text, reason=reason)
    try:
        await board.outbox.send_sms(board.project.owner.phone, text)
    except DeliveryError as exc:
        why = f"{reason}; the text sent instead failed too: {exc}"
        now = clock(board)
        result = await board.db(lambda s: fail(s, reminder_id, lease, why, now, max_attempts=0))
        log.warning("reminder %s: %s", reminder_id, why)
        return result
    note = f"by SMS: the call did not get through ({reason})"
    now = clock(board)
    result = await board.db(lambda s: complete(s, reminder_id, lease, now, note=note))
    log.info("reminder %s delivered %s", reminder_id, note)
    return result


def clock(board: Switchboard) -> dt.datetime:
    scheduler = board.scheduler
    return scheduler.now() if scheduler is not None else dt.datetime.now(dt.UTC)


# ------------------------------------------------------------------------------ delivering


async def deliver(scheduler: Runner, reminder: Any, lease: str, slot: Slot | None = None) -> None:
    """Deliver one claimed reminder and settle it; never raises. ``slot`` is freed once the
    reminder has gone out (or failed), before the delivery is recorded."""
    board = scheduler.board
    project = board.project
    now = scheduler.now()
    late = is_late(reminder, now, scheduler.late_after)
    metrics.REMINDER_LATENESS.observe(max((now - reminder.due).total_seconds(), 0.0))
    free = slot.free if slot is not None else (lambda: None)
    try:
        reason = skip_reason(project, reminder, now) if late else None
        if reason is not None:
            from tars.store.reminders import skip

            await board.db(lambda s: skip(s, reminder.id, lease, reason, now))
            log.warning("reminder %s %s", reminder.id, reason)
            return
        from tars.scheduler.live import announce, owner_session

        channel = channel_for(project, reminder)
        live = owner_session(board) if said_in_owner_call(project, channel) else None
        if live is not None:
            if await announce(live, announcement(project, reminder, late, on_call=True)):
                await delivered(board, reminder.id, lease, late=late)
            else:
                await failed(board, reminder.id, lease, "the owner's call ended before the reminder was said")
            return
        if channel == "sms":
            await board.outbox.send_sms(project.owner.phone, reminder_text(reminder, late))
        elif channel == "webhook":
            await board.outbox.post_webhook(webhook_payload(reminder, late, now))
        elif channel == "call":
            from tars.store.reminders import extend_lease

            until = clock(board) + RINGING_LEASE
            await board.db(lambda s: extend_lease(s, reminder.id, lease, until))
            await board.place_reminder_call(reminder, lease, late=late)
            return  # settled on the call: announced, or the call ends without it
        else:
            raise DeliveryError(f"unknown delivery channel {channel!r}")
        free()
        await delivered(board, reminder.id, lease, late=late)
    except DeliveryError as exc:
        free()
        await failed(board, reminder.id, lease, str(exc))
    except Exception as exc:
        free()
        log.exception("reminder %s: delivery crashed", reminder.id)
        await failed(board, reminder.id, lease, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        free()


async def follow_up_reminder_calls(scheduler: Runner) -> None:
    """Reminder calls that ended without the announcement: that attempt failed. (Usually
    settled at once by the call's status callback; this catches any the server missed.)"""
    from tars.store.call_queue import unfinished_reminder_calls

    board = scheduler.board
    for call, reminder in await board.db(unfinished_reminder_calls):
        lease = call.reminder_lease
        if lease and reminder.lease_owner == lease:
            why = unannounced_reason(call.status, call.failure_reason, placed=call.sid is not None)
            await failed(board, reminder.id, lease, why)


def unannounced_reason(status: str, failure: str | None = None, *, placed: bool = True) -> str:
    """Why a reminder call ended unannounced. A call Twilio never placed (no SID) failed when it
    was placed, and its row's reason says so in full, the words the placing itself reports: the
    same reason whichever of the two settles the reminder first."""
    if not placed and failure:
        return failure
    return {
        "busy": "the owner's line was busy",
        "no-answer": "nobody answered the reminder call",
        "voicemail": "the reminder call reached voicemail",
        "failed": f"the reminder call failed: {failure or 'no reason given'}",
    }.get(status, "the reminder call ended before the reminder was announced")
