"""Recordings: a recorded role's call is stored as a stereo 8 kHz WAV (the caller left, TARS
right, in time), with the notice spoken first; an unrecorded call writes nothing; recordings
older than recording.keep_days are deleted when the server starts."""

from __future__ import annotations

import datetime as dt
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tars.calls.recording import Timeline
from tars.emulators import speech
from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then

STRANGER = "+15005550006"
NOTICE = "Please note that this call is recorded."
RECORD_UNKNOWN = (
    "tars.yaml",
    "    tools: [take_message, end_call]\n",
    "    tools: [take_message, end_call]\n    recording: {enabled: true, announce: true}\n",
)
KEEP_30_DAYS = ("tars.yaml", "keep_days: 90", "keep_days: 30")


def stored(line: Line, sid: str) -> Any:
    from tars.store.calls import call_details

    with line.db() as db, db.session() as s:
        return call_details(s, sid)


def spoken(channel: np.ndarray) -> list[tuple[str, int, int]]:
    """What one channel says: (words, first sample, last sample) of each utterance (a run of
    speech with no second of quiet inside: the machine running the test may stall a moment)."""
    loud = np.flatnonzero(np.abs(channel.astype(np.int32)) >= speech.ONSET_LEVEL)
    if not len(loud):
        return []
    gaps = np.flatnonzero(np.diff(loud) > 8000)
    starts, ends = [int(loud[0]), *(int(x) for x in loud[gaps + 1])], [*(int(x) for x in loud[gaps]), int(loud[-1])]
    return [
        (speech.describe(channel[a : b + 1].astype("<i2").tobytes(), 8000).text, a, b)
        for a, b in zip(starts, ends, strict=True)
    ]


def loud(audio: np.ndarray) -> int:
    """How many samples of ``audio`` are speech, not silence."""
    return int((np.abs(audio.astype(np.int32)) >= speech.ONSET_LEVEL).sum())


def channels(path: Path) -> tuple[np.ndarray, np.ndarray, wave.Wave_read]:
    with wave.open(str(path), "rb") as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, wav.getnchannels())
    return frames[:, 0], frames[:, 1], wav


async def test_a_recorded_call_has_both_sides_in_time_and_the_notice_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [RECORD_UNKNOWN])
    brain = greet_then([Say("I will pass that on. Goodbye.")])
    async with Line(project, lambda: brain) as line:
        line.twilio.realtime = True  # the caller's audio flows every 20 ms, silence included, as Twilio's does
        call = await line.call_in(from_=STRANGER)
        hello = await call.wait_for_agent_utterance(timeout=20)
        assert hello.text.endswith(NOTICE)
        await call.say("Please tell Alex the boat is ready")
        await call.wait_for_agent_utterance(timeout=20)
        await call.hang_up()
        await line.settle()
        twilio_call = line.twilio.calls[call.sid]
    record = stored(line, call.sid).call
    path = Path(record.recording_path)
    assert path.parent == project.state_dir / "recordings"
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    left, right, wav = channels(path)
    assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
    # As long as the call as Twilio saw it, from answering to the hang-up (the caller's
    # stream held up by more than half a second on a busy machine adds that much silence).
    lasted = twilio_call.end_time - twilio_call.start_time
    assert abs(len(left) / 8000 - lasted) < 1.0, (len(left) / 8000, lasted)
    caller, tars = spoken(left), spoken(right)
    assert [words for words, *_ in caller] == ["Please tell Alex the boat is ready"]
    assert [words for words, *_ in tars] == [hello.text, "I will pass that on. Goodbye."], (tars, caller)
    # In time: the greeting, then the caller (who waited for it), then the answer to them.
    (_, greeting_ends), (said_from, said_to), (answer_from, _) = (tars[0][1:], caller[0][1:], tars[1][1:])
    assert greeting_ends < said_from < said_to < answer_from


async def test_an_unrecorded_call_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then([Say("Goodbye."), CallTool("end_call", {"reason": "done"})])
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=STRANGER)
        hello = await call.wait_for_agent_utterance(timeout=20)
        await call.say("Nothing, thank you")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    assert NOTICE not in hello.text
    record = stored(line, call.sid)
    assert record.call.recording_path is None and record.call.status == "completed"
    assert ("caller", "Nothing, thank you") in [(t.speaker, t.text) for t in record.transcript]
    assert not (project.state_dir / "recordings").exists()


async def test_recordings_past_keep_days_are_deleted_when_the_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tars.calls.recording import private_folder, recording_file
    from tars.store.calls import start_call
    from tars.store.database import connect

    project = make_project(tmp_path / "p", monkeypatch, [KEEP_30_DAYS])
    now = dt.datetime.now(dt.UTC)
    private_folder(project.state_dir / "recordings")
    ids = {}
    with connect(project.database_url) as db, db.session() as s:
        for name, days in (("old", 31), ("recent", 29), ("live", 40)):
            ended = now - dt.timedelta(days=days)
            status = "in-progress" if name == "live" else "completed"
            call = start_call(
                s, direction="inbound", from_number=STRANGER, to_number="+447700900999", status=status,
                started_at=ended - dt.timedelta(minutes=2), ended_at=None if name == "live" else ended,
            )  # fmt: skip
            path = recording_file(project.state_dir, int(call.id))
            path.write_bytes(b"RIFF")
            call.recording_path = str(path)
            ids[name] = call.id
    async with Line(project, greet_then):
        pass  # pruned before the server takes its first call
    with connect(project.database_url) as db, db.session() as s:
        from tars.store.calls import get_call

        kept = {name: get_call(s, number).recording_path for name, number in ids.items()}
    assert kept["old"] is None and not recording_file(project.state_dir, ids["old"]).exists()
    assert kept["recent"] == str(recording_file(project.state_dir, ids["recent"]))
    assert Path(kept["recent"]).exists() and Path(kept["live"]).exists()


def test_the_timeline_keeps_both_sides_on_the_clock() -> None:
    """The caller's stream is the clock (its first half second held up, then arriving at
    once); TARS's audio is laid where Twilio plays it: queued behind what plays, dropped by
    a clear; a gap in the caller's stream is silence."""
    line = Timeline()
    caller, reply = b"\x02\x00" * 160, b"\x01\x00" * 8000  # 20 ms of the caller, 1 s of TARS
    for _ in range(25):  # 0.5 s of the caller, all arriving at 0.5 s: the stream began at 0
        line.caller(4000, caller)
    assert line.origin == 0 and line.ends[0] == 4000
    line.assistant(4000, reply)  # one second of reply, sent at once
    line.assistant(4100, reply[:1600])  # queued behind it
    assert line.ends[1] == 12800
    line.cleared(8000)  # the caller barged in at 1 s: the rest is never heard
    assert line.ends[1] == 8000
    line.caller(20000, caller)  # after a stall of the stream: placed by the clock
    frames = np.frombuffer(line.end(24000), dtype="<i2").reshape(-1, 2)
    assert len(frames) == 24000
    left, right = frames[:, 0].tolist(), frames[:, 1].tolist()
    assert left == [2] * 4000 + [0] * 15840 + [2] * 160 + [0] * 4000
    assert right == [0] * 4000 + [1] * 4000 + [0] * 16000


async def test_a_recorded_goal_call_announces_once_and_keeps_one_file_across_a_keypad_handover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.server.harness import place
    from tests.server.test_goal_calls import MenuThenPerson

    delegate = "    tools: [current_time, record_outcome, ask_owner, tell_owner, press_digits, end_call]\n"
    record_delegate = ("tars.yaml", delegate, delegate + "    recording: {enabled: true, announce: true}\n")
    project = make_project(tmp_path / "p", monkeypatch, [record_delegate])
    brain = MenuThenPerson()
    async with Line(project, lambda: brain) as line:
        line.twilio.realtime = True  # the caller's side flows every 20 ms (silence too): the timeline's clock
        placed = await place(line, "la_piazza", "business_inquiry", {"question": "opening hours on Saturday"})
        call = await line.twilio.next_call(timeout=10)
        [session] = await line.gemini.wait_for(lambda: line.gemini.sessions, what="the model session")
        await line.gemini.wait_for(lambda: session.connections == 2, what="the session resumed", timeout=30)
        heard = await call.wait_for_agent_utterance(timeout=20)
        while "opening hours" not in heard.text:
            heard = await call.wait_for_agent_utterance(timeout=20)
        await call.say("we are open nine to five")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        first = session.history[0]["text"]  # the opening; after the keys, the session goes on
        [second] = [text for text in session.user_texts() if "You pressed 2" in text]
        streams = line.twilio.calls[call.sid].streams
        sent = [loud(np.frombuffer(stream.agent_pcm16(), dtype="<i2")) for stream in streams]
    assert f'say: "{NOTICE}"' in first and NOTICE not in second  # said once, when the call connects
    with line.db() as db, db.session() as s:
        from tars.store.calls import get_call

        path = Path(get_call(s, placed["call_id"]).recording_path)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    left, right, _ = channels(path)
    caller, tars = spoken(left), spoken(right)
    assert [words for words, *_ in caller] == ["we are open nine to five"]
    # TARS spoke on both streams: before the keys and the question, and after the answer.
    assert tars[0][1] < caller[0][1] and tars[-1][2] > caller[0][2], tars
    # Both streams' audio is in the one file: as much of TARS speaking as Twilio received.
    assert len(streams) == 2 and min(sent) > 0
    assert abs(loud(right) - sum(sent)) < 0.05 * sum(sent), (loud(right), sent)


async def test_a_disk_that_fails_leaves_the_call_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tars.calls.recording import CallRecording

    (tmp_path / "recordings").write_text("a file where the folder should be")
    recording = CallRecording(tmp_path / "recordings" / "call-1.wav")
    recording.start()
    recording.caller(b"\x00\x00" * 160)
    recording.assistant(b"\x00\x00" * 320)
    await recording.close()  # returns: the call ends as it would have
    assert recording.failed and recording.seconds == 0
    assert "could not record the call's audio" in caplog.text
    waiting = recording._queue.qsize()
    recording.caller(b"\x00\x00" * 160)  # and later audio is not queued for nobody
    assert recording._queue.qsize() == waiting
