"""Whether a caller may be put through, and to what number: the rules the owner declared in
``roles.<role>.transfer`` (checked by the compiler, ``tars.graph.transfer_checks``), applied
again on the call, where the model asked (the tool gate has already checked the grant).

A refusal is a sentence the model can say to the caller, and it is recorded on the call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tars.caller import OWNER, Caller
from tars.project import Project
from tars.weekly_hours import DAYS, Window


@dataclass(frozen=True)
class Target:
    key: str  # as the role declares it: owner, a directory entry, a number
    name: str  # as the caller hears it
    number: str


def target_of(project: Project, key: str) -> Target | None:
    """The declared target ``key`` as a name and a number; None if it names nothing."""
    if key == "owner":
        return Target(key, project.owner.name, project.owner.phone)
    entry = project.directory.get(key)
    if entry is not None:
        return Target(key, entry.name or key, entry.phone)
    if key.startswith("+") and key[1:].isdigit():
        return Target(key, key, key)
    return None


def refusal(
    project: Project, caller: Caller, relationship: str | None, key: str, now: dt.datetime
) -> tuple[Target | None, str | None]:
    """The target, and None if the caller may be put through to it now; else why not."""
    role = project.roles.get(caller.role)
    rules = role.transfer if role is not None else None
    if rules is None or "transfer_call" not in role.tools:  # type: ignore[union-attr]
        return None, f"the {caller.role} role may not put callers through (no transfer_call in tars.yaml)"
    if caller.role != OWNER and caller.contact_id is None:
        return None, "callers TARS does not know are never put through; offer to take a message instead"
    target = target_of(project, key) if key in rules.to else None
    if target is None:
        names = ", ".join(_spoken(project, t) for t in rules.to)
        return (
            None,
            f"'{key}' is not someone this caller can be put through to (only: {names}); offer to take a message",
        )
    ours = str(project.section("telephony").get("number") or "")
    if target.number in (ours, caller.number):
        return target, f"{target.name}'s number would ring this same call back; offer to take a message instead"
    any_time = (relationship or "").strip().lower() in {r.lower() for r in rules.any_time}
    if rules.hours and not any_time and not Window(rules.hours, project.owner.timezone).is_open(now):
        return target, f"{target.name} takes calls only {hours_in_words(rules.hours)}; offer to take a message"
    return target, None


def _spoken(project: Project, key: str) -> str:
    found = target_of(project, key)
    return found.name if found is not None else key


def hours_in_words(hours: tuple[Mapping[str, Any], ...]) -> str:
    spans = []
    for window in hours:
        days = list(window.get("days") or DAYS)
        named = f"{days[0]}-{days[-1]}" if len(days) > 2 and _consecutive(days) else ", ".join(days)
        spans.append(f"{named} {window.get('from', '00:00')}-{window.get('to', '24:00')}")
    return "; ".join(spans)


def _consecutive(days: list[str]) -> bool:
    at = [DAYS.index(d) for d in days]
    return at == list(range(at[0], at[0] + len(at)))
