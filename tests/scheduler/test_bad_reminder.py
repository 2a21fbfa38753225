"""One broken reminder in the database does not stop the others: the scheduler delivers every
good reminder due with it, once each, and ends the broken one ``failed`` with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from tars.emulators.gemini.emulator import EchoBrain
from tests.scheduler.helpers import add_due, status_becomes
from tests.server.harness import Line, make_project
from tests.waiting import eventually


def corrupt(project, reminder_id: int, column: str, value: str) -> None:  # type: ignore[no-untyped-def]
    """Write a value no `tars remind add` would store (an older version, a hand edit)."""
    from sqlalchemy import text

    from tars.store.database import connect

    with connect(project.database_url) as db, db.session() as session:
        update = text(f"UPDATE reminder SET {column} = :value WHERE id = :id")
        session.execute(update, {"value": value, "id": reminder_id})
        session.commit()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("timezone", "Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not a known timezone"),
        ("recurrence", "FREQ=DAILY;BYDAY=XX", "its repeat 'FREQ=DAILY;BYDAY=XX' cannot be followed"),
    ],
)
async def test_a_broken_reminder_fails_and_the_others_due_with_it_go_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: str, value: str, reason: str
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    first = add_due(project, "water the plants", via="sms", every="daily")
    broken = add_due(project, "broken one", via="sms", every="daily")
    last = add_due(project, "call Helen", via="sms")
    corrupt(project, broken, column, value)
    async with Line(project, EchoBrain) as line:
        failed = await status_becomes(project, broken, "failed")
        await status_becomes(project, last, "delivered")
        await eventually(lambda: len(line.twilio.messages) >= 2, what="both good reminders texted")
        moved = await status_becomes(project, first, "pending")
        bodies = sorted(m.body for m in line.twilio.messages if m.body != "Reminder: broken one")
    assert bodies == ["Reminder: call Helen", "Reminder: water the plants"]  # each once
    assert moved.delivered_at is not None and moved.attempts == 0
    assert reason in (failed.last_error or ""), failed.last_error
