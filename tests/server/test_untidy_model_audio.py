"""The model's speech as the real service sends it — several audio parts in one message,
transcriptions in 3-character fragments ahead of the audio, bursts, sometimes slower than
real time (``tars.emulators.gemini.delivery``) — reaches the caller in full, and the transcript
whole. pipecat 1.14 reads only ``parts[0]`` of a message; TARS's Live service plays every
part (``tars.calls.live_service``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tars.emulators.gemini.delivery import REALISTIC
from tars.emulators.gemini.emulator import CallTool, Say
from tars.emulators.gemini.wire import b64decode
from tests.server.harness import Line, make_project
from tests.server.test_goal_calls import stored
from tests.server.test_owner_calls import greet_then

WORDS = "It is ten o'clock, sir, and the kettle is on."


def voiced_seconds(pcm16: bytes, rate: int) -> float:
    """Seconds of ``pcm16`` louder than a whisper (silence padding and gaps left out)."""
    samples = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2").astype(np.int32)
    return int(np.count_nonzero(np.abs(samples) > 500)) / rate


def model_speech(session: Any) -> bytes:
    """The 24 kHz PCM the emulator sent: every part of every message."""
    turns = [(f.get("serverContent") or {}).get("modelTurn") or {} for f in session.frames_sent]
    return b"".join(b64decode(p["inlineData"]["data"]) for t in turns for p in t.get("parts", []) if "inlineData" in p)


@pytest.mark.parametrize(
    "delivery",
    [REALISTIC, {**REALISTIC, "pacing": 1.5}],  # the second: bursts slower than real time
    ids=["untidy", "untidy-and-slow"],
)
async def test_multi_part_fragmented_bursty_audio_reaches_the_caller_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delivery: dict[str, Any]
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(Say(WORDS), [Say("Goodbye, sir."), CallTool("end_call", {"reason": "done"})])
    async with Line(project, lambda: brain, keep_frames=True, **delivery) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("what time is it")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == WORDS
        await call.say("thank you, goodbye")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Goodbye, sir."
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        [session] = line.gemini.sessions
        [stream] = call.streams
    assert max(len((f.get("serverContent") or {}).get("modelTurn", {}).get("parts", [])) for f in session.sent) == 3
    sent = voiced_seconds(model_speech(session), 24000)
    played = voiced_seconds(stream.agent_pcm16(), 8000)
    assert played == pytest.approx(sent, rel=0.03), (played, sent)  # none of the parts lost
    said = [t.text for t in stored(line, call.sid).transcript if t.speaker == "assistant"]
    assert said[1:] == [WORDS, "Goodbye, sir."]
