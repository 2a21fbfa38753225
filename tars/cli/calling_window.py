"""The calling window as `tars call --dry-run`, `tars calls show` and `tars calls list
--scheduled` state it: which hours apply to a goal call, and whether they are open at a time.

The hours themselves are ``tars.scheduler.window``'s (what the scheduler obeys); this only
says them in words.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tars.project import Project


def window_state(project: Project, playbook: str, number: str, at: dt.datetime) -> dict[str, Any]:
    """The calling window of ``playbook`` calling ``number``, seen at ``at``: its rule, its hours
    in words, whether it is open then and, if not, when it opens (in the owner's timezone)."""
    from tars import timeparse
    from tars.scheduler.window import callee_entry, window_for

    book = project.playbooks.get(playbook)
    setting = book.calling_window if book is not None else "any"
    window = window_for(project, playbook, number)
    opens = window.next_open(at)
    entry = callee_entry(project, number)
    if window.always:
        if setting == "callee":
            whose = "the callee has no opening hours in the directory"
        else:
            whose = "the playbook's calling_window is any"
        hours = f"any time ({whose})"
    else:
        spans = ", ".join(_span(h) for h in window.hours)
        if setting == "callee" and entry is not None:
            owner = f"{entry.name or entry.key}'s hours"
        else:
            owner = "the playbook's calling_window"
        hours = f"{owner}: {spans} ({window.timezone})"
    state: dict[str, Any] = {
        "rule": setting if isinstance(setting, str) else "hours",
        "hours": hours,
        "timezone": window.timezone,
        "open": opens == at,
        "opens_at": None if opens == at else opens.isoformat(),
        "opens": None if opens == at else timeparse.show(opens, project.owner.timezone),
    }
    return state


def in_words(state: Mapping[str, Any], when: str = "now") -> str:
    """``open now (…hours…)`` or ``closed now; opens Thu 03 Dec 2026 09:00 (…hours…)``."""
    if state["open"]:
        return f"open {when} — {state['hours']}"
    return f"closed {when}; opens {state['opens']} — {state['hours']}"


def _span(hours: Mapping[str, Any]) -> str:
    days = hours.get("days") or ["every day"]
    names = "every day" if len(days) == 7 else _days(list(days))
    return f"{names} {hours.get('from', '00:00')}–{hours.get('to', '24:00')}"


def _days(days: list[str]) -> str:
    from tars.weekly_hours import DAYS

    order = [DAYS.index(d) for d in days if d in DAYS]
    if len(order) > 2 and order == list(range(order[0], order[-1] + 1)):
        return f"{DAYS[order[0]]}–{DAYS[order[-1]]}"
    return ", ".join(days)
