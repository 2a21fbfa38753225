"""What TARS remembers of past calls, searched in the owner's words: ``tars calls search``
and the owner's ``search_calls`` tool share this one path.

A search is words (full text over transcripts, summaries and outcomes:
``tars.store.call_search``) or, with ``semantic``, a meaning (``tars.semantic``: the call
embeddings in the database), narrowed by ``since`` (a time in words, read with
``tars.timeparse`` in the owner's timezone), ``with_`` (a contact or directory name, or a
number, read with the contact resolver) and ``kind``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tars import timeparse
from tars.project import Project
from tars.store.call_search import Filters, Hit, latest_calls, search_calls
from tars.store.calls import call_json
from tars.store.contacts import names_by_id, resolve_in
from tars.store.resolve import choose

if TYPE_CHECKING:
    from sqlmodel import Session


@dataclass(frozen=True)
class Search:
    """One search as asked: the words, and the narrowing in words."""

    query: str
    since: str | None = None
    with_: str | None = None
    kind: str | None = None
    limit: int = 20


@dataclass(frozen=True)
class Found:
    """The hits, the contact names of their calls, and what the narrowing was read as."""

    hits: list[Hit]
    names: dict[int, str]
    since: dt.datetime | None
    who: str | None  # "Helen (contact, +44…)"


def filters_for(session: Session, project: Project, search: Search, now: dt.datetime) -> tuple[Filters, str | None]:
    """The store's filters for ``search``; raises UserError for a time or a name it cannot read."""
    since = timeparse.parse_time(search.since, project.owner.timezone, now) if search.since else None
    contact_id = number = who = None
    if search.with_:
        chosen = choose(resolve_in(session, project, search.with_), accept_best=True)
        contact_id, number, who = chosen.contact_id, chosen.phone, chosen.describe()
    return Filters(since=since, contact_id=contact_id, number=number, kind=search.kind), who


def find(session: Session, project: Project, search: Search, now: dt.datetime) -> Found:
    """Full-text search over the stored calls; without words, the latest calls that pass the
    narrowing ("when did I last speak to Helen?")."""
    filters, who = filters_for(session, project, search, now)
    if not search.query.strip() and (filters.contact_id or filters.number or filters.since):
        hits = latest_calls(session, filters, limit=search.limit)
    else:
        hits = search_calls(session, search.query, filters, limit=search.limit)
    names = names_by_id(session, (h.call.contact_id for h in hits))
    return Found(hits, names, filters.since, who)


def kind_of(call: Any) -> str:
    if call.kind == "text":
        return "text"
    if call.playbook:
        return "goal"
    if call.reminder_id is not None:
        return "reminder"
    return str(call.direction)


def hit_json(hit: Hit, names: dict[int, str]) -> dict[str, Any]:
    match = hit.match
    return {
        "call": call_json(hit.call, names.get(hit.call.contact_id or 0)),
        "kind": kind_of(hit.call),
        "score": round(hit.score, 6),
        "matches": hit.matches,
        "match": {
            "source": match.source,
            "speaker": match.speaker,
            "at": match.at.isoformat() if match.at else None,
            "text": match.text,
        },
    }


def who_of(call: Any, names: dict[int, str]) -> str:
    number = call.to_number if call.direction == "outbound" else call.from_number
    return names.get(call.contact_id or 0) or call.callee or number
