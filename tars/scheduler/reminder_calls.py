"""Reminder calls: TARS rings the owner and the persona announces a reminder.

    Switchboard.place_reminder_call  Call row (reminder_id, the claim's lease) → Twilio
                                     calls.create (url /twilio/reminder?call_id=N, AMD)
    answer              the answered call: a person → <Connect><Stream> (purpose "reminder");
                        a machine → hang up (that attempt failed: retried later)
    settle_unannounced  the call ended (status callback): an unannounced call fails the
                        attempt at once (busy, no answer, voicemail …)
    reminder_setup      a CallSession for the owner role, whose opening tells the model to
                        announce the reminder; the owner may say "done" or "snooze …"
                        (complete_reminder / snooze_reminder)
    watch_announcement  **delivered** when the model has finished its first turn on the
                        answered call (its transcript line is recorded): the opening makes
                        that turn the announcement. A call that ends before it, however it
                        ends, fails the attempt, which is retried with backoff.

The reminder's lease travels with the call (``Call.reminder_lease``), so whichever server
Twilio's webhooks reach settles the right claim, and a claim that was lost meanwhile (the
owner snoozed it, another server took it over) is left alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from tars.caller import OWNER, Caller
from tars.calls import instructions
from tars.calls.session import CallSetup
from tars.scheduler.reminders import announcement, clock, delivered, failed, unannounced_reason
from tars.telephony import twiml
from tars.telephony.switchboard import BUSY_MESSAGE, Switchboard

log = logging.getLogger("tars.reminders")

#: Once answered, a claim on a reminder being called about lasts for the whole call, up to
#: server.max_call_minutes (and at least this long).
TALKING_LEASE = dt.timedelta(minutes=10)
ALREADY_DEALT_WITH = "This was a reminder from TARS, but it has already been dealt with. Goodbye."


async def answer(board: Switchboard, params: Mapping[str, str], call_id: int) -> str:
    """TwiML for an answered reminder call."""
    from tars.store.calls import get_call, update_call
    from tars.store.reminders import extend_lease, get_reminder

    project = board.project
    call_sid = params.get("CallSid", "")
    call = await board.db(lambda s: get_call(s, call_id))
    lease = call.reminder_lease or ""
    reminder = await board.db(lambda s: get_reminder(s, int(call.reminder_id or 0)))
    answered_by = params.get("AnsweredBy", "human")
    if answered_by.startswith("machine") or answered_by == "fax":
        await board.db(lambda s: update_call(s, call_id, status="voicemail"))
        await _fail(board, reminder.id, lease, "the reminder call reached voicemail")
        return twiml.hang_up()
    if reminder.status != "delivering" or reminder.lease_owner != lease:
        log.info("reminder call %s: reminder %s was dealt with meanwhile", call_id, reminder.id)
        return twiml.say_and_hang_up(ALREADY_DEALT_WITH)
    if await board.busy(call_sid):
        await _fail(board, reminder.id, lease, "TARS was at its call limit when the owner answered")
        return twiml.say_and_hang_up(BUSY_MESSAGE)
    board.reserve(call_sid)
    minutes = float(project.section("server").get("max_call_minutes", 30))
    talking = max(TALKING_LEASE, dt.timedelta(minutes=minutes + 1))
    now = clock(board)
    await board.db(lambda s: extend_lease(s, reminder.id, lease, now + talking))
    owner = Caller(project.owner.phone, OWNER, project.owner.name)
    return board.stream_document(owner, call_sid, call_id, "reminder")


async def _fail(board: Switchboard, reminder_id: int, lease: str, reason: str) -> None:
    if lease:
        await failed(board, reminder_id, lease, reason)


async def settle_unannounced(board: Switchboard, call_id: int) -> None:
    """The call has ended: if its reminder is still held under the call's lease, the
    announcement never happened, and this attempt failed."""
    from tars.store.calls import get_call
    from tars.store.reminders import get_reminder

    call = await board.db(lambda s: get_call(s, call_id))
    lease = call.reminder_lease or ""
    if call.reminder_id is None or not lease or call.sid in board.sessions:
        return  # still talking: the session settles it when it ends
    reminder = await board.db(lambda s: get_reminder(s, int(call.reminder_id)))
    if reminder.status == "delivering" and reminder.lease_owner == lease:
        why = unannounced_reason(call.status, call.failure_reason, placed=call.sid is not None)
        await _fail(board, reminder.id, lease, why)


# ------------------------------------------------------------------------------ the call itself


async def reminder_setup(board: Switchboard, body: Mapping[str, str], call_sid: str, stream_sid: str) -> CallSetup:
    """The owner on the line; the model is told to announce the reminder first."""
    from tars.store.calls import get_call
    from tars.store.reminders import get_reminder

    project = board.project
    call = await board.db(lambda s: get_call(s, int(body["call_id"])))
    reminder = await board.db(lambda s: get_reminder(s, int(call.reminder_id or 0)))
    owner = project.owner
    caller = Caller(owner.phone, OWNER, owner.name)
    role = project.roles[OWNER]
    tools = [t for t in role.tools if t in project.tools]
    now = instructions.local_now(project)
    system = instructions.inbound_instruction(project, OWNER, owner.name, owner.phone, now, tools)
    system += f"\nYou placed this call to {owner.name} to give them a reminder; they did not call you."
    return CallSetup(
        call_id=call.id, call_sid=call_sid, stream_sid=stream_sid, caller=caller, purpose="reminder",
        system_instruction=system, opening=announcement(project, reminder, call.late, on_call=False),
        tools=tuple(tools),
    )  # fmt: skip


async def watch_announcement(board: Switchboard, session: Any, poll: float = 0.05) -> None:
    """Settle the reminder of a live reminder call: delivered once the model's first turn
    (the announcement) is recorded; failed if the call ends before that."""
    from tars.store.calls import get_call

    setup = session.setup
    call = await board.db(lambda s: get_call(s, setup.call_id))
    lease = call.reminder_lease or ""
    if call.reminder_id is None or not lease:
        return

    def announced() -> bool:
        return any(speaker == "assistant" for speaker, _ in session.recorder.lines)

    while board.sessions.get(setup.call_sid) is session and not announced():
        await asyncio.sleep(poll)
    if announced():
        if await delivered(board, call.reminder_id, lease, late=call.late):
            await session.recorder.line("system", f"reminder {call.reminder_id} delivered")
        return
    await settle_unannounced(board, call.id)
