"""The call recorder: nothing on the call path waits for the database, and yet a call ends
with every line stored, in order, before its end; a failing database never ends a call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InputTextRawFrame,
    TranscriptionFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from tars.calls.keypad import KeypadToText
from tars.calls.recorder import CallRecorder, TranscriptTap
from tars.store.database import Database, open_database
from tars.store.errors import DatabaseError
from tests.waiting import eventually


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = open_database(f"sqlite:///{tmp_path / 'tars.db'}")
    yield db
    db.close()


def new_call(db: Database) -> int:
    from tars.store.calls import start_call

    with db.session() as s:
        call = start_call(s, direction="inbound", from_number="+15005550006", to_number="+447700900999")
        assert call.id is not None
        return call.id


def stored(db: Database, call_id: int) -> Any:
    from tars.store.calls import call_details

    with db.session() as s:
        return call_details(s, call_id)


class Gated:
    """The real database behind a gate the test opens: counts the transactions it is asked for."""

    def __init__(self, db: Database):
        self.db = db
        self.gate = asyncio.Event()
        self.gate.set()
        self.runs = 0
        self.waiting = 0

    async def run(self, work: Callable[[Any], Any]) -> Any:
        self.runs += 1
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        return await self.db.run(work)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_lines_are_queued_at_once_and_stored_in_order_before_the_end(database: Database) -> None:
    call_id = new_call(database)
    gated = Gated(database)
    gated.gate.clear()  # the database is slow: nothing it is given finishes until we say so
    recorder = CallRecorder(gated, call_id, delay=3600)  # batches only by size or when flushed

    await recorder.line("caller", "one")
    await recorder.tool_invocation("current_time", {}, allowed=True, result={"t": 1}, reason=None, duration_ms=3)
    first_flush = asyncio.ensure_future(recorder.flush())
    await settle()
    assert gated.waiting == 1 and not first_flush.done(), "flush waits for the write in progress"
    for i in range(2, 9):
        await recorder.line("assistant" if i % 2 else "caller", f"line {i}")  # returns while the database waits
    finishing = asyncio.ensure_future(recorder.finish("completed"))
    await settle()
    assert not finishing.done(), "finish waits for every queued write"

    gated.gate.set()
    await asyncio.wait_for(asyncio.gather(first_flush, finishing), 30)

    record = stored(database, call_id)
    assert [t.text for t in record.transcript] == ["one", *(f"line {i}" for i in range(2, 9))]
    assert [t.tool for t in record.tools] == ["current_time"]
    assert record.call.status == "completed" and record.call.ended_at is not None
    assert record.call.ended_at >= record.transcript[-1].at, "the end is stored after the last line"
    assert gated.runs == 2, "what queued up while the database was busy went in one transaction"
    assert recorder.lines[0] == ("caller", "one")


async def test_a_full_batch_is_written_without_waiting_for_the_delay(database: Database) -> None:
    call_id = new_call(database)
    gated = Gated(database)
    recorder = CallRecorder(gated, call_id, delay=3600, batch_size=4)
    for i in range(4):
        await recorder.line("caller", f"line {i}")
    # the writer runs on its own: no flush, no finish
    await eventually(lambda: len(stored(database, call_id).transcript) == 4, what="the batch written")
    assert [t.text for t in stored(database, call_id).transcript] == [f"line {i}" for i in range(4)]
    assert gated.runs == 1


async def test_update_lands_after_the_lines_before_it_and_returns_once_stored(database: Database) -> None:
    call_id = new_call(database)
    recorder = CallRecorder(database, call_id, delay=3600)
    await recorder.line("caller", "hello")
    await recorder.update(status="in-progress", summary="said hello")
    record = stored(database, call_id)  # no flush: update() itself waited
    assert record.call.status == "in-progress" and record.call.summary == "said hello"
    assert [t.text for t in record.transcript] == ["hello"]


async def test_a_refused_write_is_logged_and_the_others_are_stored(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    call_id = new_call(database)
    recorder = CallRecorder(database, call_id, delay=3600)
    await recorder.line("caller", "before")
    with caplog.at_level(logging.ERROR, logger="tars.calls"):
        await recorder.update(status="no-such-status")  # never raises to the call
    await recorder.line("caller", "after")
    await recorder.finish("completed")
    record = stored(database, call_id)
    assert [t.text for t in record.transcript] == ["before", "after"]
    assert record.call.status == "completed"
    assert any("could not record the call's status" in r.getMessage() for r in caplog.records)


class Broken:
    """A database that is gone."""

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, work: Callable[[Any], Any]) -> Any:
        self.runs += 1
        raise DatabaseError("cannot connect to the database test: connection refused")


async def test_a_database_that_is_gone_is_logged_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    recorder = CallRecorder(Broken(), 7, delay=3600)
    with caplog.at_level(logging.ERROR, logger="tars.calls"):
        await recorder.line("caller", "my PIN is 2468")
        await recorder.tool_invocation("end_call", {}, allowed=True, result={}, reason=None, duration_ms=1)
        await recorder.finish("failed", "model session failed")
    assert recorder.lines == [("caller", "my PIN is 2468")]
    messages = [r.getMessage() for r in caplog.records]
    assert any("could not record 3 writes" in m and "connection refused" in m for m in messages)
    assert not any("2468" in m for m in messages), "what was said never reaches the log"


async def test_lines_recorded_after_a_flush_are_stored_too(database: Database) -> None:
    call_id = new_call(database)
    recorder = CallRecorder(database, call_id, delay=0.01)
    await recorder.line("caller", "first")
    await recorder.flush()
    await recorder.line("system", "reminder 3 delivered")  # after the call: a new writer takes it
    await recorder.flush()
    assert [t.text for t in stored(database, call_id).transcript] == ["first", "reminder 3 delivered"]


class Collect(FrameProcessor):
    """The next (or previous) stage: keeps what reaches it."""

    def __init__(self) -> None:
        super().__init__(enable_direct_mode=True)
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append(frame)


def between(processor: FrameProcessor) -> tuple[Collect, Collect]:
    before, after = Collect(), Collect()
    before.link(processor)
    processor.link(after)
    return before, after


def audio() -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=b"\0" * 640, sample_rate=16000, num_channels=1)


async def test_the_tap_records_what_the_model_service_pushes_and_never_holds_a_frame(database: Database) -> None:
    call_id = new_call(database)
    gated = Gated(database)
    gated.gate.clear()
    recorder = CallRecorder(gated, call_id, delay=0)  # write at once: the first line's write blocks
    service = FrameProcessor(enable_direct_mode=True)  # stands in for Gemini Live
    tap = TranscriptTap(recorder, service)
    aggregator, output = between(service)

    sent_down: list[Frame] = []
    for i in range(3):
        heard = TranscriptionFrame(f"question {i}", "", "2026-11-21T00:00:00Z")
        await service.push_frame(heard, FrameDirection.UPSTREAM)
        await settle()  # the writer takes the line to the (blocked) database
        for piece in ("Answer ", f"number {i}.", ""):
            frame = TTSTextFrame(piece, text_type="sentence") if piece else TTSStoppedFrame()
            sent_down += [frame, audio()]
            await service.push_frame(frame)
            await service.push_frame(sent_down[-1])
        assert aggregator.frames[-1] is heard, "the caller's words went on while their line waits for the database"
    await service.push_frame(TTSTextFrame("Cut ", text_type="sentence"))
    await service.push_frame(TTSTextFrame("off", text_type="sentence"))
    await tap.flush()  # the call ended mid-turn
    assert output.frames[: len(sent_down)] == sent_down, "every frame went on, in order"
    assert gated.waiting == 1 and len(recorder.lines) == 7

    gated.gate.set()
    await asyncio.wait_for(recorder.finish("completed"), 30)
    said = [(t.speaker, t.text) for t in stored(database, call_id).transcript]
    expected = [[("caller", f"question {i}"), ("assistant", f"Answer number {i}.")] for i in range(3)]
    assert said == [*(line for turn in expected for line in turn), ("assistant", "Cut off")]


async def test_keys_become_text_and_the_pin_is_never_passed_on() -> None:
    noted: list[str] = []

    async def note(text: str) -> None:
        noted.append(text)

    keypad = KeypadToText(note, secret="2468", pause=3600)
    _transport, aggregator = between(keypad)
    sound = audio()
    for key in ("1", "2", "4", "6", "8", "#"):
        await keypad.queue_frame(InputDTMFFrame(button=KeypadEntry(key)))
    await keypad.queue_frame(sound)
    texts = [f.text for f in aggregator.frames if isinstance(f, InputTextRawFrame)]
    assert texts == ["[The caller pressed the keys: 1••••#]"]
    assert noted == ["pressed 1••••#"]
    assert not any(isinstance(f, InputDTMFFrame) for f in aggregator.frames)
    assert aggregator.frames[-1] is sound


async def test_a_pin_typed_slowly_is_held_together_and_masked() -> None:
    """A pause longer than the keypad's quiet time in the middle of the PIN does not split it."""
    noted: list[str] = []

    async def note(text: str) -> None:
        noted.append(text)

    keypad = KeypadToText(note, secret="8462", pause=0.01, pin_wait=3600)
    _transport, aggregator = between(keypad)
    for key in ("8", "4"):
        await keypad.queue_frame(InputDTMFFrame(button=KeypadEntry(key)))
    await asyncio.sleep(0.1)  # the caller hesitates mid-PIN, well past the quiet time
    for key in ("6", "2", "#"):
        await keypad.queue_frame(InputDTMFFrame(button=KeypadEntry(key)))
    await eventually(lambda: noted)
    texts = [f.text for f in aggregator.frames if isinstance(f, InputTextRawFrame)]
    assert texts == ["[The caller pressed the keys: ••••#]"]
    assert noted == ["pressed ••••#"]


async def test_a_pin_cut_short_is_masked_when_the_keys_go_quiet() -> None:
    noted: list[str] = []

    async def note(text: str) -> None:
        noted.append(text)

    keypad = KeypadToText(note, secret="8462", pause=0.01, pin_wait=0.02)
    between(keypad)
    for key in ("1", "8", "4", "6"):
        await keypad.queue_frame(InputDTMFFrame(button=KeypadEntry(key)))
    await eventually(lambda: noted)
    assert noted == ["pressed 1••••"]
