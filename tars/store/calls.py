"""Calls and what happened on them: the transcript, every tool the model asked for (allowed
or refused, and why), the outcome and the summary.

The server records with ``start_call``, ``add_line``, ``add_tool_invocation`` and
``update_call``; ``tars calls list/show`` read with ``list_calls`` and ``call_details``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from tars.store.errors import InvalidValue, NotFound, is_row_id
from tars.store.models import (
    CALL_DIRECTIONS,
    CALL_STATUSES,
    OUTCOME_SOURCES,
    Call,
    CallTransfer,
    Contact,
    ToolInvocation,
    TranscriptLine,
    utcnow,
)
from tars.store.transfers import transfer_json, transfers_of

_CALL_FIELDS = {
    "sid", "status", "started_at", "ended_at", "outcome", "outcome_source", "summary",
    "recording_path", "failure_reason", "contact_id", "playbook", "inputs",
    "scheduled_at", "attempt", "retry_of", "follow_up", "reminder_id", "callee", "role", "late",
    "reminder_lease", "step", "run_state", "resume_digits", "requested_by", "report_via", "after_outcome",
    "window_override", "kind", "reply_to", "live_on", "live_until", "sources",
}  # fmt: skip


def start_call(
    session: Session,
    *,
    direction: str,
    from_number: str,
    to_number: str,
    sid: str | None = None,
    contact_id: int | None = None,
    playbook: str | None = None,
    inputs: dict[str, Any] | None = None,
    status: str = "queued",
    started_at: dt.datetime | None = None,
    **columns: Any,
) -> Call:
    """A new call row; ``columns`` sets any of the switchboard's (callee, role, requested_by …)."""
    unknown = set(columns) - _CALL_FIELDS
    if unknown:
        raise TypeError(f"unknown call fields: {', '.join(sorted(unknown))}")
    if direction not in CALL_DIRECTIONS:
        raise InvalidValue(f"{direction!r} is not a call direction", f"use one of {', '.join(CALL_DIRECTIONS)}")
    _check_status(status)
    call = Call(
        sid=sid,
        direction=direction,
        from_number=from_number,
        to_number=to_number,
        contact_id=contact_id,
        playbook=playbook,
        inputs=inputs,
        status=status,
        started_at=started_at,
        **columns,
    )
    session.add(call)
    session.flush()
    return call


def update_call(session: Session, call_id: int, **changes: Any) -> Call:
    """Set any of: sid, status, started_at, ended_at, outcome, outcome_source, summary,
    recording_path, failure_reason, contact_id, playbook, inputs, scheduled_at, attempt,
    retry_of, follow_up, reminder_id."""
    unknown = set(changes) - _CALL_FIELDS
    if unknown:
        raise TypeError(f"unknown call fields: {', '.join(sorted(unknown))}")
    if "status" in changes:
        _check_status(changes["status"])
    source = changes.get("outcome_source")
    if source is not None and source not in OUTCOME_SOURCES:
        raise InvalidValue(f"{source!r} is not an outcome source", f"use one of {', '.join(OUTCOME_SOURCES)}")
    call = get_call(session, call_id)
    for field, value in changes.items():
        setattr(call, field, value)
    call.updated_at = utcnow()
    session.add(call)
    session.flush()
    return call


def add_line(session: Session, call_id: int, speaker: str, text: str, at: dt.datetime | None = None) -> TranscriptLine:
    line = TranscriptLine(call_id=call_id, speaker=speaker, text=text, at=at or utcnow())
    session.add(line)
    session.flush()
    return line


def add_tool_invocation(
    session: Session,
    call_id: int,
    tool: str,
    *,
    arguments: dict[str, Any] | None,
    allowed: bool,
    result: Any = None,
    reason: str | None = None,
    duration_ms: int | None = None,
    at: dt.datetime | None = None,
) -> ToolInvocation:
    invocation = ToolInvocation(
        call_id=call_id,
        tool=tool,
        arguments=arguments,
        result=result,
        allowed=allowed,
        reason=reason,
        duration_ms=duration_ms,
        at=at or utcnow(),
    )
    session.add(invocation)
    session.flush()
    return invocation


def _check_status(status: str) -> None:
    if status not in CALL_STATUSES:
        raise InvalidValue(f"{status!r} is not a call status", f"use one of {', '.join(CALL_STATUSES)}")


# --------------------------------------------------------------------------- reading


def list_calls(session: Session, limit: int = 50, kind: str | None = None) -> list[Call]:
    """The latest calls first (only phone calls, ``voice``, or text sessions, ``text``, if ``kind`` says)."""
    query = select(Call).order_by(col(Call.created_at).desc(), col(Call.id).desc()).limit(limit)
    if kind is not None:
        query = query.where(col(Call.kind) == kind)
    return list(session.exec(query))


def past_calls(session: Session, *, contact_id: int | None, number: str, before: int | None, limit: int) -> list[Call]:
    """The last ``limit`` calls with a contact (or, without one, that number) that have a
    summary, newest first, made before call ``before`` (None: any)."""
    if contact_id is not None:
        who = col(Call.contact_id) == contact_id
    else:
        who = (col(Call.from_number) == number) | (col(Call.to_number) == number)
    query = (
        select(Call)
        .where(who, col(Call.summary).is_not(None), col(Call.summary) != "")
        .order_by(col(Call.id).desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(col(Call.id) < before)
    return list(session.exec(query).all())


def get_call(session: Session, call: int | str) -> Call:
    """A call by its id or its Twilio SID."""
    found: Call | None
    if isinstance(call, int) or (str(call).isascii() and str(call).isdigit()):
        number = int(call)
        found = session.get(Call, number) if is_row_id(number) else None
    else:
        found = session.exec(select(Call).where(Call.sid == call)).first()
    if found is None:
        shown = str(call) if len(str(call)) <= 40 else str(call)[:37] + "..."
        raise NotFound(f"no call {shown!r}", "see them with `tars calls list`")
    return found


@dataclass(frozen=True)
class CallDetails:
    call: Call
    contact: Contact | None
    transcript: list[TranscriptLine]
    tools: list[ToolInvocation]
    transfers: list[CallTransfer] = dataclasses.field(default_factory=list)  # each time the caller was put through


def call_details(session: Session, call: int | str) -> CallDetails:
    found = get_call(session, call)
    contact = session.get(Contact, found.contact_id) if found.contact_id else None
    lines = session.exec(
        select(TranscriptLine)
        .where(TranscriptLine.call_id == found.id)
        .order_by(col(TranscriptLine.at), col(TranscriptLine.id))
    )
    tools = session.exec(
        select(ToolInvocation)
        .where(ToolInvocation.call_id == found.id)
        .order_by(col(ToolInvocation.at), col(ToolInvocation.id))
    )
    return CallDetails(found, contact, list(lines), list(tools), transfers_of(session, found.id))


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def call_json(call: Call, contact_name: str | None = None) -> dict[str, Any]:
    duration = (call.ended_at - call.started_at).total_seconds() if call.started_at and call.ended_at else None
    return {
        "id": call.id,
        "kind": call.kind,
        "sid": call.sid,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "contact_id": call.contact_id,
        "contact": contact_name,
        "callee": call.callee,
        "playbook": call.playbook,
        "inputs": call.inputs,
        "status": call.status,
        "started_at": _iso(call.started_at),
        "ended_at": _iso(call.ended_at),
        "duration_seconds": duration,
        "outcome": call.outcome,
        "outcome_source": call.outcome_source,
        "summary": call.summary,
        "recording_path": call.recording_path,
        "sources": call.sources,
        "failure_reason": call.failure_reason,
        "scheduled_at": _iso(call.scheduled_at),
        "attempt": call.attempt,
        "retry_of": call.retry_of,
        "reminder_id": call.reminder_id,
        "created_at": _iso(call.created_at),
    }


def details_json(details: CallDetails) -> dict[str, Any]:
    data = call_json(details.call, details.contact.name if details.contact else None)
    data["transcript"] = [
        {"at": _iso(line.at), "speaker": line.speaker, "text": line.text} for line in details.transcript
    ]
    data["tools"] = [
        {
            "at": _iso(t.at),
            "tool": t.tool,
            "arguments": t.arguments,
            "allowed": t.allowed,
            "reason": t.reason,
            "result": t.result,
            "duration_ms": t.duration_ms,
        }
        for t in details.tools
    ]
    data["transfers"] = [transfer_json(t) for t in details.transfers]
    return data
