"""Reminder calls: TARS rings the owner and the persona announces a reminder.

    place_reminder_call ─ Call row (reminder_id, the claim's lease) → Twilio calls.create
                          (url /twilio/reminder?call_id=N, AMD, status callbacks)
    POST /twilio/reminder          answered: a person → <Connect><Stream> (purpose "reminder");
                                   a machine → hang up (that attempt failed: retried later)
    POST /twilio/reminder/status   call status → the Call row; an ended, unannounced call
                                   fails the attempt at once (busy, no answer, voicemail …)
    reminder_setup      ─ a CallSession for the owner role, whose opening tells the model to
                          announce the reminder; the owner may say "done" or "snooze …"
                          (complete_reminder / snooze_reminder)
    watch_announcement  ─ **delivered** when the model has finished its first turn on the
                          answered call (its transcript line is recorded): the opening makes
                          that turn the announcement. A call that ends before it, however it
                          ends, fails the attempt, which is retried with backoff.

The reminder's lease travels with the call (``Call.inputs["_reminder_lease"]``), so whichever
server Twilio's webhooks reach settles the right claim, and a claim that was lost meanwhile
(the owner snoozed it, another server took it over) is left alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response

from tars.calls import instructions
from tars.calls.caller import OWNER, Caller
from tars.calls.session import CallSetup
from tars.delivery import DeliveryError
from tars.server.signatures import public_url, valid_twilio_signature

if TYPE_CHECKING:
    from tars.server.app import Server

log = logging.getLogger("tars.reminders")

#: A claim on a reminder being called about lasts this long (ringing, then the announcement) …
RINGING_LEASE = dt.timedelta(minutes=3)
#: … and once answered, for the whole call up to server.max_call_minutes (at least this long).
TALKING_LEASE = dt.timedelta(minutes=10)
ALREADY_DEALT_WITH = "This was a reminder from TARS, but it has already been dealt with. Goodbye."


async def place_reminder_call(server: Server, reminder: Any, lease: str, *, late: bool) -> Any:
    """Ring the owner about ``reminder`` (claimed under ``lease``). Raises DeliveryError if
    Twilio will not place the call; the attempt is then failed by the caller."""
    from tars.store.call_queue import start_reminder_call
    from tars.store.calls import update_call
    from tars.store.reminders import extend_lease

    project = server.project
    owner = project.owner.phone
    number = str(project.section("telephony").get("number") or "")
    now = _now(server)
    await server.db(lambda s: extend_lease(s, reminder.id, lease, now + RINGING_LEASE))
    call = await server.db(
        lambda s: start_reminder_call(s, reminder_id=reminder.id, from_number=number, to_number=owner, lease=lease)
    )
    if late:
        await server.db(lambda s: update_call(s, call.id, inputs={**(call.inputs or {}), "_late": True}))
    query = urlencode({"call_id": call.id})
    client = server.endpoints.twilio_client()

    def dial() -> Any:
        return client.calls.create(
            to=owner, from_=number,
            url=public_url(server.public_base, "/twilio/reminder", query), method="POST",
            status_callback=public_url(server.public_base, "/twilio/reminder/status", query),
            status_callback_method="POST", status_callback_event=["initiated", "ringing", "answered", "completed"],
            machine_detection="Enable", timeout=30,
        )  # fmt: skip

    from twilio.base.exceptions import TwilioException

    try:
        created = await asyncio.to_thread(dial)
    except (TwilioException, OSError) as exc:
        reason = (
            f"Twilio refused the reminder call: {exc}"
            if isinstance(exc, TwilioException)
            else (f"could not reach Twilio for the reminder call: {exc}")
        )
        await server.db(
            lambda s: update_call(s, call.id, status="failed", failure_reason=reason, ended_at=dt.datetime.now(dt.UTC))
        )
        raise DeliveryError(reason) from exc
    await server.db(lambda s: _record_sid(s, call.id, created.sid))
    log.info("reminder %s: calling the owner (call %s)", reminder.id, call.id)
    return call


def _record_sid(session: Any, call_id: int, sid: str) -> None:
    """Store the SID unless a webhook that raced the REST answer already did."""
    from sqlalchemy import update
    from sqlmodel import col

    from tars.store.models import Call

    session.execute(
        update(Call).where(col(Call.id) == call_id, col(Call.sid).is_(None)).values(sid=sid)
        .execution_options(synchronize_session=False)
    )  # fmt: skip


def _now(server: Server) -> dt.datetime:
    from tars.scheduler.reminders import clock

    return clock(server)


# ------------------------------------------------------------------------------ webhooks


def register(app: FastAPI, server: Server) -> None:
    """Add the reminder-call webhooks to the server's app."""

    async def signed(request: Request) -> tuple[dict[str, str], int] | None:
        body = (await request.body()).decode("utf-8", "replace")
        params = dict(parse_qsl(body, keep_blank_values=True))
        url = public_url(server.public_base, request.url.path, request.url.query)
        if not valid_twilio_signature(
            server.endpoints.twilio_auth_token, url, params, request.headers.get("X-Twilio-Signature")
        ):
            log.warning("refused a webhook to %s with a missing or invalid Twilio signature", request.url.path)
            return None
        try:
            call_id = int(dict(parse_qsl(request.url.query)).get("call_id", ""))
        except ValueError:
            return None
        if params.get("CallSid"):
            await server.db(lambda s: _record_sid(s, call_id, params["CallSid"]))
        return params, call_id

    @app.post("/twilio/reminder")
    async def answered(request: Request) -> Response:
        found = await signed(request)
        if found is None:
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        params, call_id = found
        return Response(await answer(server, params, call_id), media_type="application/xml")

    @app.post("/twilio/reminder/status")
    async def status(request: Request) -> Response:
        found = await signed(request)
        if found is None:
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        params, call_id = found
        from tars.server.app import STATUS_MAP, update_status

        await update_status(server, params)
        if STATUS_MAP.get(params.get("CallStatus", "")) in ("completed", "busy", "no-answer", "failed"):
            await settle_unannounced(server, call_id)
        return Response(status_code=204)


def _document(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


async def answer(server: Server, params: Mapping[str, str], call_id: int) -> str:
    """TwiML for an answered reminder call."""
    from xml.sax.saxutils import escape

    from tars.server.app import BUSY_MESSAGE, stream_twiml
    from tars.store.calls import get_call, update_call
    from tars.store.reminders import extend_lease, get_reminder

    project = server.project
    call_sid = params.get("CallSid", "")
    call = await server.db(lambda s: get_call(s, call_id))
    lease = str((call.inputs or {}).get("_reminder_lease", ""))
    reminder = await server.db(lambda s: get_reminder(s, int(call.reminder_id or 0)))
    answered_by = params.get("AnsweredBy", "human")
    if answered_by.startswith("machine") or answered_by == "fax":
        await server.db(lambda s: update_call(s, call_id, status="voicemail"))
        await _fail(server, reminder.id, lease, "the reminder call reached voicemail")
        return _document("<Hangup/>")
    if reminder.status != "delivering" or reminder.lease_owner != lease:
        log.info("reminder call %s: reminder %s was dealt with meanwhile", call_id, reminder.id)
        return _document(f"<Say>{escape(ALREADY_DEALT_WITH)}</Say>", "<Hangup/>")
    if server.busy(call_sid):
        await _fail(server, reminder.id, lease, "TARS was at its call limit when the owner answered")
        return _document(f"<Say>{escape(BUSY_MESSAGE)}</Say>", "<Hangup/>")
    server.reserved[call_sid] = asyncio.get_running_loop().time()
    minutes = float(project.section("server").get("max_call_minutes", 30))
    talking = max(TALKING_LEASE, dt.timedelta(minutes=minutes + 1))
    now = _now(server)
    await server.db(lambda s: extend_lease(s, reminder.id, lease, now + talking))
    owner = Caller(project.owner.phone, OWNER, project.owner.name)
    return _document(stream_twiml(server, owner, call_sid, call_id, "reminder"))


async def _fail(server: Server, reminder_id: int, lease: str, reason: str) -> None:
    from tars.scheduler.reminders import failed

    if lease:
        await failed(server, reminder_id, lease, reason)


async def settle_unannounced(server: Server, call_id: int) -> None:
    """The call has ended: if its reminder is still held under the call's lease, the
    announcement never happened, and this attempt failed."""
    from tars.scheduler.reminders import unannounced_reason
    from tars.store.calls import get_call
    from tars.store.reminders import get_reminder

    call = await server.db(lambda s: get_call(s, call_id))
    lease = str((call.inputs or {}).get("_reminder_lease", ""))
    if call.reminder_id is None or not lease or call.sid in server.sessions:
        return  # still talking: the session settles it when it ends
    reminder = await server.db(lambda s: get_reminder(s, int(call.reminder_id)))
    if reminder.status == "delivering" and reminder.lease_owner == lease:
        await _fail(server, reminder.id, lease, unannounced_reason(call.status, call.failure_reason))


# ------------------------------------------------------------------------------ the call itself


async def reminder_setup(server: Server, body: Mapping[str, str], call_sid: str, stream_sid: str) -> CallSetup:
    """The owner on the line; the model is told to announce the reminder first."""
    from tars.scheduler.reminders import announcement
    from tars.store.calls import get_call
    from tars.store.reminders import get_reminder

    project = server.project
    call = await server.db(lambda s: get_call(s, int(body["call_id"])))
    reminder = await server.db(lambda s: get_reminder(s, int(call.reminder_id or 0)))
    late = bool((call.inputs or {}).get("_late"))
    owner = project.owner
    caller = Caller(owner.phone, OWNER, owner.name)
    role = project.roles[OWNER]
    tools = [t for t in role.tools if t in project.tools]
    now = instructions.local_now(project)
    system = instructions.inbound_instruction(project, OWNER, owner.name, owner.phone, now, tools)
    system += f"\nYou placed this call to {owner.name} to give them a reminder; they did not call you."
    return CallSetup(
        call_id=call.id, call_sid=call_sid, stream_sid=stream_sid, caller=caller, purpose="reminder",
        system_instruction=system, opening=announcement(project, reminder, late, on_call=False), tools=tuple(tools),
    )  # fmt: skip


async def watch_announcement(server: Server, session: Any, poll: float = 0.05) -> None:
    """Settle the reminder of a live reminder call: delivered once the model's first turn
    (the announcement) is recorded; failed if the call ends before that."""
    from tars.scheduler.reminders import delivered
    from tars.store.calls import get_call

    setup = session.setup
    call = await server.db(lambda s: get_call(s, setup.call_id))
    lease = str((call.inputs or {}).get("_reminder_lease", ""))
    late = bool((call.inputs or {}).get("_late"))
    if call.reminder_id is None or not lease:
        return

    def announced() -> bool:
        return any(speaker == "assistant" for speaker, _ in session.recorder.lines)

    while server.sessions.get(setup.call_sid) is session and not announced():
        await asyncio.sleep(poll)
    if announced():
        if await delivered(server, call.reminder_id, lease, late=late):
            await session.recorder.line("system", f"reminder {call.reminder_id} delivered")
        return
    await settle_unannounced(server, call.id)
