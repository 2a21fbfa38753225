"""Delivering one claimed reminder, and settling it: delivered, retried, failed or skipped.

The channel is the reminder's own (``--via``) or ``delivery.reminders`` in tars.yaml:

* ``sms``     — Twilio Messages to the owner: delivered when Twilio accepts the message;
* ``webhook`` — a signed JSON POST to ``delivery.webhook``: delivered on a 2xx answer;
* ``call``    — a call to the owner in which the persona announces it
  (``tars.server.reminder_calls``): delivered once the model has finished its first turn
  on the answered call (the announcement), else retried.

Whatever the channel, if the owner is on a live call with this server the reminder is said
in that call (``say_to_model``), and is delivered once the model has finished its next turn
(one reminder at a time per call); nothing else is sent. If the call ends first, the
attempt failed and is retried (by its channel, unless the owner is on a call again).

**Late reminders.** A reminder first claimed more than ``LATE_AFTER`` after it fell due, with
no retry pending, fell due while no server was running: it is *late*. With
``delivery.late_reminders.action: deliver`` (the default) it is delivered, saying so, and
stored with ``late``; with ``skip`` those more than ``skip_after_hours`` late are not
delivered (a one-off ends ``failed`` with the reason, a repeating one moves on).

**Failures** (Twilio refuses, the webhook keeps failing, nobody answers the call) are
retried after ``backoff * 2^(attempt-1)`` until ``1 + delivery.retries`` attempts, then the
reminder ends ``failed`` with the reason (``tars remind list`` shows it).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tars.delivery import DeliveryError

if TYPE_CHECKING:
    from tars.project import Project
    from tars.scheduler.core import Scheduler, Slot
    from tars.server.app import Server

log = logging.getLogger("tars.scheduler")

#: A reminder first claimed this long after it fell due was missed by every server.
LATE_AFTER = dt.timedelta(seconds=60)


# ------------------------------------------------------------------------------ policy


def channel_for(project: Project, reminder: Any) -> str:
    if reminder.channel and reminder.channel != "default":
        return str(reminder.channel)
    return str(project.section("delivery").get("reminders") or "sms")


def is_late(reminder: Any, now: dt.datetime) -> bool:
    """Fell due while no server was running (not a retry after a failed attempt)."""
    return reminder.retry_at is None and now - reminder.due > LATE_AFTER


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


async def delivered(server: Server, reminder_id: int, lease: str, *, late: bool) -> bool:
    """Record the delivery under ``lease``; False if the lease was lost meanwhile (snoozed,
    done or cancelled by the owner, or taken over after it ran out)."""
    from tars.store.reminders import complete

    if server.scheduler is not None:
        done = await server.scheduler.settle(reminder_id, lease, late)
    else:
        now = clock(server)
        done = await server.db(lambda s: complete(s, reminder_id, lease, now, late=late)) is not None
    if done:
        log.info("reminder %s delivered%s", reminder_id, " (late)" if late else "")
    return done


async def failed(server: Server, reminder_id: int, lease: str, reason: str) -> Any:
    """A failed attempt under ``lease``: retried with backoff, or ``failed`` after the last."""
    from tars.store.reminders import fail

    scheduler = server.scheduler
    now = clock(server)
    attempts = scheduler.max_attempts if scheduler is not None else 4
    backoff = scheduler.backoff_seconds if scheduler is not None else 60.0
    result = await server.db(
        lambda s: fail(s, reminder_id, lease, reason, now, max_attempts=attempts, backoff_seconds=backoff)
    )
    if result is not None:
        when = f"retry at {result.retry_at:%H:%M:%S} UTC" if result.retry_at else result.status
        log.warning("reminder %s: %s (%s)", reminder_id, reason, when)
    return result


def clock(server: Server) -> dt.datetime:
    scheduler = server.scheduler
    return scheduler.now() if scheduler is not None else dt.datetime.now(dt.UTC)


# ------------------------------------------------------------------------------ delivering


async def deliver(scheduler: Scheduler, reminder: Any, lease: str, slot: Slot | None = None) -> None:
    """Deliver one claimed reminder and settle it; never raises. ``slot`` is freed once the
    reminder has gone out (or failed), before the delivery is recorded."""
    server = scheduler.server
    project = server.project
    now = scheduler.now()
    late = is_late(reminder, now)
    free = slot.free if slot is not None else (lambda: None)
    try:
        reason = skip_reason(project, reminder, now) if late else None
        if reason is not None:
            from tars.store.reminders import skip

            await server.db(lambda s: skip(s, reminder.id, lease, reason, now))
            log.warning("reminder %s %s", reminder.id, reason)
            return
        from tars.scheduler.live import announce, owner_session

        live = owner_session(server)
        if live is not None:
            if await announce(live, announcement(project, reminder, late, on_call=True)):
                await delivered(server, reminder.id, lease, late=late)
            else:
                await failed(server, reminder.id, lease, "the owner's call ended before the reminder was said")
            return
        channel = channel_for(project, reminder)
        if channel == "sms":
            await server.outbox.send_sms(project.owner.phone, reminder_text(reminder, late))
        elif channel == "webhook":
            await server.outbox.post_webhook(webhook_payload(reminder, late, now))
        elif channel == "call":
            from tars.server.reminder_calls import place_reminder_call

            await place_reminder_call(server, reminder, lease, late=late)
            return  # settled on the call: announced, or the call ends without it
        else:
            raise DeliveryError(f"unknown delivery channel {channel!r}")
        free()
        await delivered(server, reminder.id, lease, late=late)
    except DeliveryError as exc:
        free()
        await failed(server, reminder.id, lease, str(exc))
    except Exception as exc:
        free()
        log.exception("reminder %s: delivery crashed", reminder.id)
        await failed(server, reminder.id, lease, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        free()


async def follow_up_reminder_calls(scheduler: Scheduler) -> None:
    """Reminder calls that ended without the announcement: that attempt failed. (Usually
    settled at once by the call's status callback; this catches any the server missed.)"""
    from tars.store.call_queue import unfinished_reminder_calls

    server = scheduler.server
    for call, reminder in await server.db(unfinished_reminder_calls):
        lease = (call.inputs or {}).get("_reminder_lease")
        if lease and reminder.lease_owner == lease:
            await failed(server, reminder.id, lease, unannounced_reason(call.status, call.failure_reason))


def unannounced_reason(status: str, failure: str | None = None) -> str:
    return {
        "busy": "the owner's line was busy",
        "no-answer": "nobody answered the reminder call",
        "voicemail": "the reminder call reached voicemail",
        "failed": f"the reminder call failed: {failure or 'no reason given'}",
    }.get(status, "the reminder call ended before the reminder was announced")
