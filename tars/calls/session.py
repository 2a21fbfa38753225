"""One live call: a Pipecat pipeline between Twilio's media stream and Gemini Live.

    Twilio websocket ⇄ TwilioFrameSerializer ⇄ user aggregator ⇄ GeminiLiveLLMService
                                                ⇄ tool gate ⇄ tools ⇄ assistant aggregator

The model is offered exactly the tools the caller's role grants; every call it makes
goes through the gate (``tars.calls.gate``). The call is written down as it happens
(``tars.calls.recorder``) and, for the roles that record calls, both sides of its audio go
to a WAV (``tars.calls.recording``, tapped in the serializer, written by a thread). If
Gemini drops, pipecat resumes the session with its handle; if it cannot, the caller hears
an apology spoken by Twilio and the call ends, recorded as failed with the reason. A model
that stops answering is nudged, then its session reconnected once (``tars.calls.watchdog``).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pipecat.frames.frames import EndFrame, InputTextRawFrame, LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from tars import metrics, telemetry
from tars.calls.audio import PhoneLineSerializer
from tars.calls.gate import ToolGate
from tars.calls.keypad import KeypadToText
from tars.calls.live_model import CallSetup, function_schemas, live_service
from tars.calls.live_service import GatedGeminiLive, compression
from tars.calls.media_socket import WatchedSocket
from tars.calls.playbook_run import RUNTIME_TOOLS, PlaybookRun
from tars.calls.recorder import CallRecorder, TranscriptTap
from tars.calls.recording import CallRecording, recording_file
from tars.calls.turn_clock import TurnClock
from tars.calls.watchdog import for_call as stall_watchdog
from tars.config.secrets import mask_text
from tars.endpoints import Endpoints
from tars.project import Project
from tars.tools.builtins import ToolContext, ToolError, execute
from tars.tools.call import ToolCall

log = logging.getLogger("tars.calls")

__all__ = ["CallSession", "CallSetup", "function_schemas"]  # where callers have always found them

#: Where a call's ``run_state`` keeps its model session's resumption handle while the call moves
#: to a fresh stream (a keypad handover, a transfer nobody took): ``tars.calls.setup.goal_setup``.
MODEL_SESSION = "model_session"
APOLOGY = "I'm sorry, I'm having technical trouble and have to end this call. Please try again in a few minutes."


class CallSession:
    """Runs one call from the opened media stream to the hang-up."""

    def __init__(
        self,
        project: Project,
        endpoints: Endpoints,
        database: Any,
        outbox: Any,
        setup: CallSetup,
        *,
        playbook: PlaybookRun | None = None,
        live: GatedGeminiLive | None = None,
    ):
        self.project = project
        self.endpoints = endpoints
        self.setup = setup
        self.recorder = CallRecorder(database, setup.call_id, lambda text: mask_text(text, project.secrets))
        self.recorder.lines.extend(setup.earlier)  # a call continued on this stream: what was said before
        self.playbook = playbook
        self.live = live  # the Live service: opened ahead (tars.calls.preopen), else built with the pipeline
        role = project.roles.get(setup.caller.role)
        # Both sides of the line, when the caller's role is recorded (roles.<role>.recording).
        self.recording = (
            CallRecording(recording_file(project.state_dir, setup.call_id)) if role and role.recording else None
        )
        self.context = ToolContext(project, database, setup.caller, self, outbox, setup.call_id, endpoints=endpoints)
        self.gate = ToolGate(
            project,
            setup.caller.role,
            setup.tools,
            lambda call, upstream: execute(self.context, call, upstream),
            self.recorder,
            playbook.policy if playbook else None,
            schemas=playbook.tool_schemas() if playbook else None,
            runtime_tools=RUNTIME_TOOLS if playbook else (),
        )
        self._batches: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self.worker: PipelineWorker | None = None
        self.ending = False
        self.handing_over = False  # the call continues on a new stream (press_digits)
        self.handover: Any = None  # set by the server for goal calls
        self.ask: Any = None  # ask_owner's channel to the owner, set by the server for goal calls
        self.transfer: Any = None  # transfer_call's way to the switchboard, set by the server
        # Asked as the stream ends: does the call go on without it (being put through, which
        # another server may have started)? Set by the server; it stores what the next stream needs.
        self.goes_on: Callable[[], Awaitable[bool]] | None = None
        self.failure: str | None = None
        self.going_away: str | None = None  # timeLeft of the model service's goAway, once sent
        self.session_ends = False  # that goAway is the session's limit, not the connection's
        self.status = "in-progress"
        self.clock = TurnClock(self._turn, metrics.FIRST_REPLY.observe)
        self._context = contextvars.copy_context()  # the stream's, taken again when it runs

    def _spawn(self, coro: Any) -> None:
        # In the stream's context (its trace span), even when called from a model session
        # opened before the stream (tars.calls.preopen), whose tasks carry the webhook's.
        task = asyncio.get_running_loop().create_task(coro, context=self._context.copy())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def model_handle(self) -> str | None:
        """The latest resumable handle of this call's model session (a keypad handover keeps it)."""
        return self.live.resumable_handle if self.live is not None else None

    def run_to_keep(self) -> dict[str, Any] | None:
        """The playbook run as the call's ``run_state``, for the stream that continues the call
        on any server: with the model session's handle, so that stream resumes the same
        conversation (``tars.calls.setup.goal_setup``). None for a call with no playbook."""
        if self.playbook is None:
            return None
        state = self.playbook.state()
        if self.model_handle:
            state[MODEL_SESSION] = self.model_handle
        return state

    # ------------------------------------------------------------------ tool batches
    def start_batch(self, calls: list[ToolCall]) -> None:
        loop = asyncio.get_running_loop()
        futures = {call.id: loop.create_future() for call in calls}
        self._batches.update(futures)

        async def run_batch() -> None:
            try:
                results = await self.gate.run_batch(calls)
            except Exception as exc:  # the gate never raises by design; be safe for the call
                log.exception("tool batch failed")
                results = [{"error": f"internal error: {exc}"} for _ in calls]
            for call, result in zip(calls, results, strict=True):
                if not futures[call.id].done():
                    futures[call.id].set_result(result)

        self._spawn(run_batch())

    async def result_for(self, call: ToolCall) -> dict[str, Any]:
        future = self._batches.pop(call.id, None)
        if future is None:  # not seen as part of a batch: a batch of one
            self.start_batch([call])
            future = self._batches.pop(call.id)
        return await future

    def model_busy(self) -> bool:
        """An answer is under way (``tars.calls.watchdog``): the model speaks, waits on a BLOCKING
        tool call, or its session is moving to a new connection."""
        live = self.live
        return self.clock.replying or (live is not None and (live.waits_on_tool() or live.reconnecting))

    def model_cannot_reconnect(self) -> str | None:
        """Why the model session cannot be reconnected now (a tool call unanswered), if it cannot."""
        return "there is no model session" if self.live is None else self.live.cannot_reconnect()

    async def reconnect_model(self, words: str, heard_at: float) -> str | None:
        """The model stalled: reconnect its session (``GatedGeminiLive.reconnect_stalled``)."""
        if self.live is None:
            return "there is no model session"
        return await self.live.reconnect_stalled(words, heard_at)

    # ------------------------------------------------------------------ controls tools use
    async def end_call(self, reason: str) -> None:
        """Hang up once the goodbye has been spoken (Gemini Live holds EndFrame until its turn ends)."""
        if self.ending:
            return
        self.ending = True
        await self.recorder.line("system", f"call ended by the assistant: {reason}")

        async def later() -> None:
            await asyncio.sleep(0.2)  # let the tool result reach the model first
            if self.worker is not None:
                await self.worker.queue_frame(EndFrame(reason=reason))

        self._spawn(later())

    async def say_to_model(self, text: str) -> None:
        """System text for the model (a reminder, a step change), spoken about at the next pause."""
        if self.worker is not None:
            await self.recorder.line("system", text)
            await self.worker.queue_frame(InputTextRawFrame(text))

    async def press_digits(self, digits: str) -> None:
        """Keys go through Twilio (tones sent as stream audio are unreliable): the call plays the
        digits and opens a fresh media stream, where the playbook run carries on."""

        if self.playbook is None or self.handover is None:
            raise ToolError("pressing keys is only available on goal calls")
        self.handing_over = True
        await self.recorder.line("system", f"pressed {digits} on the phone menu")
        try:
            await self.handover(self, digits)
        except Exception:
            self.handing_over = False
            raise

    async def record_outcome(self, outcome: Mapping[str, Any]) -> dict[str, Any]:
        from tars.tools.builtins import ToolError

        if self.playbook is None:
            raise ToolError("there is no outcome to record on this call")
        result = await self.playbook.record_outcome(outcome)
        await self.recorder.update(outcome=self.playbook.outcome, outcome_source="recorded")
        return result

    async def goto_step(self, step: str) -> dict[str, Any]:
        from tars.tools.builtins import ToolError

        if self.playbook is None:
            raise ToolError("this call follows no playbook")
        return await self.playbook.goto_step(step)

    async def ask_owner(self, question: str) -> str:
        from tars.tools.builtins import ToolError

        if self.ask is None:
            raise ToolError("the owner cannot be asked during this call")
        await self.recorder.line("system", f"asked the owner: {question}")
        answer = await self.ask(question)
        await self.recorder.line("system", f"the owner answered: {answer}")
        return str(answer)

    async def transfer_call(self, target: str, about: str, caller_name: str | None) -> dict[str, Any]:
        """Put the caller through (``tars.telephony.transfers``): refused with a reason, or under way."""
        if self.transfer is None:
            raise ToolError("putting callers through needs the running server (tars serve)")
        return dict(await self.transfer(target, about, caller_name))

    # ------------------------------------------------------------------ the pipeline
    def build(self, websocket: Any) -> PipelineWorker:
        server = self.project.section("server")
        serializer = PhoneLineSerializer(
            stream_sid=self.setup.stream_sid,
            call_sid=self.setup.call_sid,
            account_sid=self.endpoints.twilio_account_sid,
            auth_token=self.endpoints.twilio_auth_token,
            base_url=self.endpoints.twilio_api_base_url,
            clock=self.clock,
            recording=self.recording,
        )
        transport = FastAPIWebsocketTransport(
            websocket,
            FastAPIWebsocketParams(
                audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer
            ),
        )
        llm = self.live or live_service(self.project, self.endpoints, self.setup, self.playbook, self)
        llm.serve(self)
        self.live = llm
        context = LLMContext(messages=[{"role": "user", "content": self.setup.opening}])
        # Gemini Live decides turns itself; pipecat's default strategies would load a local
        # turn-detection model for every call (~200 ms of the event loop, ~10 MB) unused.
        pair = LLMContextAggregatorPair(
            context, user_params=LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies())
        )
        # The transcript is taken from the frames the model service pushes (not a pipeline stage).
        self._tap = TranscriptTap(self.recorder, llm)
        keypad = KeypadToText(lambda text: self.recorder.line("caller", text), self.project.owner.pin)
        pipeline = Pipeline(
            [
                transport.input(),
                keypad,
                pair.user(),
                llm,
                transport.output(),
                pair.assistant(),
            ]
        )
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=24000),
            # pipecat's own spans (conversation, turns, the model) carry what was said: only
            # with telemetry.include_transcripts (tars.telemetry)
            enable_tracing=telemetry.transcripts(),
            conversation_id=str(self.setup.call_id),
            idle_timeout_secs=float(server.get("idle_timeout_seconds", 60)),
        )

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport: Any, _client: Any) -> None:
            await worker.cancel()

        @worker.event_handler("on_pipeline_error")
        async def _error(_worker: Any, frame: Any) -> None:
            if getattr(frame, "fatal", False) or "Max consecutive failures" in str(getattr(frame, "error", "")):
                await self.model_failed(str(getattr(frame, "error", frame)))

        self.worker = worker
        return worker

    async def run(self, websocket: Any) -> None:
        """Run the call to its end; the Call row ends completed or failed, never half-written."""
        websocket = WatchedSocket(websocket)
        worker = self.build(websocket)
        changes: dict[str, Any] = {"status": "in-progress", "started_at": dt.datetime.now(dt.UTC)}
        if self.recording is not None:
            self.recording.start()
            changes["recording_path"] = str(self.recording.path)
        await self.recorder.update(**changes)
        self._context = contextvars.copy_context()
        runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
        limit = float(self.project.section("server").get("max_call_minutes", 30)) * 60
        if self.playbook is not None:
            limit = min(limit, self.playbook.plan.playbook.max_duration_minutes * 60)
        watchdog = asyncio.ensure_future(self._time_limit(limit))
        silence = asyncio.ensure_future(self._silence_policy()) if self.playbook is not None else None
        stall = asyncio.ensure_future(stall_watchdog(self, self.project.section("model")).run())
        log.info("call %s connected: %s", self.setup.call_id, self._who())
        try:
            with metrics.live_call():
                await runner.add_workers(worker)
                await worker.queue_frame(LLMRunFrame())
                await runner.run()
        except Exception as exc:
            log.exception("call %s crashed", self.setup.call_sid)
            self.failure = self.failure or f"internal error: {type(exc).__name__}: {exc}"
        finally:
            watchdog.cancel()
            stall.cancel()
            if silence is not None:
                silence.cancel()
            await self._tap.flush()
            if self.recording is not None:
                await self.recording.close()
            self.failure = self.failure or websocket.failure()
            if not self.failure and self.goes_on is not None:
                self.handing_over = await self._goes_on() or self.handing_over
            self._count()
            # finish() stores the end after every line still queued and waits for all of it.
            if self.failure:
                await self.recorder.finish("failed", self.failure)
            elif not self.handing_over:
                await self.recorder.finish("completed")
            else:  # the call goes on on a fresh stream; what was said so far is stored now
                await self.recorder.flush()

    async def _goes_on(self) -> bool:
        """Whether the call goes on without this stream; a database that cannot say is a no."""
        assert self.goes_on is not None
        try:
            return await self.goes_on()
        except Exception:
            log.exception("call %s: could not tell whether the call goes on elsewhere", self.setup.call_id)
            return False

    def _turn(self, added: float, heard_at: float) -> None:
        """One turn through the call path: in the metrics, and as a span of the call's trace."""
        metrics.TURN_ADDED_LATENCY.observe(added)
        span = telemetry.past_span
        self._context.copy().run(span, "call.turn", heard_at, added_latency_ms=round(added * 1000, 2))

    def _who(self) -> str:
        """The call in a log line: its purpose and the other party by name and role, never a number."""
        caller = self.setup.caller
        if self.setup.purpose == "inbound":
            return f"inbound, from {caller.name or 'an unknown caller'} ({caller.role})"
        book = f" ({self.playbook.plan.playbook.name})" if self.playbook is not None else ""
        return f"{self.setup.purpose} call{book}, to {caller.name or 'a number with no contact'}"

    def _count(self) -> None:
        """The call in the log and the metrics, once it has ended (a handover to a fresh stream
        is not an end)."""
        seconds = time.monotonic() - self.clock.opened_at
        if self.handing_over and not self.failure:
            log.info("call %s goes on without this stream after %.0f s", self.setup.call_id, seconds)
            return
        direction = metrics.direction(self.setup.purpose)
        result = "failed" if self.failure else "completed"
        log.info(
            "call %s ended: %s after %.0f s%s", self.setup.call_id, result, seconds,
            f" ({self.failure})" if self.failure else "",
        )  # fmt: skip
        metrics.CALLS.labels(direction, self.setup.purpose, self.setup.caller.role, result).inc()
        metrics.CALL_DURATION.labels(direction).observe(seconds)

    async def _silence_policy(self) -> None:
        """Goal calls: nudge the other party after a silence, end the call after N unanswered nudges."""
        book = self.playbook.plan.playbook if self.playbook else None
        if book is None:
            return
        nudges = 0
        heard = len(self.recorder.lines)
        quiet_since = asyncio.get_running_loop().time()
        while not self.ending:
            await asyncio.sleep(0.5)
            now = asyncio.get_running_loop().time()
            if len(self.recorder.lines) != heard:  # someone spoke (either side)
                if any(speaker == "caller" for speaker, _ in self.recorder.lines[heard:]):
                    nudges = 0
                heard, quiet_since = len(self.recorder.lines), now
                continue
            if now - quiet_since < book.silence_nudge_after_seconds:
                continue
            if nudges >= book.silence_end_after_nudges:
                await self.end_call(f"no answer after {nudges} nudges")
                return
            nudges += 1
            await self.say_to_model(
                "[System] The other party has been silent. Ask briefly whether they are still there."
            )
            heard, quiet_since = len(self.recorder.lines), now

    async def _time_limit(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.say_to_model("[System] The maximum call length has been reached. Say a brief goodbye now.")
        await self.end_call("maximum call length reached")

    async def model_going_away(self, time_left: str | None, *, session_ends: bool = False) -> None:
        """The Live service announced it will close the connection (``goAway``); ``session_ends``:
        again, right after a handover, so it is the session's own limit (``tars.calls.handover``)."""
        self.going_away = time_left or "unknown"
        self.session_ends = session_ends
        await self.recorder.line("system", f"the model service will close the connection in {self.going_away} (goAway)")
        if session_ends:
            await self.recorder.line("system", "the model session itself ends then: no new connection continues it")

    async def model_connected(self) -> None:
        """A Live connection is open; after a ``goAway`` it is the session resumed."""
        if self.going_away is not None:
            self.going_away = None
            await self.recorder.line("system", "the model session goes on over a new connection")

    async def model_failed(self, reason: str) -> None:
        """Gemini is gone for good: Twilio speaks the apology and hangs up; recorded as failed."""
        if self.failure:
            return
        if self.going_away is not None and self.session_ends:
            why = "" if compression(self.project.section("model")).enabled else "; context_window_compression is off"
            left = self.going_away
            reason = f"the service ended the session at its limit (goAway, time left {left}{why}), then: {reason}"
        elif self.going_away is not None:
            reason = f"the service closed the connection after goAway (time left {self.going_away}), then: {reason}"
        elif self.live is not None and self.live.recovering:
            reason = f"the model stopped answering, and its session could not be reconnected: {reason}"
        self.failure = f"model session failed: {reason}"
        metrics.MODEL_FAILED.inc()
        log.error("call %s: %s", self.setup.call_sid, self.failure)
        twiml = f"<Response><Say>{APOLOGY}</Say><Hangup/></Response>"
        try:
            client = self.endpoints.twilio_client()
            await asyncio.to_thread(lambda: client.calls(self.setup.call_sid).update(twiml=twiml))
        except Exception as exc:  # the socket closing below still ends the call
            log.warning("could not hand the call to Twilio for the apology: %s", exc)
        if self.worker is not None:
            await self.worker.cancel()
