"""Writing a call down as it happens: transcript lines, tool invocations, status.

Writes go to the database from a worker thread, one short transaction each, so a crash
mid-call leaves every finished line stored and nothing half-written. The transcript
comes from Gemini's own transcriptions: the caller's words arrive upstream as
``TranscriptionFrame``s, the assistant's downstream as ``TTSTextFrame`` pieces that are
joined until the turn ends.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    TranscriptionFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

log = logging.getLogger("tars.calls")


class CallRecorder:
    """The database side of one call (``call_id`` is the ``Call`` row)."""

    def __init__(self, database: Any, call_id: int, mask: Callable[[str], str] = lambda s: s):
        self.database = database
        self.call_id = call_id
        self.mask = mask
        self.lines: list[tuple[str, str]] = []  # (speaker, text), also kept in memory for reports

    async def _write(self, work: Callable[[Any], Any]) -> Any:
        try:
            return await self.database.run(work)
        except Exception:  # a recording failure must never take the call down
            log.exception("could not record to the database for call %s", self.call_id)
            return None

    async def line(self, speaker: str, text: str) -> None:
        from tars.store.calls import add_line

        text = self.mask(text.strip())
        if not text:
            return
        self.lines.append((speaker, text))
        await self._write(lambda s: add_line(s, self.call_id, speaker, text))

    async def tool_invocation(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        allowed: bool,
        result: Any,
        reason: str | None,
        duration_ms: int | None,
    ) -> None:
        from tars.store.calls import add_tool_invocation

        await self._write(
            lambda s: add_tool_invocation(
                s,
                self.call_id,
                tool,
                arguments=dict(arguments),
                allowed=allowed,
                result=result,
                reason=reason,
                duration_ms=duration_ms,
            )
        )

    async def update(self, **changes: Any) -> None:
        from tars.store.calls import update_call

        await self._write(lambda s: update_call(s, self.call_id, **changes))

    async def finish(self, status: str, reason: str | None = None) -> None:
        changes: dict[str, Any] = {"status": status, "ended_at": dt.datetime.now(dt.UTC)}
        if reason:
            changes["failure_reason"] = reason
        await self.update(**changes)


class TranscriptTap(FrameProcessor):
    """Passes every frame on; writes what each side said to the recorder.

    Put one instance upstream of the LLM service (it sees the caller's transcriptions
    travelling upstream) and one downstream of it (the assistant's words).
    """

    def __init__(self, recorder: CallRecorder, direction: FrameDirection):
        super().__init__()
        self.recorder = recorder
        self.direction = direction
        self._assistant: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == self.direction:
            await self._note(frame)
        await self.push_frame(frame, direction)

    async def _note(self, frame: Frame) -> None:
        if isinstance(frame, TranscriptionFrame) and self.direction == FrameDirection.UPSTREAM:
            await self.recorder.line("caller", frame.text)
        elif isinstance(frame, TTSTextFrame):
            self._assistant.append(frame.text)
        elif isinstance(frame, TTSStoppedFrame | LLMFullResponseEndFrame | InterruptionFrame):
            await self.flush()

    async def flush(self) -> None:
        if self._assistant:
            text = _join(self._assistant)
            self._assistant.clear()
            await self.recorder.line("assistant", text)


def _join(pieces: list[str]) -> str:
    """Transcription pieces carry their own spacing, mostly; normalise it."""
    return " ".join("".join(pieces).split())
