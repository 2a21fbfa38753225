"""A call that survives the model session's faults: drops spread over a call, tool results
across a reconnect, and malformed tool calls from the model (issue 23, "Faults")."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then
from tests.waiting import eventually

REMINDER = CallTool("create_reminder", {"text": "call Helen", "when": "tomorrow at 2pm"})


def details(line: Line, sid: str) -> Any:
    from tars.store.calls import call_details

    with line.db() as db, db.session() as s:
        return call_details(s, sid)


async def drop_and_resume(line: Line, connections: int) -> None:
    [session] = line.gemini.sessions
    await line.gemini.wait_for(lambda: session.handles, what="a resumption handle")
    await line.gemini.drop()
    await line.gemini.wait_for(
        lambda: session.connections == connections and session.connected, what="resumed", timeout=20
    )


async def test_three_spaced_drops_each_resumed_do_not_end_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(Say("One."), Say("Two."), Say("Three."), [Say("Goodbye."), CallTool("end_call", {})])
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        for n, words in enumerate(["One.", "Two.", "Three."], start=2):
            await drop_and_resume(line, n)
            await call.say("are you still there")
            assert (await call.wait_for_agent_utterance(timeout=20)).text == words
        await call.say("good, bye")
        assert await call.wait_ended(timeout=30) == "completed"
    assert details(line, call.sid).call.status == "completed"


async def test_a_tool_result_is_not_sent_again_after_a_reconnect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(REMINDER, Say("Done."), Say("Still here, sir."), [Say("Goodbye."), CallTool("end_call", {})])
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("remind me to call Helen tomorrow at two")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Done."
        await drop_and_resume(line, 2)
        await call.say("are you still there")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Still here, sir."
        await call.say("good, bye")
        assert await call.wait_ended(timeout=30) == "completed"
        [session] = line.gemini.sessions
    assert line.gemini.violations == []
    assert [r["name"] for r in session.tool_results] == ["create_reminder", "end_call"]
    assert details(line, call.sid).call.status == "completed"


@pytest.mark.parametrize("args", ["call Helen tomorrow", ["call Helen"]])
async def test_a_tool_call_with_malformed_arguments_gets_an_error_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: Any
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(
        CallTool("create_reminder", args), Say("Sorry, let me try that again."), [Say("Bye."), CallTool("end_call", {})]
    )
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("remind me to call Helen")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Sorry, let me try that again."
        await call.say("never mind, bye")
        assert await call.wait_ended(timeout=30) == "completed"
        [session] = line.gemini.sessions
    kind = type(args).__name__
    [result, _] = session.tool_results
    assert result["name"] == "create_reminder"
    assert result["response"] == {
        "error": f"arguments that are a {kind}, not an object; call create_reminder again with an object"
    }
    assert session.connections == 1 and line.gemini.violations == []
    record = details(line, call.sid)
    assert record.call.status == "completed"
    system = [t.text for t in record.transcript if t.speaker == "system"]
    assert f"the model called create_reminder with arguments that are a {kind}, not an object" in system


async def test_a_tool_result_that_lands_while_reconnecting_is_told_after_the_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    email = CallTool("send_to_n8n", {"channel": "email", "message": "the dinner is on Friday"})
    brain = greet_then(email, [Say("Sent, sir."), CallTool("end_call", {})])
    async with Line(project, lambda: brain) as line:
        released = line.webhooks.holds["send_to_n8n"] = asyncio.Event()
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        [session] = line.gemini.sessions
        await line.gemini.wait_for(lambda: session.handles, what="a resumption handle")
        await call.say("email me that the dinner is on Friday")
        await eventually(lambda: line.webhooks.requests, what="the slow webhook")
        line.gemini.live.setup_hold = asyncio.Event()
        await line.gemini.drop()
        released.set()  # the tool finishes while the session is reconnecting
        await eventually(
            lambda: [t for t in details(line, call.sid).tools if t.tool == "send_to_n8n"], what="the tool's result"
        )
        line.gemini.live.setup_hold.set()
        # The resumed session no longer knows the call (the emulator, like the service, takes a
        # late response for it without effect): the model is told the result in words, and
        # goes on from it without the caller saying anything.
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Sent, sir."
        assert await call.wait_ended(timeout=30) == "completed"
    assert session.connections == 2 and line.gemini.violations == []
    assert [r["name"] for r in session.tool_results] == ["end_call"]
    assert [t for t in session.user_texts() if "send_to_n8n" in t] == [
        "[System] The connection to you dropped while send_to_n8n was running; it has finished now. "
        'Its result: {"ok": true}. Carry on from there.'
    ]
