"""Every frame the Gemini emulator sends in a simulated call is a valid ``LiveServerMessage``.

google-genai's types forbid unknown fields (``extra='forbid'``), but its receive path
converts frames leniently and drops what it does not know, so an emulator frame with a
misspelt or invented field would pass every call test unseen. Here each frame, whole, is
validated against the SDK's own model instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.genai import types

from tars.emulators.gemini.delivery import REALISTIC
from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, make_project
from tests.server.test_goal_calls import stored
from tests.server.test_owner_calls import greet_then
from tests.server.test_tool_calls_kept import EMAIL, ON_OLDER, email_under_way, on_older_model
from tests.waiting import eventually

STORY = "Once upon a time there was a butler who answered every telephone in the house. " * 3


async def test_every_server_frame_of_a_call_is_a_valid_live_server_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert types.LiveServerMessage.model_config.get("extra") == "forbid"
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(
        CallTool("current_time", {}),  # on "what time is it"
        Say("It is early, sir."),  # on the tool result
        Say(STORY),  # on "tell me a story": interrupted below
        [Say("Goodbye, sir."), CallTool("end_call", {"reason": "done"})],
    )
    async with Line(project, lambda: brain, keep_frames=True) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        [session] = line.gemini.sessions
        await call.say("what time is it")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "It is early, sir."
        await call.say("tell me a story")
        told = len(session.sent)
        await eventually(lambda: len(session.sent) > told + 2, what="the story under way")
        await line.gemini.interrupt()
        await line.gemini.go_away(time_left="30s")
        await call.say("never mind, goodbye")
        assert await call.wait_ended(timeout=30) == "completed"
    frames = session.frames_sent
    assert len(frames) == len(session.sent) > 10
    for frame in frames:
        types.LiveServerMessage.model_validate_json(json.dumps(frame))  # raises on any unknown field
    keys = {key for frame in frames for key in frame}
    assert {"setupComplete", "serverContent", "toolCall", "usageMetadata", "sessionResumptionUpdate", "goAway"} <= keys
    content = {key for frame in frames for key in frame.get("serverContent", {})}
    assert {"modelTurn", "inputTranscription", "outputTranscription", "interrupted", "turnComplete"} <= content


async def test_a_cancelled_call_gets_no_late_result_and_every_frame_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a 3.x model without NON_BLOCKING, a slow webhook is a BLOCKING call: the caller's
    audio waits while it runs (tars.calls.input_hold), so only a barge-in can cancel it. Once
    cancelled, its late result is not sent. The frames of this untidy call (several parts a
    message, transcription fragments, toolCallCancellation) are all valid LiveServerMessages."""
    project = on_older_model(tmp_path, monkeypatch)
    brain = greet_then(EMAIL, [Say("Goodbye, sir."), CallTool("end_call", {"reason": "done"})])
    async with Line(project, lambda: brain, keep_frames=True, **ON_OLDER, **REALISTIC) as line:
        released, call, session = await email_under_way(line)
        await line.gemini.interrupt()  # as a barge-in would: the BLOCKING call is cancelled

        def lines() -> list[str]:
            return [t.text for t in stored(line, call.sid).transcript if t.speaker == "system"]

        await eventually(lambda: "the model cancelled send_to_n8n (the caller spoke meanwhile)" in lines(), what="it")
        released.set()
        await eventually(lambda: "the result of cancelled send_to_n8n was not sent" in lines(), what="the late result")
        await call.say("never mind, goodbye")
        assert await call.wait_ended(timeout=30) == "completed"
    assert session.tools["send_to_n8n"].get("behavior") is None  # pipecat declares none before 3.8
    assert [r["name"] for r in session.tool_results] == ["end_call"] and line.gemini.violations == []
    frames = session.frames_sent
    for frame in frames:
        types.LiveServerMessage.model_validate_json(json.dumps(frame))  # raises on any unknown field
    assert any("toolCallCancellation" in frame for frame in frames)
    assert max(len(f.get("serverContent", {}).get("modelTurn", {}).get("parts", [])) for f in frames) == 3
