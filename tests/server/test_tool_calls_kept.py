"""Tool calls that cannot be lost: the caller's words wait while a BLOCKING call runs (on a
3.x model new input would cancel it), and every call gets a response under its name, an
invented tool's included."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tars.emulators.gemini.models import CANCELS_BLOCKING_ON_INPUT, DEFAULT_MODELS, DEFAULT_TRAITS, LIVE_METHODS
from tars.project import Project
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then
from tests.waiting import eventually

OLDER = "gemini-3.1-flash-live-preview"  # cancels BLOCKING calls on new input; no NON_BLOCKING
ON_OLDER = {
    "models": {**DEFAULT_MODELS, OLDER: LIVE_METHODS},
    "model_traits": {**DEFAULT_TRAITS, OLDER: (CANCELS_BLOCKING_ON_INPUT,)},
}


EMAIL = CallTool("send_to_n8n", {"channel": "email", "message": "the dinner is on Friday"})


def on_older_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The example project with ``live_model`` set to ``OLDER`` (give the Line ``**ON_OLDER``)."""
    live = ("tars.yaml", "live_model: models/gemini-3.8-live", f"live_model: models/{OLDER}")
    return make_project(tmp_path / "p", monkeypatch, [live])


async def email_under_way(line: Line) -> tuple[asyncio.Event, Any, Any]:
    """The owner rings and asks for an email; the webhook holds it (release the event to answer)."""
    released = line.webhooks.holds["send_to_n8n"] = asyncio.Event()
    call = await line.call_in(from_=line.project.owner.phone)
    await call.wait_for_agent_utterance(timeout=20)
    [session] = line.gemini.sessions
    await call.say("email me that the dinner is on Friday")
    await eventually(lambda: line.webhooks.requests, what="the slow webhook")
    return released, call, session


async def test_the_callers_words_during_a_blocking_call_wait_for_its_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = on_older_model(tmp_path, monkeypatch)
    brain = greet_then(EMAIL, Say("Sent, sir."), [Say("I will tell Helen too. Goodbye."), CallTool("end_call", {})])
    async with Line(project, lambda: brain, **ON_OLDER) as line:
        released, call, session = await email_under_way(line)
        await call.say("and tell Helen too")  # while the call runs: TARS holds it back
        assert "and tell Helen too" not in session.user_texts()
        released.set()
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Sent, sir."
        assert await call.wait_ended(timeout=30) == "completed"
    assert session.cancellations == [] and line.gemini.violations == []
    assert [(e.kind, e.name or e.text) for e in brain.events[1:]] == [
        ("user", "email me that the dinner is on Friday"),
        ("tool_result", "send_to_n8n"),
        ("user", "and tell Helen too"),
        ("tool_result", "end_call"),
    ]


async def test_an_invented_tool_gets_an_answer_under_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(
        CallTool("fly_to_mars", {"when": "now"}), [Say("I cannot do that, sir."), CallTool("end_call", {})]
    )
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("fly me to mars")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "I cannot do that, sir."
        assert await call.wait_ended(timeout=30) == "completed"
        [session] = line.gemini.sessions
    invented = session.tool_results[0]
    assert invented["name"] == "fly_to_mars" and invented["id"] == session.tool_calls[0]["id"]
    assert "refused" in invented["response"], invented
    assert line.gemini.violations == []
