"""The emulated model's side of a Live connection: running turns and barge-in.

A turn is what a brain decided (``brain``) put on the wire:

* ``Say`` -> ~100 ms ``modelTurn`` parts of 24 kHz synthetic speech, paced by
  ``LiveOptions.pacing``, with ``outputTranscription`` (later sentences of a turn carry a
  leading space because clients concatenate them): by default several parts a message,
  transcription fragments ahead of the audio and bursts, as the service sends them; one
  part a message and one transcription per sentence after its audio on request
  (``delivery``).
* ``CallTool`` -> one ``toolCall`` frame for consecutive calls, ids ``fc-N``;
  the turn waits for a ``tool_response`` naming every BLOCKING id, then asks the brain;
  NON_BLOCKING calls are answered later, and new input may cancel BLOCKING ones
  (``cancellation``).
* End of turn -> ``generationComplete``, then ``turnComplete`` together with
  top-level ``usageMetadata`` (pipecat warns without it), then a fresh
  ``sessionResumptionUpdate`` when the client asked for resumption; when a turn
  starts, ``resumable: false`` (see ``_open_turn``).
* ``Stall`` -> nothing: from then on what the model hears is kept in
  ``LiveSession.unanswered`` and the brain is not asked, on this connection, on every
  connection of the session, or on every connection of the service (``brain.Stall``).
* Barge-in: the model counts as audible while sending and until its audio
  would have finished playing in real time, even when it was sent faster
  (real clients buffer and play it out). Speech starting then cancels the
  turn: pending BLOCKING calls get ``toolCallCancellation``, then ``interrupted: true``
  and ``turnComplete`` close the turn.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tars.emulators import speech
from tars.emulators.gemini import delivery
from tars.emulators.gemini.brain import Action, CallTool, EndTurn, Say, Search, Stall, Wait, ask
from tars.emulators.gemini.cancellation import NON_BLOCKING, behaviour, blocking_pending, forget
from tars.emulators.gemini.session import LiveOptions, LiveRegistry, LiveSession
from tars.emulators.gemini.wire import b64encode

OUTPUT_RATE = 24000
AUDIO_TOKENS_PER_SECOND = 25


class ModelTurns:
    """Mixin for ``LiveConnection``: the model's turns on one websocket."""

    session: LiveSession | None
    options: LiveOptions
    registry: LiveRegistry
    index: int  # this connection's number in its session (1 = the first)
    _queue: asyncio.Queue[tuple[str, Any]]
    _turn: asyncio.Task[None] | None

    def _init_turns(self) -> None:
        self._turn = None
        self._turn_open = False
        self._said_in_turn = False
        self._speaking = False  # inside _say
        self._playback_until = 0.0
        self._turn_prompt_ms = 0
        self._turn_prompt_chars = 0
        self._turn_output_ms = 0
        self._frame_at = 0.0  # when the client frame being handled arrived
        self._heard_at: float | None = None  # a caller turn ended; no reply audio yet
        self._stalled = False  # a Stall("connection") on this websocket

    async def send(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _resumption_update(self) -> None:
        raise NotImplementedError

    async def _fail(self, exc: BaseException) -> None:
        raise NotImplementedError

    async def _work(self) -> None:
        assert self.session is not None
        session = self.session
        while True:
            kind, text = await self._queue.get()
            if kind == "start" or not session.started:
                session.started = True
            brain = session.brain
            if self.stalled:  # heard, and left unanswered (brain.Stall)
                if kind == "tool_result":
                    text = f"the result of {text[0]}"
                session.unanswered.append((self.index, "the start of the conversation" if kind == "start" else text))
                continue
            try:
                if kind == "start":
                    actions = await ask(brain.on_start(session))
                elif kind == "tool_result":  # a NON_BLOCKING call's result (cancellation)
                    actions = await ask(brain.on_tool_result(session, *text))
                else:
                    actions = await ask(brain.on_user(session, text))
            except Exception as exc:  # a brain bug must fail the test, not hang it
                await self._fail(exc)
                return
            if not actions:
                continue
            self._turn = asyncio.create_task(self._run_turn(actions))
            await asyncio.wait({self._turn})
            if not self._turn.cancelled() and self._turn.exception() is not None:
                await self._fail(self._turn.exception())  # type: ignore[arg-type]
                return

    @property
    def stalled(self) -> bool:
        """Has the model gone quiet here (a ``Stall`` of this connection, its session or the service)?"""
        assert self.session is not None
        return self._stalled or self.session.stalled or self.registry.stalled

    def _stall(self, stall: Stall) -> None:
        assert self.session is not None
        if stall.lasting == "connection":
            self._stalled = True
        elif stall.lasting == "session":
            self.session.stalled = True
        else:
            self.registry.stalled = True

    async def _delay(self) -> None:
        if self.options.response_delay_ms > 0:
            await asyncio.sleep(self.options.response_delay_ms / 1000)

    async def _run_turn(self, actions: Sequence[Action]) -> None:
        assert self.session is not None
        session = self.session
        pending = list(actions)
        await self._delay()
        while pending:
            action = pending.pop(0)
            if isinstance(action, Say):
                await self._open_turn()
                await self._say(action.text)
            elif isinstance(action, Wait):
                await asyncio.sleep(action.ms / 1000)
            elif isinstance(action, EndTurn):
                await self._complete_turn()
            elif isinstance(action, Stall):
                self._stall(action)
                break
            elif isinstance(action, Search):
                await self._open_turn()
                await self._search(action)
            elif isinstance(action, CallTool):
                calls = [action]
                while pending and isinstance(pending[0], CallTool):
                    calls.append(pending.pop(0))  # type: ignore[arg-type]
                await self._open_turn()
                answered = await self._call_tools(calls)
                if not answered:
                    continue  # NON_BLOCKING calls only: the turn goes on
                await self._delay()
                more: list[Action] = []
                for call, response in answered:
                    if self.stalled:  # the result is taken, and left unanswered
                        session.unanswered.append((self.index, f"the result of {call.name}"))
                        continue
                    more += await ask(session.brain.on_tool_result(session, call.name, response))
                pending = more + pending
        await self._complete_turn()

    async def _open_turn(self) -> None:
        """The model starts generating: while it does (or runs tools) the session cannot be
        resumed without loss, and the service says so with ``resumable: false`` and no handle
        (google-genai ``LiveServerSessionResumptionUpdate.resumable``: "It might be not possible
        to resume session at some points. In that case we send update empty new_handle and
        resumable=false. Example of such case could be model executing function calls or just
        generating."). ``_complete_turn`` sends a fresh, resumable handle."""
        if self._turn_open:
            return
        self._turn_open = True
        assert self.session is not None
        if "sessionResumption" in self.session.setup and self.session.ended is None:
            await self.send({"sessionResumptionUpdate": {"resumable": False}})

    async def _say(self, text: str) -> None:
        assert self.session is not None
        if self.session.text_mode:
            await self.send({"serverContent": {"modelTurn": {"parts": [{"text": text}]}}})
            self.session.transcript.append(("model", text))
            return
        audio = speech.encode(text, OUTPUT_RATE, self.options.speech_body_ms)
        step = OUTPUT_RATE * 2 * self.options.chunk_ms // 1000
        # Transcription chunks of one turn are concatenated by clients (pipecat
        # joins TTSTextFrames), so later sentences carry their leading space.
        spoken = f" {text}" if self._said_in_turn else text
        self._said_in_turn = True
        transcribe = self.session.transcribes("output")  # only when the setup asked (live's docstring)
        options = self.options
        started = time.monotonic()
        sent = 0  # bytes of audio sent so far
        self._speaking = True
        try:
            messages = delivery.plan(audio, step, spoken, options.parts_per_message, options.transcription_chars)
            for index, message in enumerate(messages):
                for piece in message.fragments if transcribe else ():
                    await self.send({"serverContent": {"outputTranscription": {"text": piece}}})
                await self.send(delivery.model_turn(message.chunks, OUTPUT_RATE, b64encode))
                now = time.monotonic()
                if self.session.first_audio_at is None:
                    self.session.first_audio_at = now
                if self._heard_at is not None:
                    self.session.turn_timings.append((self._heard_at, now))
                    self._heard_at = None
                chunk_s = sum(len(c) for c in message.chunks) / 2 / OUTPUT_RATE
                self._playback_until = max(self._playback_until, now) + chunk_s
                self._turn_output_ms += int(chunk_s * 1000)
                sent += sum(len(c) for c in message.chunks)
                if (index + 1) % max(1, options.burst_messages):
                    continue  # the rest of the burst goes out at once
                wait = started + sent / 2 / OUTPUT_RATE * options.pacing - now
                await asyncio.sleep(max(0.0, wait))
        finally:
            self._speaking = False
        if transcribe and not options.transcription_chars:
            await self.send({"serverContent": {"outputTranscription": {"text": spoken}}})
        self.session.transcript.append(("model", text))

    async def _search(self, action: Search) -> None:
        """A searched answer: ``serverContent.groundingMetadata`` (BidiGenerateContentServerContent,
        https://ai.google.dev/api/live#bidigeneratecontentservercontent), shaped as the
        GroundingMetadata of https://ai.google.dev/gemini-api/docs/google-search: the
        ``webSearchQueries``, a ``searchEntryPoint.renderedContent`` (the search suggestion chip,
        HTML), ``groundingChunks`` (``web: {uri, title}``; the service's uris are
        vertexaisearch.cloud.google.com redirects and the title the site's domain), and
        ``groundingSupports`` tying a segment of the answer to the chunks it rests on. Then the
        answer is spoken. A session that was not offered the tool cannot search."""
        assert self.session is not None
        if not self.session.google_search:
            raise RuntimeError("emulated model: Search in a session whose setup has no googleSearch tool")
        chunks = [{"web": {"uri": uri, "title": title}} for uri, title in action.sources]
        metadata = {
            "webSearchQueries": list(action.queries),
            "searchEntryPoint": {
                "renderedContent": '<div class="container">'
                + "".join(f'<a class="chip">{q}</a>' for q in action.queries)
                + "</div>"
            },
            "groundingChunks": chunks,
            "groundingSupports": [
                {
                    "segment": {"startIndex": 0, "endIndex": len(action.text.encode()), "text": action.text},
                    "groundingChunkIndices": list(range(len(chunks))),
                }
            ]
            if chunks
            else [],
        }
        self.session.searches.append(metadata)
        await self.send({"serverContent": {"groundingMetadata": metadata}})
        await self._say(action.text)

    async def _call_tools(self, calls: list[CallTool]) -> list[tuple[CallTool, dict[str, Any]]]:
        """Send the calls; wait for the BLOCKING ones' responses (NON_BLOCKING ones are answered later)."""
        assert self.session is not None
        session = self.session
        loop = asyncio.get_running_loop()
        wire: list[dict[str, Any]] = []
        waited: list[tuple[CallTool, asyncio.Future[dict[str, Any]]]] = []
        for call in calls:
            call_id = f"fc-{next(session._call_ids)}"
            fut: asyncio.Future[dict[str, Any]] = loop.create_future()
            session._calls[call_id] = (call.name, fut)
            if behaviour(session, self.options.models, call.name) == NON_BLOCKING:
                session._async_calls.add(call_id)
            else:
                waited.append((call, fut))
            fc = {"id": call_id, "name": call.name, "args": _wire_args(call.args)}
            wire.append(fc)
            session.tool_calls.append({**fc, "t": time.monotonic()})
        await self.send({"toolCall": {"functionCalls": wire}})
        results = await asyncio.gather(*(fut for _, fut in waited))
        return [(call, result) for (call, _), result in zip(waited, results, strict=True)]

    def answer_later(self, name: str, response: dict[str, Any]) -> None:
        """Ask the brain about a NON_BLOCKING call's result once the current turn is over."""
        self._queue.put_nowait(("tool_result", (name, response)))

    def _usage(self) -> dict[str, Any]:
        audio_in = self._turn_prompt_ms * AUDIO_TOKENS_PER_SECOND // 1000
        text_in = (self._turn_prompt_chars + 3) // 4
        out = self._turn_output_ms * AUDIO_TOKENS_PER_SECOND // 1000
        self._turn_prompt_ms = self._turn_prompt_chars = self._turn_output_ms = 0
        modality = "TEXT" if self.session and self.session.text_mode else "AUDIO"
        return {
            "promptTokenCount": audio_in + text_in,
            "responseTokenCount": out,
            "totalTokenCount": audio_in + text_in + out,
            "promptTokensDetails": [
                {"modality": "AUDIO", "tokenCount": audio_in},
                {"modality": "TEXT", "tokenCount": text_in},
            ],
            "responseTokensDetails": [{"modality": modality, "tokenCount": out}],
        }

    async def _complete_turn(self, *, interrupted: bool = False) -> None:
        if not self._turn_open:
            return
        self._turn_open = False
        self._said_in_turn = False
        if not interrupted:
            await self.send({"serverContent": {"generationComplete": True}})
        await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": self._usage()})
        await self._resumption_update()

    def model_audible(self) -> bool:
        """Is model audio being sent or still playing out (by the real-time clock)?"""
        return self._speaking or time.monotonic() < self._playback_until

    async def _maybe_barge_in(self) -> None:
        if self.model_audible():
            await self.interrupt()

    async def stop_turn(self) -> bool:
        """Stop the model's current turn, if one runs (its audio stops too). Was one running?"""
        turn = self._turn
        running = turn is not None and not turn.done()
        if running:
            assert turn is not None
            turn.cancel()
            await asyncio.wait({turn})
        self._speaking = False
        self._playback_until = 0.0
        return running

    async def close_turn(self, *, interrupted: bool) -> None:
        await self._complete_turn(interrupted=interrupted)

    async def interrupt(self) -> None:
        """Barge-in: stop the current reply and tell the client (``interrupted``)."""
        assert self.session is not None
        session = self.session
        session.interruptions += 1
        await self.stop_turn()
        ids = blocking_pending(session)  # NON_BLOCKING calls go on (cancellation)
        if ids:
            forget(session, ids)
            await self.send({"toolCallCancellation": {"ids": ids}})
        await self.send({"serverContent": {"interrupted": True}})
        await self._complete_turn(interrupted=True)


def _wire_args(args: Any) -> Any:
    """A mapping as a JSON object; anything else as it is (a malformed call, on purpose)."""
    return dict(args) if isinstance(args, Mapping) else args
