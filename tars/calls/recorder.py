"""Writing a call down as it happens: transcript lines, tool invocations, status.

Nothing on the call's audio path waits for the database. A line or a tool invocation is
queued in memory (in order, with the time it happened) and the call carries on; one
writer task per call stores whatever is queued in one transaction, a moment later
(``BATCH_DELAY``) or as soon as ``BATCH_SIZE`` writes are waiting. ``update()`` and
``finish()`` go through the same queue, so they land after every line recorded before
them, and return once everything up to them is stored; ``flush()`` waits for the queue
to empty. A call that ends, crashed or not, is flushed by ``CallSession.run``, so it ends
with every finished line stored. Each transaction is all or nothing: nothing is ever
half-written (a process killed outright loses at most the last ``BATCH_DELAY`` of lines).
A database that fails is logged; the call never hears of it.

The transcript comes from Gemini's own transcriptions: the caller's words arrive upstream
as ``TranscriptionFrame``s, the assistant's downstream as ``TTSTextFrame`` pieces that
are joined until the turn ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    TranscriptionFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.google.frames import LLMSearchResponseFrame

log = logging.getLogger("tars.calls")

#: How long a queued write waits for others to share its transaction (seconds).
BATCH_DELAY = 0.25
#: Write at once when this many are queued.
BATCH_SIZE = 32

Write = tuple[str, Callable[[Any], Any]]  # (what, for the log; work(session))


class CallRecorder:
    """The database side of one call (``call_id`` is the ``Call`` row).

    ``lines`` keeps what was said, (speaker, text), in memory for reports and watchers:
    it is up to date the moment a line is recorded, before the database has it.
    """

    def __init__(
        self,
        database: Any,
        call_id: int,
        mask: Callable[[str], str] = lambda s: s,
        *,
        delay: float = BATCH_DELAY,
        batch_size: int = BATCH_SIZE,
    ):
        self.database = database
        self.call_id = call_id
        self.mask = mask
        self.delay = delay
        self.batch_size = batch_size
        self.lines: list[tuple[str, str]] = []
        self._queue: list[Write] = []
        self.sources: list[dict[str, Any]] = []  # Google Search grounding (note_sources)
        self._writer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # write what is queued now, without waiting for company
        self._flushing = 0  # flush() calls waiting: no batching delay meanwhile

    # ------------------------------------------------------------------ recording
    def note(self, speaker: str, text: str) -> None:
        """Record a line (stored a moment later); for code that cannot await."""
        from tars.store.calls import add_line

        text = self.mask(text.strip())
        if not text:
            return
        self.lines.append((speaker, text))
        at = _now()
        self._queue_write("a transcript line", lambda s: add_line(s, self.call_id, speaker, text, at))

    def note_sources(self, found: list[dict[str, Any]]) -> None:
        """Web pages Google Search grounding drew on (stored with the call a moment later):
        each page once, with every piece of the answer it supports."""
        from tars.store.calls import update_call

        for source in found:
            known = next((s for s in self.sources if s["uri"] == source["uri"]), None)
            if known is None:
                self.sources.append({**source, "supports": list(source.get("supports", []))})
            else:
                known["supports"] += [t for t in source.get("supports", []) if t not in known["supports"]]
        sources = [dict(s) for s in self.sources]
        self._queue_write("the call's sources", lambda s: update_call(s, self.call_id, sources=sources))

    async def line(self, speaker: str, text: str) -> None:
        """Record a line; returns at once (it is stored a moment later)."""
        self.note(speaker, text)

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
        """Record a tool the model asked for; returns at once (stored a moment later)."""
        from tars.store.calls import add_tool_invocation

        arguments, at = dict(arguments), _now()
        self._queue_write(
            f"the {tool} invocation",
            lambda s: add_tool_invocation(
                s,
                self.call_id,
                tool,
                arguments=arguments,
                allowed=allowed,
                result=result,
                reason=reason,
                duration_ms=duration_ms,
                at=at,
            ),
        )

    async def update(self, **changes: Any) -> None:
        """Change the Call row, after every line recorded so far; returns once stored."""
        from tars.store.calls import update_call

        self._queue_write("the call's " + ", ".join(changes), lambda s: update_call(s, self.call_id, **changes))
        await self.flush()

    async def finish(self, status: str, reason: str | None = None) -> None:
        """The call's end: stored after every line and tool invocation recorded before it."""
        changes: dict[str, Any] = {"status": status, "ended_at": _now()}
        if reason:
            changes["failure_reason"] = reason
        await self.update(**changes)

    async def flush(self) -> None:
        """Wait until everything recorded so far is stored (or has failed and been logged)."""
        self._flushing += 1
        try:
            while self._queue or (self._writer is not None and not self._writer.done()):
                writer = self._writer
                if writer is None or writer.done():  # a writer cancelled with work left
                    writer = self._writer = asyncio.get_running_loop().create_task(self._write_queued())
                self._wake.set()
                await asyncio.wait({writer})  # never cancels the writer if we are cancelled
        finally:
            self._flushing -= 1

    # ------------------------------------------------------------------ the writer
    def _queue_write(self, what: str, work: Callable[[Any], Any]) -> None:
        self._queue.append((what, work))
        if len(self._queue) >= self.batch_size:
            self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())

    async def _write_queued(self) -> None:
        """Store the queue, batch by batch, until it is empty; then end (the next write starts
        a new writer)."""
        while self._queue:
            if not self._flushing and len(self._queue) < self.batch_size:
                self._wake.clear()
                with suppress(TimeoutError):
                    async with asyncio.timeout(self.delay):
                        await self._wake.wait()
            batch, self._queue = self._queue, []
            await self._store(batch)

    async def _store(self, batch: list[Write]) -> None:
        from tars.store.errors import DatabaseError

        def unit(session: Any) -> None:
            for _what, work in batch:
                work(session)

        try:
            await self.database.run(unit)
        except DatabaseError as exc:  # the database itself (locked, read-only, gone): say so once
            log.error("could not record %s for call %s: %s", _describe(batch), self.call_id, exc)
        except Exception:  # a recording failure must never take the call down
            if len(batch) == 1:
                log.exception("could not record %s for call %s", batch[0][0], self.call_id)
                return
            for write in batch:  # one write was refused: store the others without it
                await self._store([write])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _describe(batch: list[Write]) -> str:
    return batch[0][0] if len(batch) == 1 else f"{len(batch)} writes ({', '.join(w for w, _ in batch[:3])}, …)"


class TranscriptTap:
    """Writes what each side said to the recorder, from the frames the LLM service pushes.

    Gemini Live pushes the caller's words upstream as ``TranscriptionFrame``s and the
    assistant's downstream as ``TTSTextFrame`` pieces, ended by ``TTSStoppedFrame``,
    ``LLMFullResponseEndFrame`` or an ``InterruptionFrame``. The tap is not a pipeline
    stage: it listens to the service's ``on_before_push_frame`` event (pipecat's, called
    for every frame the service pushes, either way), so each audio frame of the call costs
    it one quick look instead of two trips through pipeline stages of its own. It never
    waits: lines are queued on the recorder.
    """

    def __init__(self, recorder: CallRecorder, service: FrameProcessor):
        self.recorder = recorder
        self._assistant: list[str] = []
        service.add_event_handler("on_before_push_frame", self._pushed)

    def _pushed(self, _service: FrameProcessor, frame: Frame) -> None:
        if isinstance(frame, TTSTextFrame):
            self._assistant.append(frame.text)
        elif isinstance(frame, TranscriptionFrame):
            self.recorder.note("caller", frame.text)
        elif isinstance(frame, TTSStoppedFrame | LLMFullResponseEndFrame | InterruptionFrame):
            self._end_turn()
        elif isinstance(frame, LLMSearchResponseFrame) and frame.origins:
            # pipecat's reading of the grounding metadata Gemini sent with a searched answer.
            self.recorder.note_sources(
                [
                    {
                        "uri": o.site_uri or "",
                        "title": o.site_title or "",
                        "supports": [r.text for r in o.results if r.text],
                    }
                    for o in frame.origins
                    if o.site_uri
                ]
            )

    def _end_turn(self) -> None:
        if self._assistant:
            text = _join(self._assistant)
            self._assistant.clear()
            self.recorder.note("assistant", text)

    async def flush(self) -> None:
        """Record the assistant's words of an unfinished turn (queued, as any line)."""
        self._end_turn()


def _join(pieces: list[str]) -> str:
    """Transcription pieces carry their own spacing, mostly; normalise it."""
    return " ".join("".join(pieces).split())
