"""The persona history: what was changed, by whom, from which call, and whether it was applied."""

from __future__ import annotations

from sqlmodel import Session, col, select

from tars.store.models import PersonaChange


def record_change(session: Session, change: PersonaChange) -> PersonaChange:
    session.add(change)
    session.flush()
    session.refresh(change)
    session.expunge(change)
    return change


def set_commit(session: Session, change_id: int, commit: str) -> None:
    row = session.get(PersonaChange, change_id)
    if row is not None:
        row.commit = commit


def history(session: Session, *, persona: str | None = None, limit: int = 50) -> list[PersonaChange]:
    """The latest changes first."""
    query = select(PersonaChange).order_by(col(PersonaChange.id).desc()).limit(limit)
    if persona:
        query = query.where(PersonaChange.persona == persona)
    rows = list(session.exec(query))
    for row in rows:
        session.expunge(row)
    return rows
