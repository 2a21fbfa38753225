"""Gemini Live as a call uses it: pipecat's ``GeminiLiveLLMService`` with the call's tool gate,
its record of the model session (``goAway``, reconnects, failures), long-call settings, and the
reconnect of a session that stalled (``reconnect_stalled``, asked by ``tars.calls.watchdog``).

The service reaches the call only through ``LiveCall`` (what ``CallSession`` offers it), so
this module knows nothing of sessions, playbooks or the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from google.genai.types import Content, Part
from pipecat.services.google.gemini_live.llm import ContextWindowCompressionParams, GeminiLiveLLMService
from pipecat.utils.base_object import BaseObject

from tars import metrics
from tars.calls import recovery
from tars.calls.handover import Handover
from tars.calls.input_hold import InputHold, audio_seconds
from tars.calls.recorder import CallRecorder
from tars.calls.tool_args import ArgsCheck
from tars.calls.turn_clock import STAMP, TurnClock
from tars.tools.call import ToolCall

log = logging.getLogger("tars.calls")


class LiveCall(Protocol):
    """What the Live service needs of the call it serves."""

    @property
    def recorder(self) -> CallRecorder: ...

    @property
    def clock(self) -> TurnClock: ...

    def start_batch(self, calls: list[ToolCall]) -> None: ...

    async def result_for(self, call: ToolCall) -> dict[str, Any]: ...

    async def model_going_away(self, time_left: str | None, *, session_ends: bool = False) -> None: ...

    async def model_connected(self) -> None: ...

    async def model_failed(self, reason: str) -> None: ...


def compression(model: Mapping[str, Any]) -> ContextWindowCompressionParams:
    """``model.context_window_compression``: a sliding window unless turned off. Without it the
    Live API ends an audio session after about 15 minutes, whatever ``max_call_minutes`` says."""
    settings = model.get("context_window_compression") or {}
    return ContextWindowCompressionParams(
        enabled=bool(settings.get("enabled", True)), trigger_tokens=settings.get("trigger_tokens")
    )


class GatedGeminiLive(GeminiLiveLLMService):
    """Gemini Live whose tool calls go through the gate as whole batches.

    pipecat hands each call of a batch to its handler separately; the task planner needs
    the batch, so it is taken here, where the service receives it, and each handler then
    waits for its own call's result.
    """

    def __init__(
        self, *args: Any, session: LiveCall, long_running: Sequence[str] = (), resume: str | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self._call = session  # not _session: the base class keeps its Live session there
        self._cancelled: set[str] = set()  # calls the model cancelled (toolCallCancellation)
        self._handover = Handover()  # goAway: to a new connection at a turn boundary (tars.calls.handover)
        # A call continued on a fresh media stream (a keypad handover) resumes its model session.
        self._session_resumption_handle = resume
        self._opening_after_resume = resume is not None
        self._answered: set[str] = set()  # tool calls whose result the session has had
        self._unsent: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        self._malformed: dict[str, str] = {}  # call id -> what was wrong with its args
        self._names: dict[str, str] = {}  # call id -> function (pipecat forgets on reconnect)
        self._issued_on: dict[str, int] = {}  # call id -> the connection the model called it on
        self._connection = 0  # connections opened so far (1 = the first)
        self._recovery: recovery.Recovery | None = None  # a stalled session being reconnected
        self._connected_once = False
        self.register_function(None, self._handle)
        self._hold = InputHold()  # caller input waits while a BLOCKING call runs (input_hold)
        # Long-running tools (the owner's answer, a goal call, a webhook) must survive the caller
        # speaking meanwhile: on the 3.x models new input cancels a BLOCKING call
        # (tars.emulators.gemini.cancellation). Registered with cancel_on_interruption=False, pipecat
        # declares them NON_BLOCKING and answers with scheduling WHEN_IDLE where the model
        # supports it (pipecat 1.14 _tag_tool_behaviors / _tool_result;
        # https://ai.google.dev/gemini-api/docs/live-api/tools#async-function-calling).
        self._async_tools = frozenset(long_running) if self._supports_non_blocking_tools else frozenset()
        for name in self._async_tools:
            self.register_function(name, self._handle, cancel_on_interruption=False)

    async def _connection_task_handler(self, config: Any) -> None:
        """Count a failed (re)connect as a connection failure, as a dropped session is.

        pipecat 1.14 retries a session that drops while connected (with its resumption
        handle), but an error while connecting — the endpoint answering 503, refusing the
        handle, TLS or DNS failing — escapes its handler and leaves the call silent with
        no error. Here it takes the same path: retry, and after three failures report the
        error so the session can apologise and end the call.
        """
        try:
            await super()._connection_task_handler(config)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if getattr(self, "_disconnecting", False):
                return
            log.warning("Gemini Live connection failed: %s", exc)
            if self._recovery is not None and self._recovery.resumed:
                # The stalled session cannot be resumed (the handle refused, or expired): a new
                # session takes the call over, told what was said so far.
                await self._call.recorder.line(
                    "system", "the stalled model session could not be resumed; a new session is told the call so far"
                )
                self._start_afresh()
                await self._reconnect()
                return
            if self._opening_after_resume and not self._connected_once:
                # The session a keypad handover meant to continue is gone (expired, or ended
                # by the service): the call goes on in a new one, told where it stands.
                self._opening_after_resume = False
                self._session_resumption_handle = None
                await self._call.recorder.line("system", "the earlier model session could not be resumed")
                await self._reconnect()
                return
            if await self._handle_connection_error(exc):
                await asyncio.sleep(0.5)
                await self._reconnect()
            else:
                await self._call.model_failed(str(exc))

    def serve(self, call: LiveCall) -> None:
        """Serve ``call`` from now on (a session opened ahead learns its call when the stream
        arrives, ``tars.calls.preopen``)."""
        self._call = call

    async def _connect(self, session_resumption_handle: str | None = None) -> None:
        if self._connection_task is not None and not self._connection_task.done():
            return  # opened ahead and still connecting: the pipeline's setup() waits for it
        # pipecat's setup() connects without a handle; a continued call has one already.
        await super()._connect(session_resumption_handle or self._session_resumption_handle)

    async def open_ahead(self, task_manager: Any) -> None:
        """Connect before the call's pipeline exists (``tars.calls.preopen``): a connection needs
        only a task manager; the pipeline's setup() later finds the session open (or opening)."""
        await BaseObject.setup(self, task_manager)
        await self._connect()

    async def close_unused(self) -> None:
        """A session opened ahead for a call that never streamed here: closed."""
        await self._disconnect()

    async def _create_initial_response(self, for_reconnect: bool = False) -> None:
        """A resumed session already has the conversation: the opening (which keys were
        pressed, where the playbook stands) goes to it as realtime text, not as a seed of the
        history (client content after the first turn is refused by the 3.x models,
        https://github.com/livekit/agents/issues/5251). A new session replacing a stalled one
        is seeded with the call so far and the caller's unanswered words (``recovery.seed``),
        its first client content, with a turn that asks for the answer."""
        seed = self._recovery.seed if self._recovery is not None else None
        if seed is not None and for_reconnect and self._session is not None:
            self._ready_for_realtime_input = True
            try:
                await self._session.send_client_content(
                    turns=[Content(role="user", parts=[Part(text=seed)])], turn_complete=True
                )
                if self._is_gemini_3:  # 3.x runs no inference on a seed without realtime input
                    await self._session.send_realtime_input(text=" ")
            except Exception as exc:
                await self._handle_send_error(exc)
            return
        if not (self._opening_after_resume and self._session is not None and self._context is not None):
            await super()._create_initial_response(for_reconnect)
            return
        self._opening_after_resume = False
        self._ready_for_realtime_input = True
        users = [m for m in self._context.get_messages() if m.get("role") == "user"]
        opening = str(users[-1].get("content") or "") if users else ""
        if opening.strip():
            await self._send_user_text(opening)

    def _unanswered_calls(self) -> dict[str, str]:
        """Tool calls the model made that have had no result (id -> function)."""
        return {c: n for c, n in self._names.items() if c not in self._answered and c not in self._cancelled}

    def waits_on_tool(self) -> bool:
        """The model waits for a BLOCKING call's result (a NON_BLOCKING one lets it talk meanwhile)."""
        return any(name not in self._async_tools for name in self._unanswered_calls().values())

    @property
    def recovering(self) -> bool:
        """A stalled session is being reconnected (``reconnect_stalled``), not ready yet."""
        return self._recovery is not None

    @property
    def reconnecting(self) -> bool:
        """The old connection is closed and the new one not ready yet (a handover or a recovery)."""
        return self._handover.switching

    def cannot_reconnect(self) -> str | None:
        """Why the session cannot be reconnected now, if it cannot (``reconnect_stalled``)."""
        unanswered = sorted(set(self._unanswered_calls().values()))
        if unanswered:
            return f"{', '.join(unanswered)} had not been answered yet"
        if self._handover.switching or self._session is None:
            return "the model connection was being replaced already"
        return None

    async def reconnect_stalled(self, words: str, heard_at: float) -> str | None:
        """Reconnect a session that has stopped answering; None once under way, else why not.

        "A Gemini Live session can silently stall ... with no transport-close event"; a forced
        reconnect cures it (https://github.com/sonichi/sutando/pull/977). The move is the
        ``goAway`` handover's (``tars.calls.handover``): the old connection closed, the session
        resumed on a new one with its latest resumable handle, the caller's audio since that
        handle sent again; with no handle that resumes it losslessly (``Handover.resumable``),
        or when the resume is refused, a new session told the call so far, as others fall back
        ("resume with the stored handle ... then fall back to a fresh session without
        greeting", https://github.com/aicc2025/sip-to-ai/pull/14). ``words`` (the caller's
        unanswered turn, transcribed at ``heard_at``) reach the new connection in that audio
        when it holds them, else in words. Never with a tool call unanswered: the session it
        was made on is the only one that would take its result (the handover's rule).
        """
        why = self.cannot_reconnect()
        if why is not None:
            return why
        resumed = self._handover.resumable and self._session_resumption_handle is not None
        carried = resumed and self._handover.carries(heard_at)
        self._recovery = recovery.Recovery(words, resumed=resumed, carried=carried)
        self._handover.begin()
        if not resumed:
            self._start_afresh()
        await self._reconnect()
        return None

    def _start_afresh(self) -> None:
        """The recovery goes on in a new session: no handle, no resend, a seed instead."""
        assert self._recovery is not None
        self._recovery.resumed = self._recovery.carried = False
        self._recovery.seed = recovery.seed(self._call.recorder.lines, self._recovery.words)
        self._session_resumption_handle = None
        self._handover.drop_resend()

    @property
    def resumable_handle(self) -> str | None:
        """The latest handle the service said resumes this session (pipecat keeps only those)."""
        return self._session_resumption_handle

    async def _handle_server_message(self, message: Any) -> None:
        """pipecat 1.14 ignores ``goAway``: here the call writes it down (so an end that follows
        has a why) and the session is handed over to a new connection at the next turn
        boundary (``tars.calls.handover``)."""
        if message.go_away is not None:
            metrics.MODEL_GO_AWAY.inc()
            moving = self._handover.noticed(message.go_away.time_left)
            await self._call.model_going_away(message.go_away.time_left, session_ends=not moving)
        if message.tool_call_cancellation is not None:  # pipecat 1.14 ignores it
            await self._calls_cancelled(list(message.tool_call_cancellation.ids or []))
        content = message.server_content
        if message.tool_call is not None or (content is not None and content.model_turn is not None):
            self._handover.busy()
        await super()._handle_server_message(message)
        update = message.session_resumption_update
        if update is not None:
            self._handover.updated(bool(update.resumable and update.new_handle))
        pending = any(c not in self._answered and c not in self._cancelled for c in self._names)
        if self._handover.ready(responding=self._bot_is_responding, tools_pending=pending):
            self._handover.begin()
            self.create_task(self._hand_over(), "handover")

    async def _hand_over(self) -> None:
        """Close this connection and resume the session on a new one (``tars.calls.handover``)."""
        await self._call.recorder.line("system", "the model session moves to a new connection (goAway)")
        await self._reconnect()

    async def _calls_cancelled(self, ids: list[str]) -> None:
        """The model gave up on these calls (new input came while they ran): their results,
        when they come, are not sent ("You do not need to send FunctionResponseParts for the
        cancelled FunctionCallParts", firebase LiveServerToolCallCancellation)."""
        for call_id in ids:
            if call_id in self._cancelled or call_id in self._answered:
                continue
            self._cancelled.add(call_id)
            name = self._names.get(call_id, "a tool")
            await self._call.recorder.line("system", f"the model cancelled {name} (the caller spoke meanwhile)")
            await self._release(self._hold.finish(call_id))

    async def _send_user_audio(self, frame: Any) -> None:
        if self._handover.switching:  # held for the new connection: pipecat would drop it
            self._handover.keep(frame, sent=False)
            return
        if self._hold.holding:
            self._hold.keep("audio", frame, audio_seconds(frame))
            return
        await super()._send_user_audio(frame)
        if self._session is not None and self._ready_for_realtime_input:
            self._handover.keep(frame, sent=True)  # not yet in the state a handle resumes
        received = frame.metadata.get(STAMP)
        if received is not None:
            self._call.clock.sent_to_model(received)

    async def _send_user_text(self, text: str) -> None:
        if self._hold.holding:
            self._hold.keep("text", text)
            return
        await super()._send_user_text(text)

    async def _release(self, held: list[tuple[str, Any]]) -> None:
        """Send the input held back while BLOCKING calls ran, in order (``input_hold``)."""
        for kind, item in held:
            if kind == "audio":
                await self._send_user_audio(item)
            else:
                await self._send_user_text(item)

    async def _handle_msg_model_turn(self, msg: Any) -> None:
        """Every part of a model turn, not only the first.

        pipecat 1.14 reads ``parts[0]`` and drops the rest, but the service may send several
        parts in one message (``Content.parts`` is a list; pipecat's own dispatcher notes that
        "Gemini 3.x can bundle multiple content fields ... on the same message"); a second
        audio part lost is a gap the caller hears. Each part goes through pipecat's handler as
        a message of its own.
        """
        parts = msg.server_content.model_turn.parts or []
        if any(part.inline_data for part in parts):
            self._call.clock.reply_audio_arrived()
        if len(parts) <= 1:
            await super()._handle_msg_model_turn(msg)
            return
        for part in parts:
            turn = msg.server_content.model_turn.model_copy(update={"parts": [part]})
            content = msg.server_content.model_copy(update={"model_turn": turn})
            await super()._handle_msg_model_turn(msg.model_copy(update={"server_content": content}))

    async def _handle_msg_turn_complete(self, message: Any) -> None:
        self._call.clock.reply_ended()
        await super()._handle_msg_turn_complete(message)

    async def _handle_interruption(self) -> None:
        self._call.clock.reply_ended()
        await super()._handle_interruption()

    async def _handle_session_ready(self, session: Any) -> None:
        """A (re)connected session: count the failures from zero, and deliver what waited.

        pipecat 1.14 resets its failure counter only after a connection has stayed up 10 s
        *and* a message arrives, so three drops spaced out in one call, each resumed, ended
        the call. A resumed session is a success: only failures in a row end the call (a
        connect that fails never gets here, so three of those still do).
        """
        session._ws = ArgsCheck(session._ws, self._malformed)
        if self._connected_once:
            self._consecutive_failures = 0
            metrics.MODEL_RESUMED.inc()
        self._connected_once = True
        self._connection += 1
        await self._call.model_connected()
        await super()._handle_session_ready(session)
        unsent, self._unsent = self._unsent, []
        for tool_call_id, tool_name, message, flags in unsent:
            await self._tool_result(tool_call_id, tool_name, message, **flags)
        if self._handover.switching:  # the caller's words since the handle, then while switching
            for frame in self._handover.finish():
                await super()._send_user_audio(frame)
        recovered, self._recovery = self._recovery, None
        if recovered is not None:
            how = "resumed" if recovered.resumed else "a new session, told the call so far"
            await self._call.recorder.line("system", f"the model session goes on over a new connection ({how})")
            if recovered.resumed and not recovered.carried:
                await self._send_user_text(recovery.prompt(recovered.words))
        await self._release(self._hold.release())  # the new connection has no call pending

    async def _tool_result(
        self, tool_call_id: str, tool_name: str, tool_result_message: dict[str, Any], **flags: Any
    ) -> None:
        """Send a result once, and keep one that finishes while the session reconnects.

        pipecat drops a result that arrives with no session (a slow tool outliving a drop);
        here it waits for the session to be back, and since the resumed session no longer
        knows the call, it goes to the model as conversation (``_told_after_resume``).
        A result already sent is never sent again: after a reconnect pipecat forgets what it
        sent and replays every result in the context, which the service refuses
        (1007 "unknown function call id").
        """
        tool_name = self._names.get(tool_call_id, tool_name)  # a response is named, even after a drop
        if flags.get("is_final", True) and tool_call_id in self._answered:
            return
        if tool_call_id in self._cancelled:  # the model gave up on it: a late result is not sent
            if flags.get("is_final", True):
                await self._call.recorder.line("system", f"the result of cancelled {tool_name} was not sent")
            return
        if self._disconnecting or not self._session:
            self._unsent.append((tool_call_id, tool_name, tool_result_message, flags))
            return
        await self._send_result(tool_call_id, tool_name, tool_result_message, **flags)
        if flags.get("is_final", True):
            await self._release(self._hold.finish(tool_call_id))

    async def _send_result(
        self, tool_call_id: str, tool_name: str, tool_result_message: dict[str, Any], **flags: Any
    ) -> None:
        if flags.get("is_final", True):
            self._answered.add(tool_call_id)
        issued = self._issued_on.get(tool_call_id, self._connection)
        if issued != self._connection:
            await self._told_after_resume(tool_name, tool_result_message, final=flags.get("is_final", True))
            return
        await super()._tool_result(tool_call_id, tool_name, tool_result_message, **flags)

    async def _told_after_resume(self, tool_name: str, result: dict[str, Any], *, final: bool) -> None:
        """The result of a call the model made on an earlier connection, as conversation.

        A resumed session does not know calls pending at the drop: the service gives no
        resumable handle while the model is executing function calls (google-genai
        ``LiveServerSessionResumptionUpdate.resumable``), and "the reconnected session won't
        act on a FunctionResponse for a call it didn't issue, so the model stays blocked"
        (verified against the live API: https://github.com/pipecat-ai/pipecat/pull/5497, for
        https://github.com/pipecat-ai/pipecat/issues/5465). So the model is told the result
        in words, and carries on from it.
        """
        if not final:
            return  # an intermediate result of a call the session no longer has: nothing to say
        text = (
            f"[System] The connection to you dropped while {tool_name} was running; it has finished now. "
            f"Its result: {json.dumps(result, default=str)[:4000]}. Carry on from there."
        )
        await self._call.recorder.line("system", f"the result of {tool_name} was given after the reconnect")
        await self._send_user_text(text)

    async def _disconnect(self) -> None:
        """Keep the caller's last words: pipecat drops its unflushed transcription buffer here.

        Input transcriptions without end punctuation wait 0.5 s before pipecat pushes them;
        a call that ends (or a session that reconnects) sooner would lose them.
        """
        buffered = getattr(self, "_user_transcription_buffer", "")
        if buffered.strip():
            self._user_transcription_buffer = ""
            await self._call.recorder.line("caller", buffered)
        await super()._disconnect()

    async def run_function_calls(self, function_calls: Sequence[Any]) -> None:
        calls = [
            ToolCall(fc.tool_call_id, fc.function_name, dict(fc.arguments or {}))
            for fc in function_calls
            if fc.tool_call_id not in self._malformed
        ]
        self._names.update((fc.tool_call_id, fc.function_name) for fc in function_calls)
        if self._is_gemini_3:  # new input would cancel a BLOCKING call: hold it meanwhile
            self._hold.start(fc.tool_call_id for fc in function_calls if fc.function_name not in self._async_tools)
        self._issued_on.update((fc.tool_call_id, self._connection) for fc in function_calls)
        self._call.start_batch(calls)
        await super().run_function_calls(function_calls)

    async def _handle(self, params: Any) -> None:
        problem = self._malformed.pop(params.tool_call_id, None)
        if problem is not None:
            # Malformed model output is the model's mistake, not the call's end: it is told
            # what was wrong, and may call again.
            await self._call.recorder.line("system", f"the model called {params.function_name} with {problem}")
            await params.result_callback({"error": f"{problem}; call {params.function_name} again with an object"})
            return
        result = await self._call.result_for(
            ToolCall(params.tool_call_id, params.function_name, dict(params.arguments or {}))
        )
        await params.result_callback(result)
