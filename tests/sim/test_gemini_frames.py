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

from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then
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
