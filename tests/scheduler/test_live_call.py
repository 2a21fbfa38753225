"""The owner is on the phone with TARS when a reminder falls due: a call reminder is said in that
call, a text or webhook reminder goes out on its own channel unless `said_in_owner_call` names it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import EchoBrain, Say
from tests.scheduler.helpers import add_due, status_becomes
from tests.server.harness import Line, make_project
from tests.waiting import eventually


class Chat:
    """The model on the owner's call: greets, and passes on what the system tells it."""

    def __init__(self) -> None:
        self.told: list[str] = []

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Good afternoon, sir.")]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        found = re.match(r'\[Reminder (\d+)\] .*?: "(.*?)"', text)
        if found:
            self.told.append(text)
            return [Say(f"Pardon the interruption, sir: a reminder to {found.group(2)}.")]
        if text.startswith("[Notice]"):
            self.told.append(text)
            return [Say(text.split(": ", 1)[1])]
        return [Say("Of course.")]

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        return []


async def test_a_reminder_due_during_an_owner_call_is_said_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = Chat()
    async with Line(project, lambda: brain, speech_body_ms=300) as line:
        call = await line.call_in(from_=project.owner.phone)
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Good afternoon, sir."
        by_call = add_due(project, "call Helen", via="call")
        heard = [(await call.wait_for_agent_utterance(timeout=20)).text]
        first = await status_becomes(project, by_call, "delivered")
        by_sms = add_due(project, "buy milk", via="sms")  # not said: it goes by text (the default)
        second = await status_becomes(project, by_sms, "delivered")
        assert line.server is not None
        await line.server.server.outbox.notify_owner("Incoming call from +447700900555", kind="unknown_callers")
        await call.hang_up()
        await line.settle()
        calls, messages = list(line.twilio.calls.values()), list(line.twilio.messages)
    assert heard == ["Pardon the interruption, sir: a reminder to call Helen."]
    assert [c.sid for c in calls] == [call.sid]  # no call to the owner
    assert [m.body for m in messages] == ["Reminder: buy milk", "Incoming call from +447700900555"]
    assert first.attempts == 1 and second.attempts == 1
    with line.db() as db, db.session() as s:
        from tars.store.calls import call_details

        said = [(t.speaker, t.text) for t in call_details(s, call.sid).transcript]
    assert any(who == "system" and text.startswith(f"[Reminder {by_call}]") for who, text in said)
    assert ("assistant", "Pardon the interruption, sir: a reminder to call Helen.") in said


async def test_text_reminders_are_said_in_the_call_when_the_owner_asks_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edits = [("tars.yaml", "  retries: 3\n", "  retries: 3\n  said_in_owner_call: [call, sms]\n")]
    project = make_project(tmp_path / "p", monkeypatch, edits)
    brain = Chat()
    async with Line(project, lambda: brain, speech_body_ms=300) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        by_sms = add_due(project, "buy milk", via="sms")
        heard = (await call.wait_for_agent_utterance(timeout=20)).text
        await status_becomes(project, by_sms, "delivered")
        await call.hang_up()
        await line.settle()
        messages = list(line.twilio.messages)
    assert heard == "Pardon the interruption, sir: a reminder to buy milk."
    assert messages == []


async def test_a_call_channel_notice_is_said_in_the_owners_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edits = [("tars.yaml", "  unknown_callers: sms\n", "  unknown_callers: call\n")]
    project = make_project(tmp_path / "p", monkeypatch, edits)
    brain = Chat()
    async with Line(project, lambda: brain, speech_body_ms=300) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        assert line.server is not None
        status = await line.server.server.outbox.notify_owner(
            "Incoming call from +447700900555", kind="unknown_callers"
        )
        heard = await call.wait_for_agent_utterance(timeout=20)
        await call.hang_up()
        await line.settle()
        calls = list(line.twilio.calls)
    assert status == "delivered" and heard.text == "Incoming call from +447700900555"
    assert calls == [call.sid]


async def test_reminders_due_together_are_said_one_after_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = Chat()
    async with Line(project, lambda: brain, speech_body_ms=300) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        ids = [add_due(project, text, via="call") for text in ("call Helen", "buy milk", "feed the cat")]
        for rid in ids:
            await status_becomes(project, rid, "delivered")
        transcript = list(line.gemini.sessions[0].transcript)
        await call.hang_up()
        await line.settle()
        assert line.twilio.messages == []
    # Each reminder reaches the model only after it has finished speaking about the one before.
    told = [(role, text.split('"')[1] if role == "user" else text) for role, text in transcript[1:]]
    assert [role for role, _ in told] == ["user", "model"] * 3
    assert sorted(text for role, text in told if role == "user") == ["buy milk", "call Helen", "feed the cat"]


async def test_reminders_wait_for_the_server_holding_the_owners_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another server has the owner on the line: this one leaves the reminders to it (it would
    say them in that call) until that server stops renewing its claim on the call."""
    import datetime as dt

    from tars.store.call_queue import mark_live
    from tars.store.calls import start_call
    from tars.store.database import connect
    from tests.scheduler.helpers import reminder, ticks_pass

    def other_server_holds_the_call(seconds: float) -> None:
        with connect(project.database_url) as db, db.session() as s:
            mark_live(s, [call_id], "other-server:1:abc", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))

    project = make_project(tmp_path / "p", monkeypatch)
    with connect(project.database_url) as db, db.session() as s:
        call_id = start_call(
            s, direction="inbound", from_number=project.owner.phone, to_number="+447700900999", role="owner"
        ).id
    other_server_holds_the_call(3600)
    rid = add_due(project, "call Helen", via="call")
    texted = add_due(project, "buy milk", via="sms")
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        scheduler = line.server.server.scheduler
        await status_becomes(project, texted, "delivered")  # a text reminder is not said in calls
        await ticks_pass(scheduler)  # a whole tick saw the call reminder due, and left it
        assert reminder(project, rid).status == "pending" and list(line.twilio.calls) == []
        other_server_holds_the_call(-1)  # it stopped renewing its claim: the claim lapsed
        scheduler.wake()
        await eventually(lambda: list(line.twilio.calls.values()), 20, "the reminder call placed")
        assert [c.to for c in line.twilio.calls.values()] == [project.owner.phone]
        assert [m.body for m in line.twilio.messages] == ["Reminder: buy milk"]
