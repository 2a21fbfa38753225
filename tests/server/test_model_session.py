"""What TARS asks of the Gemini Live session, and how a call fares against the service's limits.

The emulator ends an audio session without context-window compression after its session
limit (``goAway``, then 1011), as the real service does after ~15 minutes; the tests set
the limit to a second or two.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then
from tests.waiting import eventually

VOICE = ("tars.yaml", "  voice: Charon\n")


def details(line: Line, sid: str) -> Any:
    from tars.store.calls import call_details

    with line.db() as db, db.session() as s:
        return call_details(s, sid)


def with_compression(block: str) -> tuple[str, str, str]:
    return (*VOICE, VOICE[1] + "  context_window_compression:\n" + block)


async def test_calls_ask_for_both_transcriptions_and_compression(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [with_compression("    trigger_tokens: 25000\n")])
    brain = greet_then([Say("Goodbye, sir."), CallTool("end_call", {})])
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("that is all")
        assert await call.wait_ended(timeout=30) == "completed"
        [session] = line.gemini.sessions
    # pipecat asks for both transcriptions itself; TARS's transcript depends on them.
    assert session.setup["inputAudioTranscription"] == {}
    assert session.setup["outputAudioTranscription"] == {}
    assert session.compression == {"slidingWindow": {}, "triggerTokens": 25000}
    assert line.gemini.violations == []
    spoken = [(t.speaker, t.text) for t in details(line, call.sid).transcript if t.speaker != "system"]
    assert ("caller", "that is all") in spoken and ("assistant", "Goodbye, sir.") in spoken


async def test_by_default_a_call_outlives_the_session_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(Say("Still here, sir."), [Say("Goodbye."), CallTool("end_call", {})])
    async with Line(project, lambda: brain, session_limit_s=1.0, go_away_lead_s=0.5) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        [session] = line.gemini.sessions
        assert session.compressed, session.compression
        await eventually(lambda: time.monotonic() > session.opened_at + 1.5, what="the session limit passing")
        await call.say("are you still there")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Still here, sir."
        await call.say("good, bye")
        assert await call.wait_ended(timeout=30) == "completed"
    assert session.ended is None and session.connections == 1
    assert not any("goAway" in frame for frame in session.sent)
    assert details(line, call.sid).call.status == "completed"


async def test_a_call_outlives_the_connection_limit_on_the_same_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(Say("Still here, sir."), [Say("Goodbye."), CallTool("end_call", {})])
    async with Line(project, lambda: brain, connection_limit_s=2.0, go_away_lead_s=1.0) as line:
        call = await line.call_in(from_=project.owner.phone)
        await line.gemini.wait_for(lambda: line.gemini.sessions, what="a session")
        [session] = line.gemini.sessions
        await line.gemini.wait_for(lambda: "goAway" in str(session.sent), what="goAway")
        # One cut is enough: the next connection lasts. (pipecat gives up after three failed
        # connections in a row unless one stayed up for 10 s, so cuts every 2 s would end the
        # call; the real service cuts every ~10 minutes.)
        line.gemini.options.connection_limit_s = None
        await call.wait_for_agent_utterance(timeout=20)
        # (>= 2: on a busy machine the handover can come before the limit is lifted, and the
        # second connection is cut too; the call still goes on in the same session.)
        await line.gemini.wait_for(lambda: session.connections >= 2 and session.connected, what="resumed", timeout=30)
        await call.say("are you still there")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Still here, sir."
        await call.say("good, bye")
        assert await call.wait_ended(timeout=30) == "completed"
    assert session.ended is None
    assert session.setups[1]["sessionResumption"]["handle"] in session.handles
    record = details(line, call.sid)
    assert record.call.status == "completed"
    system = [t.text for t in record.transcript if t.speaker == "system"]
    # What the call wrote down is the timeLeft the emulator sent: 1s, or a little less when busy.
    left = next(frame["goAway"]["timeLeft"] for frame in session.sent if "goAway" in frame)  # the first
    assert 0.5 < float(left.removesuffix("s")) <= 1.0, left
    assert f"the model service will close the connection in {left} (goAway)" in system
    assert "the model session goes on over a new connection" in system


async def test_without_compression_the_session_limit_ends_the_call_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [with_compression("    enabled: false\n")])
    async with Line(project, lambda: greet_then(), session_limit_s=2.0, go_away_lead_s=1.0) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        [session] = line.gemini.sessions
        assert "contextWindowCompression" not in session.setup
        assert await call.wait_ended(timeout=60) == "completed"
        heard = [u.text for u in call.heard]
        await line.settle()  # the failure is recorded once the call's session has ended
    assert session.ended == (1011, "Deadline expired before operation could complete.")
    assert any("technical trouble" in text for text in heard), heard
    record = details(line, call.sid)
    assert record.call.status == "failed"
    # goAway at 1 s; TARS hands the idle session to a new connection, which hears goAway again
    # for the same deadline: the session's own limit (tars.calls.handover), which ends the call.
    reason = record.call.failure_reason or ""
    assert re.search(r"goAway, time left [\d.]+s; context_window_compression is off\), then: ", reason), reason
    system = [t.text for t in record.transcript if t.speaker == "system"]
    # What the call wrote down is the timeLeft the emulator first sent: 1s, or a little less when busy.
    left = next(frame["goAway"]["timeLeft"] for frame in session.sent if "goAway" in frame)
    assert 0.5 < float(left.removesuffix("s")) <= 1.0, left
    assert f"the model service will close the connection in {left} (goAway)" in system
