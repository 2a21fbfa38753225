"""The model session opened while Twilio connects the call (``tars.calls.preopen``): used by the
stream that arrives (a goal call's, opened while the phone rings; an inbound call's, opened
while the voice webhook answers), closed unused when the call never streams or streams on
another server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tars.emulators.twilio.emulator import Party
from tars.store.contacts import Rules, add_contact
from tars.store.database import connect
from tests.server.harness import Line, Receptionist, make_project, place
from tests.server.test_owner_calls import greet_then

DENTIST = "+442079460123"
HELEN = "+447700900456"


async def book(line: Line) -> int:
    placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
    assert placed["http"] == 201, placed
    return int(placed["call_id"])


async def test_a_goal_call_s_model_session_opens_while_the_phone_rings_and_greets_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line:
        line.twilio.realtime = True  # the phone rings for real
        line.twilio.set_party(DENTIST, Party(ring_ms=3000))
        await book(line)
        call = await line.twilio.next_call(timeout=10)
        [session] = await line.gemini.wait_for(lambda: line.gemini.sessions, what="a model session", timeout=20)
        heard = await call.wait_for_agent_utterance(timeout=20)
        assert heard.text.startswith("Hello, this is TARS")
        await call.say("We have Wednesday at 3pm")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    # The stream used the session opened while ringing: one session, one connection.
    answered = next(t for status, t in call.status_history if status == "in-progress")
    assert session.opened_at < answered, "the session opened before the call was answered"
    assert len(line.gemini.sessions) == 1 and session.connections == 1
    assert session.model_texts()[:2] == [heard.text, "Do you have anything on Wednesday?"]
    assert line.gemini.violations == []


@pytest.mark.parametrize("answer", ["no-answer", "voicemail"])
async def test_a_session_opened_for_a_call_that_never_streams_is_closed_unused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line:
        line.twilio.realtime = True
        line.twilio.set_party(DENTIST, Party(answer=answer, ring_ms=2000))
        await book(line)
        call = await line.twilio.next_call(timeout=10)
        [session] = await line.gemini.wait_for(lambda: line.gemini.sessions, what="a model session", timeout=20)
        await call.wait_ended(timeout=30)
        await line.gemini.wait_for(lambda: not session.connected, what="the unused session closed", timeout=20)
    assert not line.twilio.calls[call.sid].streams
    assert session.connections == 1 and not session.started and session.transcript == []
    assert line.gemini.violations == []


async def test_a_stream_that_reaches_another_server_connects_there_and_the_first_closes_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line:
        other = await line.another_server()
        line.send_twilio_to(other)  # the answered call's webhooks and stream go to the other server
        line.twilio.realtime = True
        line.twilio.set_party(DENTIST, Party(ring_ms=2000))
        await book(line)  # placed (and its session opened) by the first server
        call = await line.twilio.next_call(timeout=10)
        [ahead] = await line.gemini.wait_for(lambda: line.gemini.sessions, what="the session opened ahead")
        heard = await call.wait_for_agent_utterance(timeout=20)
        assert heard.text.startswith("Hello, this is TARS")
        await line.gemini.wait_for(lambda: not ahead.connected, what="the first server's session closed", timeout=20)
        await call.say("We have Wednesday at 3pm")
        assert await call.wait_ended(timeout=30) == "completed"
    first, streamed = line.gemini.sessions
    assert first is ahead and not first.started and first.transcript == []
    assert streamed.model_texts()[0] == heard.text
    assert line.gemini.violations == []


async def test_an_inbound_call_s_model_session_opens_while_the_webhook_answers_and_the_stream_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tars.calls")
    project = make_project(tmp_path / "p", monkeypatch)
    with connect(project.database_url) as db, db.session() as s:
        add_contact(s, Rules.of(project), name="Helen Price", phone=HELEN)
    brain = greet_then(CallTool("end_call", {}), Say("Bye."))
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=HELEN)
        hello = await call.wait_for_agent_utterance(timeout=20)
        await call.say("bye")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    # The session opened for the webhook (while the call's row was being written) is the one
    # the stream took: one session, one connection, set up for the caller the row names.
    [session] = line.gemini.sessions
    assert session.connections == 1 and session.started
    assert any("the stream takes the model session opened" in r.getMessage() for r in caplog.records)
    assert "Helen Price" in hello.text and "Helen Price" in session.system_instruction
    assert session.tool_names == ["current_time", "take_message", "transfer_call", "end_call"]
    assert line.gemini.violations == []
