"""The emulated Live models' ways with function calls, delivery and handles, through the real
google-genai client: BLOCKING calls cancelled by new input on the 3.x models, NON_BLOCKING
calls and their scheduling, untidy delivery, resumption handles that expire, and a resume
refused while an older socket of the session is still open."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from google.genai import errors, types

from tars.emulators import speech
from tars.emulators.gemini.emulator import CallTool, GeminiEmulator, Say, ScriptedBrain
from tars.emulators.gemini.models import LIVE_METHODS, NON_BLOCKING_TOOLS
from tars.emulators.gemini.turns import OUTPUT_RATE
from tests.sim.test_gemini_emulator import KEY, MODEL, Inbox, client_for, live_config, speak
from tests.waiting import eventually


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def tool(name: str, behavior: types.Behavior) -> types.Tool:
    return types.Tool(function_declarations=[types.FunctionDeclaration(name=name, description=name, behavior=behavior)])


async def answer(session: Any, call: types.FunctionCall, result: dict[str, Any], scheduling: str) -> None:
    """A NON_BLOCKING call's final result, with its ``scheduling``."""
    how = types.FunctionResponseScheduling(scheduling)
    response = types.FunctionResponse(id=call.id, name=call.name, response=result, scheduling=how)
    await session.send_tool_response(function_responses=response)


def said(inbox: Inbox) -> list[str]:
    return inbox.said()


async def test_new_input_cancels_a_blocking_call_and_its_late_answer_has_no_effect() -> None:
    brain = ScriptedBrain([CallTool("look_up", {}), Say("Never mind that."), Say("Still here.")])
    config = live_config(tools=[tool("look_up", types.Behavior.BLOCKING)])
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain) as emu:
        async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
            inbox = Inbox(session)
            await speak(session, "look it up please")
            await inbox.wait(lambda: any(m.tool_call for m in inbox.messages), "the call")
            [call] = next(m.tool_call for m in inbox.messages if m.tool_call).function_calls
            await session.send_realtime_input(text="actually, forget it")
            await inbox.wait(lambda: "Never mind that." in said(inbox), "the answer to the new input")
            cancelled = next(m.tool_call_cancellation for m in inbox.messages if m.tool_call_cancellation)
            assert cancelled.ids == [call.id]
            late = types.FunctionResponse(id=call.id, name="look_up", response={"found": "it"})
            await session.send_tool_response(function_responses=late)  # taken, without effect
            await session.send_realtime_input(text="hello?")
            await inbox.wait(lambda: "Still here." in said(inbox), "the next answer")
            await inbox.close()
        [s] = emu.sessions
    assert [e.kind for e in brain.events] == ["user", "user", "user"]  # the late answer asked nothing
    assert [c["by"] for c in s.cancellations] == ["text"]
    assert s.tool_results[-1]["stale"] is True and s.violations == []
    order = [k for m in inbox.messages for k in ("tool_call", "tool_call_cancellation") if getattr(m, k)]
    assert order == ["tool_call", "tool_call_cancellation"]


async def test_a_model_without_the_rule_waits_for_the_answer_and_then_hears_the_input() -> None:
    older = "gemini-2.5-flash-native-audio"
    brain = ScriptedBrain([CallTool("look_up", {}), Say("Found it."), Say("You are welcome.")])
    emu = GeminiEmulator(api_key=KEY, brain_factory=lambda: brain)
    emu.models.add(older, LIVE_METHODS, (NON_BLOCKING_TOOLS,))
    config = live_config(tools=[tool("look_up", types.Behavior.BLOCKING)])
    async with emu, client_for(emu).aio.live.connect(model=older, config=config) as session:
        inbox = Inbox(session)
        await speak(session, "look it up please")
        await inbox.wait(lambda: any(m.tool_call for m in inbox.messages), "the call")
        [call] = next(m.tool_call for m in inbox.messages if m.tool_call).function_calls
        await session.send_realtime_input(text="thank you")
        await session.send_tool_response(
            function_responses=types.FunctionResponse(id=call.id, name="look_up", response={})
        )
        await inbox.wait(lambda: "You are welcome." in said(inbox), "both answers")
        await inbox.close()
    assert said(inbox) == ["Found it.", "You are welcome."]
    assert not any(m.tool_call_cancellation for m in inbox.messages)
    assert [e.kind for e in brain.events] == ["user", "tool_result", "user"]


async def test_non_blocking_calls_are_answered_as_their_scheduling_says() -> None:
    story = "Once upon a time there was a butler who answered every telephone in the house. " * 4
    brain = ScriptedBrain(
        [
            [CallTool("fetch", {}), Say("Let me check.")],  # the model goes on while fetch runs
            Say("Here it is."),  # on fetch's WHEN_IDLE result
            [CallTool("note", {}), CallTool("fetch", {}), Say(story)],  # on "and the other one?"
            Say("Sorry to cut in: here is the other one."),  # on the INTERRUPT result
        ]
    )
    tools = [tool("fetch", types.Behavior.NON_BLOCKING), tool("note", types.Behavior.NON_BLOCKING)]
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain, pacing=1.0) as emu:
        async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(tools=tools)) as session:
            inbox = Inbox(session)
            await session.send_realtime_input(text="what is new?")
            await inbox.wait(lambda: "Let me check." in said(inbox), "the model going on")
            [first] = next(m.tool_call for m in inbox.messages if m.tool_call).function_calls
            await answer(session, first, {"news": "none"}, "WHEN_IDLE")
            await inbox.wait(lambda: "Here it is." in said(inbox), "the result spoken")
            await session.send_realtime_input(text="and the other one?")
            await inbox.wait(lambda: len([m for m in inbox.messages if m.tool_call]) == 2, "two more calls")
            note, fetch = [m.tool_call for m in inbox.messages if m.tool_call][-1].function_calls
            await answer(session, note, {"ok": True}, "SILENT")
            await inbox.wait(lambda: emu.sessions[0].context_results, "the silent result taken in")
            await answer(session, fetch, {"news": "rain"}, "INTERRUPT")
            await inbox.wait(lambda: "Sorry to cut in: here is the other one." in said(inbox), "the interruption")
            await inbox.close()
        [s] = emu.sessions
    assert any(m.server_content and m.server_content.interrupted for m in inbox.messages)
    assert s.context_results == [("note", {"ok": True})]
    asked = [(e.kind, e.name) for e in brain.events]
    assert asked == [("user", ""), ("tool_result", "fetch"), ("user", ""), ("tool_result", "fetch")]
    assert s.cancellations == []  # new input never cancels a NON_BLOCKING call


async def test_untidy_delivery_keeps_every_byte_and_every_letter() -> None:
    words = "Your table for four is booked at seven tonight."
    brain = ScriptedBrain([Say(words)])
    emu = GeminiEmulator(
        api_key=KEY,
        brain_factory=lambda: brain,
        parts_per_message=3,
        transcription_chars=3,
        burst_messages=2,
        keep_frames=True,
    )
    async with emu, client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        inbox = Inbox(session)
        await speak(session, "book a table")
        await inbox.wait(
            lambda: any(m.server_content and m.server_content.turn_complete for m in inbox.messages), "turn"
        )
        await inbox.close()
        [s] = emu.sessions
    turns = [m.server_content.model_turn for m in inbox.messages if m.server_content and m.server_content.model_turn]
    audio = b"".join(p.inline_data.data for t in turns for p in t.parts)
    assert audio == speech.encode(words, OUTPUT_RATE, None)
    assert max(len(t.parts) for t in turns) == 3
    pieces = [t.text for t in inbox.content("output_transcription")]
    assert "".join(pieces) == words and max(len(p) for p in pieces) == 3
    first_audio = next(i for i, m in enumerate(inbox.messages) if m.server_content and m.server_content.model_turn)
    first_text = next(
        i for i, m in enumerate(inbox.messages) if m.server_content and m.server_content.output_transcription
    )
    assert first_text < first_audio  # the transcription runs ahead of its audio
    heard = [t.text for t in inbox.content("input_transcription")]
    assert "".join(heard) == "book a table" and len(heard) > 1
    for frame in s.frames_sent:
        types.LiveServerMessage.model_validate_json(json.dumps(frame))  # unknown fields forbidden


async def test_a_resumption_handle_expires_after_the_last_connection_ends() -> None:
    lifetime = 0.05
    async with GeminiEmulator(api_key=KEY, handle_lifetime_s=lifetime) as emu:
        client = client_for(emu)
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            inbox = Inbox(session)
            await inbox.wait(lambda: any(m.session_resumption_update for m in inbox.messages), "a handle")
            handle = next(m.session_resumption_update.new_handle for m in inbox.messages if m.session_resumption_update)
            await inbox.close()
        [s] = emu.sessions
        await eventually(lambda: s.closed_at is not None and time.monotonic() - s.closed_at > lifetime, what="expiry")
        with pytest.raises(errors.APIError) as info:
            async with client.aio.live.connect(model=MODEL, config=live_config(handle=handle)):
                pass
    assert info.value.code == 1008 and "Session resumption handle is invalid or expired." in str(info.value)
    assert [r[1:] for r in emu.live.rejected] == [(1008, "Session resumption handle is invalid or expired.")]
    assert s.ended == (1008, "resumption handle expired") and len(emu.sessions) == 1


async def first_handle(inbox: Inbox) -> str:
    await inbox.wait(lambda: any(m.session_resumption_update for m in inbox.messages), "a handle")
    return next(m.session_resumption_update.new_handle for m in inbox.messages if m.session_resumption_update)


async def test_a_resume_while_the_old_socket_is_still_open_is_refused_with_1011() -> None:
    brain = ScriptedBrain([Say("Still here.")])
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain) as emu:
        client = client_for(emu)
        async with client.aio.live.connect(model=MODEL, config=live_config()) as old:
            inbox = Inbox(old)
            handle = await first_handle(inbox)
            with pytest.raises(errors.APIError) as info:
                async with client.aio.live.connect(model=MODEL, config=live_config(handle=handle)):
                    pass
            assert info.value.code == 1011 and "Internal error encountered." in str(info.value)
            assert [r[1:] for r in emu.live.rejected] == [(1011, "Internal error encountered.")]
            # The old socket carries on, untouched: the conversation goes on there.
            await speak(old, "are you there")
            await inbox.wait(lambda: said(inbox) == ["Still here."], "the reply on the old socket")
            assert inbox.error is None
            await inbox.close()
        [s] = emu.sessions
        assert s.connections == 1 and s.ended is None


async def test_a_resume_after_the_old_socket_closed_is_accepted() -> None:
    brain = ScriptedBrain([Say("Still here.")])
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain) as emu:
        client = client_for(emu)
        async with client.aio.live.connect(model=MODEL, config=live_config()) as old:
            inbox = Inbox(old)
            handle = await first_handle(inbox)
            await inbox.close()
        async with client.aio.live.connect(model=MODEL, config=live_config(handle=handle)) as resumed:
            inbox = Inbox(resumed)
            await speak(resumed, "are you there")
            await inbox.wait(lambda: said(inbox) == ["Still here."], "the reply after resuming")
            await inbox.close()
        [s] = emu.sessions
        assert s.connections == 2 and emu.live.rejected == []
