"""Contacts' birthdays as yearly reminders for the owner (``birthdays:`` in tars.yaml).

Each contact with a birthday has one repeating reminder (``kind`` "birthday", ``contact_id``
the contact): ``days_before`` the day at ``at`` in the owner's timezone, on ``via``. ``sync``
makes the reminders match the contacts and the settings; it runs whenever contacts change
(``tars contacts add/edit/rm/import``) and when ``tars serve``
starts (so a changed ``days_before`` applies). A reminder the owner cancelled stays
cancelled until the birthday (or the settings) change; a birthday on 29 February is
remembered on the 28th in other years (an RRULE for the 29th fires only in leap years).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tars import timeparse
from tars.project import Project
from tars.store.contacts import list_contacts
from tars.store.models import Reminder
from tars.store.reminders import OPEN, add_reminder, cancel
from tars.store.wakeups import notify

if TYPE_CHECKING:
    from sqlmodel import Session

KIND = "birthday"
_DATE = re.compile(r"^(?:\d{4}|-)-(\d{2})-(\d{2})$")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    remind: bool = True
    days_before: int = 1
    at: str = "09:00"
    via: str = "default"

    @classmethod
    def of(cls, project: Project) -> Settings:
        section = project.section("birthdays")
        return cls(
            remind=bool(section.get("remind", True)),
            days_before=int(section.get("days_before", 1) or 0),  # type: ignore[arg-type]
            at=str(section.get("at") or "09:00"),
            via=str(section.get("via") or "default"),
        )


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


def month_day(birthday: str) -> tuple[int, int] | None:
    """(month, day) of "1990-04-15" or "--04-15"; None for anything else."""
    found = _DATE.match(birthday or "")
    return (int(found[1]), int(found[2])) if found else None


def rule_for(month: int, day: int, settings: Settings) -> str:
    """The RRULE of the reminder: ``days_before`` the birthday, every year."""
    if (month, day) == (2, 29):
        day = 28
    on = dt.date(2001, month, day) - dt.timedelta(days=settings.days_before)  # 2001: not a leap year
    hour, minute = (int(p) for p in settings.at.split(":"))
    return f"FREQ=YEARLY;BYMONTH={on.month};BYMONTHDAY={on.day};BYHOUR={hour};BYMINUTE={minute};BYSECOND=0"


def text_for(name: str, month: int, day: int, settings: Settings) -> str:
    when = {0: "today", 1: "tomorrow"}.get(settings.days_before, f"in {settings.days_before} days")
    return f"{name}'s birthday is {when} ({day} {_MONTHS[month - 1]})"


def sync(session: Session, project: Project, now: dt.datetime) -> Changes:
    """Make the birthday reminders match the contacts and ``birthdays:``; what changed."""
    from sqlmodel import col, select

    settings = Settings.of(project)
    tz = project.owner.timezone
    changes = Changes()
    kept = list(session.exec(select(Reminder).where(Reminder.kind == KIND).order_by(col(Reminder.id))))
    by_contact: dict[int, Reminder] = {}
    for reminder in kept:
        if reminder.contact_id is None:  # the contact was removed
            _withdraw(session, reminder, now, changes)
            continue
        # An open one wins over one cancelled before.
        if reminder.contact_id not in by_contact or reminder.status in OPEN:
            by_contact[reminder.contact_id] = reminder
    for contact in list_contacts(session):
        reminder = by_contact.pop(contact.id or 0, None)
        date = month_day(contact.birthday or "") if settings.remind and contact.role != "blocked" else None
        if date is None:
            if reminder is not None:
                _withdraw(session, reminder, now, changes)
            continue
        rule, text = rule_for(*date, settings), text_for(contact.name, *date, settings)
        if reminder is None:
            made = add_reminder(
                session, text=text, due=now + dt.timedelta(seconds=1), timezone=tz, now=now,
                recurrence=rule, channel=settings.via, contact_id=contact.id,
            )  # fmt: skip
            made.kind = KIND
            session.add(made)
            changes.added.append(text)
            continue
        same = (reminder.recurrence, reminder.text, reminder.channel, reminder.timezone) == (
            rule,
            text,
            settings.via,
            tz,
        )
        withdrawn = reminder.status == "cancelled" and reminder.last_error == WITHDRAWN
        if (same and not withdrawn) or reminder.status == "delivering":  # as wanted, or being delivered now
            continue
        _move(reminder, rule, text, settings.via, tz, now)
        session.add(reminder)
        changes.moved.append(text)
    for reminder in by_contact.values():  # contacts gone since (their ids are not reused)
        _withdraw(session, reminder, now, changes)
    session.flush()
    if changes.added or changes.moved:
        notify(session)
    return changes


#: Why TARS cancelled a birthday reminder itself (not the owner): it comes back with the birthday.
WITHDRAWN = "withdrawn: the contact has no birthday now"


def _withdraw(session: Session, reminder: Reminder, now: dt.datetime, changes: Changes) -> None:
    if reminder.status in OPEN and reminder.status != "delivering":
        cancel(session, _id(reminder), now)
        reminder.last_error = WITHDRAWN
        session.add(reminder)
        changes.cancelled.append(reminder.text)


def _move(reminder: Reminder, rule: str, text: str, via: str, tz: str, now: dt.datetime) -> None:
    first = timeparse.first_occurrence(rule, now + dt.timedelta(seconds=1), tz)
    assert first is not None  # a yearly rule on a real day always fires again
    reminder.text, reminder.channel, reminder.timezone = text, via, tz
    reminder.recurrence, reminder.series_start, reminder.due = rule, first, first
    reminder.status, reminder.attempts, reminder.retry_at, reminder.last_error = "pending", 0, None, None
    reminder.updated_at = now


def _id(reminder: Reminder) -> int:
    assert reminder.id is not None
    return reminder.id


def changes_json(changes: Changes) -> dict[str, Any]:
    return {"added": changes.added, "moved": changes.moved, "cancelled": changes.cancelled}
