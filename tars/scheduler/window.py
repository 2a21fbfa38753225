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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tars.project import DirectoryEntry, Project

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    """Weekly hours in a timezone; empty ``hours``: always open."""

    hours: tuple[Mapping[str, Any], ...]
    timezone: str

    @property
    def always(self) -> bool:
        return not self.hours

    def next_open(self, at: dt.datetime) -> dt.datetime:
        """``at`` if the window is open then, else when it next opens (within a fortnight)."""
        if self.always:
            return at
        from tars.timeparse import local, localize

        start_day = local(at, self.timezone).date()
        best: dt.datetime | None = None
        for offset in range(15):
            day = start_day + dt.timedelta(days=offset)
            for opens, closes in self._spans(day):
                begin, end = localize(opens, self.timezone), localize(closes, self.timezone)
                if end <= at:
                    continue
                candidate = max(at, begin)
                if best is None or candidate < best:
                    best = candidate
            if best is not None:
                return best
        return at

    def is_open(self, at: dt.datetime) -> bool:
        return self.next_open(at) == at

    def _spans(self, day: dt.date) -> Iterable[tuple[dt.datetime, dt.datetime]]:
        name = DAYS[day.weekday()]
        for window in self.hours:
            if name not in (window.get("days") or DAYS):
                continue
            opens = _clock(day, str(window.get("from", "00:00")))
            closes = _clock(day, str(window.get("to", "24:00")))
            if closes > opens:
                yield opens, closes


def _clock(day: dt.date, text: str) -> dt.datetime:
    hours, _, minutes = text.partition(":")
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(hours=int(hours), minutes=int(minutes or 0))


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
