"""Reminders by phone: TARS rings the owner, the persona announces it, the owner answers back.

The emulated model reads the reminder's id and words from the opening TARS gives it, says
the reminder, and on "snooze …" / "done" calls the tools as the real model would.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tars.emulators.twilio.emulator import Party
from tars.timeparse import local
from tests.scheduler.helpers import add_due, now, reminder, status_becomes
from tests.server.harness import Line, make_project


class Announcer:
    """The model on a reminder call."""

    def __init__(self) -> None:
        self.reminder_id = 0
        self.results: list[tuple[str, dict[str, Any]]] = []

    async def on_start(self, session: Any) -> list[Any]:
        opening = next(h["text"] for h in session.history if "[Reminder" in h["text"])
        self.reminder_id = int(re.search(r"\[Reminder (\d+)\]", opening).group(1))  # type: ignore[union-attr]
        words = re.search(r'remind them: "(.*?)"', opening).group(1)  # type: ignore[union-attr]
        return [Say(f"Good afternoon, sir. A reminder: {words}.")]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "snooze" in text:
            return [CallTool("snooze_reminder", {"id": self.reminder_id, "until": "10 minutes"})]
        if "done" in text:
            return [CallTool("complete_reminder", {"id": self.reminder_id})]
        return []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        self.results.append((name, response))
        if name in ("snooze_reminder", "complete_reminder"):
            return [Say("Very good, sir. Goodbye."), CallTool("end_call", {"reason": "reminder dealt with"})]
        return []


def details(line: Line, call_id: int) -> Any:
    from tars.store.calls import call_details

    with line.db() as db, db.session() as s:
        return call_details(s, call_id)


async def test_a_reminder_call_announces_it_and_snooze_moves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = Announcer()
    async with Line(project, lambda: brain, speech_body_ms=300) as line:
        rid = add_due(project, "call Helen", via="call")
        call = await line.twilio.next_call(timeout=10)
        assert call.to == project.owner.phone and call.from_ == line.number
        assert call.params.get("MachineDetection") == "Enable"
        heard = await call.wait_for_agent_utterance(timeout=20)  # through the media stream
        assert heard.text == "Good afternoon, sir. A reminder: call Helen."
        done = await status_becomes(project, rid, "delivered")
        asked = now()
        await call.say("snooze ten minutes")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        session = line.gemini.sessions[0]
        assert line.twilio.messages == []

    assert done.delivered_at is not None and done.attempts == 1
    snoozed = reminder(project, rid)
    assert snoozed.status == "pending" and snoozed.attempts == 0
    assert asked + dt.timedelta(minutes=9) < snoozed.due < now() + dt.timedelta(minutes=10, seconds=1)
    assert brain.results[0][0] == "snooze_reminder" and brain.results[0][1]["snoozed"]["id"] == rid
    assert session.tool_names == list(project.roles["owner"].tools)
    assert "to give them a reminder" in session.system_instruction
    with line.db() as db, db.session() as s:
        from sqlmodel import select

        from tars.store.models import Call

        [row] = s.exec(select(Call)).all()
    record = details(line, row.id)
    assert record.call.reminder_id == rid and record.call.status == "completed" and record.call.sid == call.sid
    said = [(t.speaker, t.text) for t in record.transcript]
    assert ("assistant", "Good afternoon, sir. A reminder: call Helen.") in said
    assert ("system", f"reminder {rid} delivered") in said
    assert ("caller", "snooze ten minutes") in said
    assert [(t.tool, t.allowed) for t in record.tools] == [("snooze_reminder", True), ("end_call", True)]
    assert "snooze ten minutes" in record.call.summary  # every call ends with a summary


async def test_done_on_the_call_acknowledges_it_without_skipping_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = Announcer()
    async with Line(project, lambda: brain, speech_body_ms=300) as line:
        rid = add_due(project, "take the pills", via="call", every="daily")
        first_due = reminder(project, rid).due
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        moved = await status_becomes(project, rid, "pending")  # delivered: on to tomorrow
        await call.say("done, thank you")
        await call.wait_ended(timeout=30)
        await line.settle()
    after = reminder(project, rid)
    assert brain.results[0][0] == "complete_reminder" and "error" not in brain.results[0][1]
    tz = project.owner.timezone
    assert local(moved.due, tz).date() - local(first_due, tz).date() == dt.timedelta(days=1)
    assert after.status == "pending" and after.due == moved.due  # "done" meant today's; tomorrow's stays


@pytest.mark.parametrize("answer", ["no-answer", "busy", "voicemail"])
async def test_an_unanswered_reminder_call_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = Announcer()
    async with Line(project, lambda: brain, speech_body_ms=300) as line:
        assert line.server is not None
        line.server.server.scheduler.backoff_seconds = 0.5
        line.twilio.set_party(project.owner.phone, Party(answer=answer))
        rid = add_due(project, "call Helen", via="call")
        first = await line.twilio.next_call(timeout=10)
        await first.wait_ended(timeout=10)
        waiting = await status_becomes(project, rid, "pending")
        line.twilio.set_party(project.owner.phone, Party())  # the owner picks up next time
        second = await line.twilio.next_call(timeout=10)
        heard = await second.wait_for_agent_utterance(timeout=20)
        done = await status_becomes(project, rid, "delivered")
        await second.hang_up()
        await line.settle()
    reason = {"no-answer": "nobody answered the reminder call", "busy": "the owner's line was busy",
              "voicemail": "the reminder call reached voicemail"}[answer]  # fmt: skip
    assert waiting.last_error == reason and waiting.retry_at is not None and waiting.attempts == 1
    assert heard.text.endswith("call Helen.") and done.attempts == 2 and done.last_error is None
    assert first.heard == []  # a machine was not left a message
