"""Twilio's call statuses, mapped to ours and written to the Call row."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

from tars.store.call_queue import FINAL

#: Tries 0.1 s apart: how long a status callback waits for its call's SID to be stored.
STATUS_WAIT_TRIES = 30
# Twilio's statuses → ours (a cancelled call never connected: like no answer).
STATUS_MAP = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "ringing",
    "in-progress": "in-progress",
    "answered": "in-progress",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "no-answer",
}


def ours(twilio_status: str) -> str | None:
    return STATUS_MAP.get(twilio_status)


def is_final(twilio_status: str) -> bool:
    return STATUS_MAP.get(twilio_status) in FINAL


async def update_status(database: Any, params: Mapping[str, str]) -> None:
    """A status callback's news on the call it names (by SID); a late "ringing" never undoes
    an end, and a reason already recorded (failed, voicemail) is kept."""
    from tars.store.models import Call

    status = STATUS_MAP.get(params.get("CallStatus", ""))
    call_sid = params.get("CallSid", "")
    if status is None or not call_sid:
        return
    answered_by = params.get("AnsweredBy", "")
    if status == "completed" and answered_by.startswith("machine"):
        status = "voicemail"

    def work(session: Any) -> bool:
        from sqlalchemy import update
        from sqlmodel import select

        for _ in range(5):
            call = session.exec(select(Call).where(Call.sid == call_sid)).first()
            if call is None:
                return False
            if call.status in FINAL and status not in FINAL:
                return True  # a late "ringing" never undoes an end
            if call.status in ("failed", "voicemail") and status == "completed":
                return True  # keep the reason we recorded, or that a machine answered
            now = dt.datetime.now(dt.UTC)
            values: dict[str, Any] = {"status": status, "updated_at": now}
            if status in FINAL:
                values.update(live_on=None, live_until=None)
                if call.ended_at is None:
                    values["ended_at"] = now
            # Only if nobody changed the status since we read it (the call's own session may
            # be writing "failed" right now); otherwise read again and decide again.
            done = session.exec(update(Call).where(Call.id == call.id, Call.status == call.status).values(**values))
            if done.rowcount:
                return True
            session.expire_all()
        return True

    for _ in range(STATUS_WAIT_TRIES):  # a callback can overtake the REST answer that tells us the SID
        if await database.run(work):
            return
        await asyncio.sleep(0.1)
