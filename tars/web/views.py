"""What the web view shows, read from the database as plain dicts for the templates and the
live updates: the same rows `tars sessions`, `tars calls` and `tars remind` read, so any
server sharing the database shows every server's calls.

Every text is masked (the project's secrets and the API token never appear), and speakers are
named as `tars calls show` names them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select

from tars import timeparse
from tars.project import Project
from tars.store.call_queue import live_sessions, scheduled_calls
from tars.store.calls import get_call, list_calls
from tars.store.contacts import names_by_id
from tars.store.models import Call, ToolInvocation, TranscriptLine, utcnow
from tars.store.reminders import list_reminders

LIVE_STATUSES = ("ringing", "in-progress")
TARS_SPEAKERS = ("assistant", "tars")
PARTY_SPEAKERS = ("caller", "party")
#: After a call ends, its summary is awaited this long (the after-call work writes it), then
#: the page says there is none (seconds).
SUMMARY_WAIT_SECONDS = 60.0
#: How much of a tool's arguments or result a row shows.
SHOWN_CHARS = 600

Mask = Callable[[str], str]


def _who(call: Call, names: dict[int, str]) -> str:
    name = call.callee or names.get(call.contact_id or 0)
    number = call.to_number if call.direction == "outbound" else call.from_number
    return name or number or "unknown"


def call_title(call: Call, owner: str, names: dict[int, str]) -> str:
    """What people call it, as `tars sessions` does."""
    who = _who(call, names)
    if call.reminder_id is not None:
        return f"Reminder call to {owner}"
    if call.playbook:
        return f"{call.playbook.replace('_', ' ')} call to {who}"
    return f"Call from {who}" if call.direction == "inbound" else f"Call to {who}"


def _outcome(call: Call) -> str:
    if call.failure_reason:
        return call.failure_reason
    if isinstance(call.outcome, dict):
        return ", ".join(f"{k}: {v}" for k, v in call.outcome.items() if v not in (None, ""))
    return ""


def call_row(call: Call, project: Project, names: dict[int, str], mask: Mask) -> dict[str, Any]:
    tz = project.owner.timezone
    return {
        "id": call.id,
        "title": mask(call_title(call, project.owner.name, names)),
        "direction": call.direction,
        "status": call.status,
        "role": call.role or "",
        "playbook": call.playbook or "",
        "step": call.step or "",
        "when": timeparse.show(call.started_at or call.created_at, tz),
        "scheduled": timeparse.show(call.scheduled_at, tz),
        "outcome": mask(_outcome(call)),
        "summary": mask((call.summary or "").strip()),
        "outcome_source": call.outcome_source or "",
        "live": call.status in LIVE_STATUSES,
        "final": call.status not in (*LIVE_STATUSES, "queued"),
    }


def speaker_label(speaker: str, persona: str, party: str) -> str:
    if speaker in TARS_SPEAKERS:
        return persona
    if speaker in PARTY_SPEAKERS:
        return party
    return speaker


def _shown(value: Any, mask: Mask) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = mask(text)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def line_json(line: TranscriptLine, persona: str, party: str, tz: str, mask: Mask) -> dict[str, Any]:
    return {
        "id": line.id,
        "speaker": line.speaker,
        "label": mask(speaker_label(line.speaker, persona, party)),
        "text": mask(line.text),
        "at": timeparse.local(line.at, tz).strftime("%H:%M:%S"),
    }


def tool_json(tool: ToolInvocation, tz: str, mask: Mask) -> dict[str, Any]:
    return {
        "id": tool.id,
        "tool": mask(tool.tool),
        "allowed": tool.allowed,
        "reason": mask(tool.reason or ""),
        "arguments": _shown(tool.arguments, mask),
        "result": _shown(tool.result, mask),
        "at": timeparse.local(tool.at, tz).strftime("%H:%M:%S"),
    }


# --------------------------------------------------------------------------- pages


def dashboard(session: Session, project: Project, mask: Mask, now: dt.datetime) -> dict[str, Any]:
    """The front page: live calls, what is due (scheduled calls, reminders), recent calls."""
    live = live_sessions(session, now)
    waiting = scheduled_calls(session, 50)
    recent = [c for c in list_calls(session, 50) if c.status not in (*LIVE_STATUSES, "queued")]
    reminders = list_reminders(session)
    names = names_by_id(session, (c.contact_id for c in [*live, *waiting, *recent]))
    names.update(names_by_id(session, (r.contact_id for r in reminders)))
    tz = project.owner.timezone
    return {
        "live": [call_row(c, project, names, mask) for c in live],
        "scheduled": [call_row(c, project, names, mask) for c in waiting],
        "recent": [call_row(c, project, names, mask) for c in recent],
        "reminders": [
            {
                "id": r.id,
                "text": mask(r.text),
                "due": timeparse.show(r.due, tz),
                "status": r.status,
                "repeats": bool(r.recurrence),
                "channel": r.channel,
                "for": mask(names.get(r.contact_id or 0, "")),
            }
            for r in reminders
        ],
    }


def live_list(session: Session, project: Project, mask: Mask, now: dt.datetime) -> list[dict[str, Any]]:
    """The live calls for the front page's live updates, each with its latest lines."""
    live = live_sessions(session, now)
    names = names_by_id(session, (c.contact_id for c in live))
    rows = []
    for call in live:
        row = call_row(call, project, names, mask)
        party = _who(call, names)
        latest = session.exec(
            select(TranscriptLine)
            .where(TranscriptLine.call_id == call.id)
            .order_by(col(TranscriptLine.id).desc())
            .limit(3)
        ).all()
        row["lines"] = [
            line_json(line, project.persona.name, party, project.owner.timezone, mask) for line in reversed(latest)
        ]
        rows.append(row)
    return rows


def call_page(session: Session, project: Project, call_id: int, mask: Mask) -> dict[str, Any]:
    """One call: who and why, the transcript so far, the tool log, the outcome and summary."""
    call = get_call(session, call_id)
    names = names_by_id(session, [call.contact_id])
    data = call_row(call, project, names, mask)
    update = call_update(session, project, call_id, 0, 0, mask)
    data.update(
        lines=update["lines"],
        tools=update["tools"],
        cursor=update["cursor"],
        number=call.to_number if call.direction == "outbound" else call.from_number,
        inputs={k: _shown(v, mask) for k, v in (call.inputs or {}).items()},
        writing=call.ended_at is None or utcnow() - call.ended_at < dt.timedelta(seconds=SUMMARY_WAIT_SECONDS),
        recording=bool(call.recording_path),
        ended=timeparse.show(call.ended_at, project.owner.timezone),
        cancellable=call.status == "queued" and call.sid is None and call.scheduled_at is not None,
    )
    return data


def call_update(
    session: Session, project: Project, call_id: int, after_line: int, after_tool: int, mask: Mask
) -> dict[str, Any]:
    """What changed on a call since the lines and tool invocations a watcher has seen."""
    call = get_call(session, call_id)
    names = names_by_id(session, [call.contact_id])
    party, tz = _who(call, names), project.owner.timezone
    lines = session.exec(
        select(TranscriptLine)
        .where(TranscriptLine.call_id == call_id, col(TranscriptLine.id) > after_line)
        .order_by(col(TranscriptLine.id))
        .limit(200)
    ).all()
    tools = session.exec(
        select(ToolInvocation)
        .where(ToolInvocation.call_id == call_id, col(ToolInvocation.id) > after_tool)
        .order_by(col(ToolInvocation.id))
        .limit(200)
    ).all()
    last_line = lines[-1].id if lines else after_line
    last_tool = tools[-1].id if tools else after_tool
    session.commit()
    return {
        "call": call_row(call, project, names, mask),
        "lines": [line_json(line, project.persona.name, party, tz, mask) for line in lines],
        "tools": [tool_json(tool, tz, mask) for tool in tools],
        "cursor": f"{last_line}.{last_tool}",
        "ended_at": call.ended_at,
        "summarised": bool(call.summary) or call.outcome_source is not None,
    }
