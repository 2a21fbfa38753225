"""Weekly hours in a timezone (``[{days: [mon, …], from: "09:00", to: "17:30"}, …]``): when
they are open, and when they next open. A playbook's calling window and a role's transfer
hours are both such hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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
