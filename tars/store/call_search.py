"""Full-text search over past calls: transcripts, summaries and outcomes, ranked, each call
with the line that matched best.

SQLite uses the FTS5 tables of migration 0011 (``bm25``); PostgreSQL the GIN-indexed
``to_tsvector('english', …)`` expressions of the same migration (``ts_rank``). Both stem
English words ("booked" finds "booking") and need every word of the query (AND).

    hits = search_calls(session, "dentist", Filters(since=..., contact_id=3), limit=20)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from tars.store.errors import InvalidValue
from tars.store.models import Call, TranscriptLine

#: The full-text index of migration 0011, which no model describes: SQLite's FTS5 tables
#: (and their shadow tables: _data, _idx, _docsize, _config), PostgreSQL's GIN indexes.
SEARCH_TABLE_ENDINGS = ("_fts", "_fts_data", "_fts_idx", "_fts_docsize", "_fts_config", "_fts_content")
SEARCH_INDEXES = ("ix_transcript_line_search", "ix_call_search")
#: What ``--kind`` may say, and which calls each means.
KINDS = ("goal", "inbound", "reminder", "outbound", "text")
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 16
#: How many matching rows a query looks at before grouping them by call.
_ROWS = 2000

# The same expressions as the PostgreSQL indexes of migration 0011 (or the planner will
# not use them).
_PG_LINE = "to_tsvector('english', l.text)"
_PG_CALL = "to_tsvector('english', coalesce(c.summary, '') || ' ' || coalesce(c.outcome::text, ''))"


@dataclass(frozen=True)
class Filters:
    """Which calls to look in: since a time, with a contact (or a number), of a kind."""

    since: dt.datetime | None = None
    contact_id: int | None = None
    number: str | None = None
    kind: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise InvalidValue(
                f"{self.kind!r} is not a kind of call",
                f"use one of {', '.join(KINDS)}",
            )


@dataclass(frozen=True)
class Match:
    """Where a call matched: a transcript line (``source`` "transcript", with its speaker and
    time) or the call's ``summary`` or ``outcome``."""

    source: str
    text: str
    speaker: str | None = None
    at: dt.datetime | None = None


@dataclass(frozen=True)
class Hit:
    call: Call
    score: float  # higher is better; comparable within one search only
    match: Match
    matches: int = 1  # how many lines and fields of the call matched
    others: tuple[Match, ...] = field(default=())


def query_words(query: str) -> list[str]:
    """The words of a search, or InvalidValue when there are none (or too many)."""
    words = _WORD.findall(query)
    if not words:
        raise InvalidValue(f"{query.strip()[:40]!r} has no words to search for", "give a word, e.g. 'dentist'")
    if len(words) > MAX_WORDS:
        raise InvalidValue(f"a search has at most {MAX_WORDS} words ({len(words)} given)", "use fewer, rarer words")
    return words


def search_calls(session: Session, query: str, filters: Filters | None = None, *, limit: int = 20) -> list[Hit]:
    """The calls matching every word of ``query``, best first, at most ``limit``."""
    words = query_words(query)
    filters = filters or Filters()
    dialect = session.get_bind().dialect.name
    where, params = filter_sql(filters)
    if dialect == "sqlite":
        phrase = " ".join('"' + w.replace('"', "") + '"' for w in words)
        params["q"] = phrase
        line_sql = (
            "SELECT l.call_id, l.id, -bm25(transcript_line_fts) AS score FROM transcript_line_fts "
            "JOIN transcript_line l ON l.id = transcript_line_fts.rowid JOIN call c ON c.id = l.call_id "
            f"WHERE transcript_line_fts MATCH :q{where} ORDER BY score DESC LIMIT {_ROWS}"
        )
        call_sql = (
            "SELECT c.id, -bm25(call_fts) AS score FROM call_fts JOIN call c ON c.id = call_fts.rowid "
            f"WHERE call_fts MATCH :q{where} ORDER BY score DESC LIMIT {_ROWS}"
        )
    elif dialect == "postgresql":
        params["q"] = " ".join(words)
        line_sql = (
            f"SELECT l.call_id, l.id, ts_rank({_PG_LINE}, q) AS score "
            "FROM transcript_line l JOIN \"call\" c ON c.id = l.call_id, plainto_tsquery('english', :q) q "
            f"WHERE {_PG_LINE} @@ q{where} ORDER BY score DESC LIMIT {_ROWS}"
        )
        call_sql = (
            f"SELECT c.id, ts_rank({_PG_CALL}, q) AS score "
            "FROM \"call\" c, plainto_tsquery('english', :q) q "
            f"WHERE {_PG_CALL} @@ q{where} ORDER BY score DESC LIMIT {_ROWS}"
        )
    else:
        raise InvalidValue(f"search needs SQLite or PostgreSQL, not {dialect}")
    lines = [(int(a), int(b), float(s)) for a, b, s in session.execute(text(line_sql), params)]
    fields = [(int(a), float(s)) for a, s in session.execute(text(call_sql), params)]
    return _hits(session, words, lines, fields, limit)


def latest_calls(session: Session, filters: Filters, *, limit: int = 20) -> list[Hit]:
    """The latest calls that pass ``filters`` (no words: "when did I last speak to Helen?"),
    each shown by its summary."""
    where, params = filter_sql(filters)
    sql = (
        "SELECT c.id FROM \"call\" c WHERE c.status NOT IN ('queued') "
        f"{where} ORDER BY coalesce(c.started_at, c.created_at) DESC, c.id DESC LIMIT {int(limit)}"
    )
    ids = [int(row[0]) for row in session.execute(text(sql), params)]
    found = {c.id: c for c in session.exec(select(Call).where(col(Call.id).in_(ids)))} if ids else {}
    return [Hit(found[i], 0.0, Match("summary", found[i].summary or "")) for i in ids]


def filter_sql(filters: Filters) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if filters.since is not None:
        clauses.append("coalesce(c.started_at, c.created_at) >= :since")
        params["since"] = filters.since.astimezone(dt.UTC)
    who = []
    if filters.contact_id is not None:
        who.append("c.contact_id = :contact_id")
        params["contact_id"] = filters.contact_id
    if filters.number:
        who.append("c.from_number = :number OR c.to_number = :number")
        params["number"] = filters.number
    if who:
        clauses.append("(" + " OR ".join(who) + ")")
    # A text session (SMS, n8n, tars send) is kind "text"; the other kinds are phone calls.
    if filters.kind == "text":
        clauses.append("c.kind = 'text'")
    elif filters.kind is not None:
        clauses.append("c.kind = 'voice'")
    if filters.kind == "goal":
        clauses.append("c.playbook IS NOT NULL")
    elif filters.kind == "reminder":
        clauses.append("c.reminder_id IS NOT NULL")
    elif filters.kind == "inbound":
        clauses.append("c.direction = 'inbound'")
    elif filters.kind == "outbound":
        clauses.append("c.direction = 'outbound' AND c.playbook IS NULL AND c.reminder_id IS NULL")
    return "".join(f" AND {c}" for c in clauses), params


def _hits(
    session: Session,
    words: list[str],
    lines: list[tuple[int, int, float]],
    fields: list[tuple[int, float]],
    limit: int,
) -> list[Hit]:
    # Per call: its best score, and the best transcript line (shown when a line matched:
    # what was said, rather than the summary of it).
    best: dict[int, tuple[float, int | None]] = {}  # call → (score, line id)
    counts: dict[int, int] = {}
    for call_id, line_id, score in lines:  # best first
        counts[call_id] = counts.get(call_id, 0) + 1
        if call_id not in best:
            best[call_id] = (score, line_id)
    for call_id, score in fields:
        counts[call_id] = counts.get(call_id, 0) + 1
        if call_id not in best:
            best[call_id] = (score, None)
        elif score > best[call_id][0]:
            best[call_id] = (score, best[call_id][1])
    # A call matching in several lines ranks above one matching once, equal best lines aside.
    ranked = sorted(best, key=lambda c: (-(best[c][0] + 0.01 * counts[c]), -c))[:limit]
    if not ranked:
        return []
    calls = {c.id: c for c in session.exec(select(Call).where(col(Call.id).in_(ranked)))}
    line_ids = [best[c][1] for c in ranked if best[c][1] is not None]
    found_lines = {
        line.id: line for line in session.exec(select(TranscriptLine).where(col(TranscriptLine.id).in_(line_ids)))
    }
    hits = []
    for call_id in ranked:
        score, line_id = best[call_id]
        call = calls[call_id]
        if line_id is not None:
            line = found_lines[line_id]
            match = Match("transcript", line.text, line.speaker, line.at)
        else:
            match = field_match(call, words)
        hits.append(Hit(call, score, match, counts[call_id]))
    return hits


def field_match(call: Call, words: list[str]) -> Match:
    """The summary or the outcome, whichever holds more of ``words`` (the summary on a tie)."""
    import json

    summary = call.summary or ""
    outcome = json.dumps(call.outcome, ensure_ascii=False) if call.outcome is not None else ""
    if outcome and mentions(outcome, words) > mentions(summary, words):
        return Match("outcome", outcome)
    return Match("summary", summary)


def mentions(said: str, words: list[str]) -> int:
    """How many of ``words`` ``said`` holds, by a word starting with their first five letters
    (a rough stem: "booking" and "booked" both hold "book")."""
    held = [w.casefold() for w in _WORD.findall(said)]
    return sum(any(h.startswith(w.casefold()[:5]) for h in held) for w in words)
