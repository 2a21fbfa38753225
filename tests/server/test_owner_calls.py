"""The owner rings TARS and asks for a reminder: the whole path, real SDKs against the emulators."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tars.emulators.gemini.emulator import CallTool, Say, ScriptedBrain
from tests.server.harness import Line, make_project


def greet_then(*steps: object) -> ScriptedBrain:
    """The emulated model greets with the words TARS asked for, then follows ``steps``."""

    def greeting(session: object, event: object) -> list[Say]:
        opening = next((h["text"] for h in session.history if "Greet the caller" in h["text"]), "")
        words = opening.split('with: "', 1)[1].rsplit('"', 1)[0] if 'with: "' in opening else "Hello."
        return [Say(words)]

    return ScriptedBrain([greeting, *steps])


def reminder_call(*also: CallTool) -> ScriptedBrain:
    """The model on the owner's "remind me to call Helen tomorrow at 2pm" call: it makes the
    reminder (and calls ``also`` in the same batch), says so and hangs up."""
    remind = CallTool("create_reminder", {"text": "call Helen", "when": "tomorrow at 2pm"})
    return greet_then(
        [remind, *also] if also else remind,
        [Say("Done. I will remind you tomorrow at two."), CallTool("end_call", {"reason": "owner is done"})],
        Say("Goodbye, sir."),
    )


async def owner_asks_for_a_reminder(line: Line) -> tuple[Any, Any]:
    """The owner rings, is greeted, asks for the reminder; the call ends. The call and the greeting."""
    call = await line.call_in(from_=line.project.owner.phone)
    hello = await call.wait_for_agent_utterance(timeout=20)
    await call.say("remind me to call Helen tomorrow at 2pm")
    assert (await call.wait_ended(timeout=30)) == "completed"
    return call, hello


async def test_owner_asks_for_a_reminder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = reminder_call()
    async with Line(project, lambda: brain) as line:
        call, hello = await owner_asks_for_a_reminder(line)
        assert hello.text.startswith("Good ") and "TARS at your service" in hello.text
        twilio_call = line.twilio.calls[call.sid]
        assert twilio_call.rest_hangups, "TARS should hang up through the Twilio REST API"
        session = line.gemini.sessions[0]
        assert session.tool_names == list(project.roles["owner"].tools)

    from tars.store.calls import call_details
    from tars.store.reminders import list_reminders

    with line.db() as db, db.session() as s:
        [reminder] = list_reminders(s)
        details = call_details(s, call.sid)
    london = ZoneInfo("Europe/London")
    tomorrow = (dt.datetime.now(london) + dt.timedelta(days=1)).date()
    assert reminder.text == "call Helen"
    assert reminder.due == dt.datetime.combine(tomorrow, dt.time(14, 0), london).astimezone(dt.UTC)
    assert details.call.status == "completed"
    assert details.call.direction == "inbound"
    said = [(line.speaker, line.text) for line in details.transcript]
    assert ("caller", "remind me to call Helen tomorrow at 2pm") in said
    assert any(speaker == "assistant" and "TARS at your service" in text for speaker, text in said)
    tools = [(t.tool, t.allowed) for t in details.tools]
    assert tools == [("create_reminder", True), ("end_call", True)]


async def test_the_owner_asking_for_a_reminder_every_second_hears_why_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    every_second = {"text": "drink water", "when": "in 5 minutes", "every": "FREQ=SECONDLY;INTERVAL=0"}

    def relay(session: object, event: object) -> list[Say]:  # the model says what the tool told it
        return [Say(event.response["error"])]  # type: ignore[attr-defined]

    brain = greet_then(CallTool("create_reminder", every_second), relay, [Say("Bye."), CallTool("end_call", {})])
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("remind me to drink water every second")
        said = (await call.wait_for_agent_utterance(timeout=20)).text
        await call.say("fine, bye")
        assert await call.wait_ended(timeout=30) == "completed"

    from tars.store.calls import call_details
    from tars.store.reminders import list_reminders

    with line.db() as db, db.session() as s:
        assert list_reminders(s) == []
        details = call_details(s, call.sid)
    assert said == (
        "A reminder can repeat at most once a minute, so every second cannot be set. "
        "Every minute, or any longer interval, works."
    )
    [refused, _] = [(t.tool, t.result) for t in details.tools]
    assert refused == ("create_reminder", {"error": said})
