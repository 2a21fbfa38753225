"""Memory across calls: what the model is told of the last calls with the person on the line.

Only for roles that declare ``memory`` in tars.yaml, only for a known contact (or, on a goal
call, a known number), and bounded: at most ``memory.calls`` calls in ``memory.max_chars``
characters, the newest first, older ones left out when it runs long.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from tars.project import Project, Role
from tars.store.calls import past_calls


def recollection(project: Project, role: Role, calls: list[Any]) -> str:
    """The instruction paragraph on past calls (``calls`` newest first), or "" for none."""
    if role.memory_calls <= 0 or not calls:
        return ""
    head = "What happened on your last calls with them (newest first; use it if it helps, do not recite it):"
    zone = ZoneInfo(project.owner.timezone)
    text = head
    for call in calls[: role.memory_calls]:
        item = "\n- " + _one(call, zone)
        if len(text) + len(item) > role.memory_chars:
            room = role.memory_chars - len(text) - 1
            if room > 40 and text == head:  # even the newest is long: keep its start
                text += item[:room] + "…"
            break
        text += item
    return "" if text == head else text


def _one(call: Any, zone: ZoneInfo) -> str:
    when: dt.datetime = (call.started_at or call.created_at).astimezone(zone)
    kind = (
        f"goal call ({call.playbook})" if call.playbook else ("they called" if call.direction == "inbound" else "call")
    )
    stamp = when.strftime("%d %b %Y %H:%M")
    line = f"{stamp}, {kind}: {' '.join(str(call.summary).split())}"
    if call.outcome:
        line += f" Outcome: {json.dumps(call.outcome, ensure_ascii=False)}."
    return line


async def recall(
    project: Project, database: Any, role: Role, call_id: int | None, contact_id: int | None, number: str
) -> str:
    """The recollection for a call starting now (``call_id``; None: one whose row is not
    written yet, so every call is before it): "" unless the role remembers and they are known."""
    if role.memory_calls <= 0 or (contact_id is None and not number):
        return ""
    calls = await database.run(
        lambda s: past_calls(s, contact_id=contact_id, number=number, before=call_id, limit=role.memory_calls)
    )
    return recollection(project, role, calls)
