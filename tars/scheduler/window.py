"""Calling windows: when a goal call may be placed.

A playbook's ``calling_window`` is ``any`` (whenever), ``callee`` (the opening hours of the
directory entry being called, in its timezone) or explicit hours, in the callee's timezone
when the directory knows it, else the owner's::

    calling_window:
      - {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:30"}

``next_open(project, playbook, number, at)`` is ``at`` itself when the window is open then,
else the moment it next opens. A callee with no hours (or a window that never opens) does
not hold a call back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from tars.project import DirectoryEntry, Project
from tars.weekly_hours import Window


def callee_entry(project: Project, number: str) -> DirectoryEntry | None:
    return next((entry for entry in project.directory.values() if entry.phone == number), None)


def window_for(project: Project, playbook: str, number: str) -> Window:
    """The calling window of ``playbook`` when calling ``number``."""
    book = project.playbooks.get(playbook)
    setting: Any = book.calling_window if book is not None else "any"
    entry = callee_entry(project, number)
    timezone = (entry.timezone if entry is not None else None) or project.owner.timezone
    if setting == "callee":
        return Window(tuple(entry.hours) if entry is not None else (), timezone)
    if isinstance(setting, Sequence) and not isinstance(setting, str):
        return Window(tuple(setting), timezone)
    return Window((), timezone)


def next_open(project: Project, playbook: str, number: str, at: dt.datetime) -> dt.datetime:
    """When a call of ``playbook`` to ``number`` may be placed, at ``at`` or later."""
    return window_for(project, playbook, number).next_open(at)
