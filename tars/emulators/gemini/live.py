"""Gemini Live (``BidiGenerateContent``) over a websocket, as the real SDKs see it.

One ``LiveConnection`` serves one websocket; one ``LiveSession`` is the model
conversation, which outlives its connection when the client resumes it with a
``sessionResumption.handle``. What the wire requires, and why:

* Server frames are JSON with **camelCase top-level keys** from a fixed set
  (``KNOWN_SERVER_KEYS``): google-genai silently drops any other top-level key
  and raises on a frame with none. They go out as binary frames like the real
  service, each **well under 1 MiB** (the SDK connects with ``max_size=2**20``).
* The **first server frame is ``setupComplete``**: ``connect()`` reads it
  before handing the session out.
* Model audio is ``serverContent.modelTurn.parts[].inlineData`` with
  ``mimeType: audio/pcm;rate=24000``, ~100 ms parts, several a frame and in bursts, with
  ``outputTranscription`` in small fragments ahead of the audio, as the service sends them
  (``delivery``; pipecat 1.14 reads only ``parts[0]``); a test may ask for tidy frames
  (``delivery.TIDY``: one part a frame, the sentence's transcription after it). The turn
  ends with ``generationComplete`` and then ``turnComplete`` carrying top-level
  ``usageMetadata`` in the same frame (pipecat warns otherwise).
* Client frames arrive with snake_case top-level keys (``realtime_input``...)
  and mixed nested keys; they are normalised (``wire``). Violations the
  real service rejects close the socket with 1007 and are recorded, so a test
  fails loudly instead of passing against a too-lenient fake.
* Caller speech is found with ``speech.SpeechDetector`` (end of utterance after
  ``silenceDurationMs`` of quiet, 500 ms by default; ``activityEnd`` when the
  client disabled automatic activity detection), answered with
  ``inputTranscription{text, finished}`` and then the brain's turn
  (``turns``), which also handles barge-in.
* Transcriptions only when the setup asks for them: ``inputAudioTranscription`` "If
  set, enables transcription of voice input" (v1beta ``BidiGenerateContentSetup``
  reference, pub.dev google_cloud_ai_generativelanguage_v1beta); a ``Transcription`` "can
  be returned ... if transcription is enabled with the inputAudioTranscription or
  outputAudioTranscription properties" (firebase.google.com/docs/reference/js/
  ai.transcription). pipecat asks for both.
* The setup is checked as the service checks it (``setup``: unknown model 1008,
  unknown fields and bad tool schemas 1007 naming the field path); time limits end
  sessions and connections (``limits``).
* ``realtime_input.text`` is user text for the brain (pipecat's one-space
  "nudge" after a seed is ignored); ``client_content`` with ``turnComplete``
  starts the conversation (brain ``on_start``) or, later, is user text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from tars.emulators import speech
from tars.emulators.gemini.cancellation import cancel_on_input, take_responses
from tars.emulators.gemini.delivery import fragments
from tars.emulators.gemini.limits import enforce_limits, handle_expired
from tars.emulators.gemini.session import (
    ClientFrame,
    LiveOptions,
    LiveRegistry,
    LiveSession,
    Violation,
)
from tars.emulators.gemini.setup import check_setup
from tars.emulators.gemini.turns import ModelTurns
from tars.emulators.gemini.wire import INVALID_ARGUMENT, Base64Error, ProtocolViolation, b64decode, normalise

KNOWN_SERVER_KEYS = frozenset(
    {
        "setupComplete",
        "serverContent",
        "toolCall",
        "toolCallCancellation",
        "usageMetadata",
        "goAway",
        "sessionResumptionUpdate",
        "voiceActivityDetectionSignal",
        "voiceActivity",
    }
)
CLIENT_KEYS = frozenset({"setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate"})
REALTIME_FIELDS = frozenset({"audio", "video", "text", "mediaChunks", "audioStreamEnd", "activityStart", "activityEnd"})
MAX_SERVER_FRAME = 1 << 20
BAD_KEY_REASON = "API key not valid. Please pass a valid API key."
#: The close reason of a resume refused while an older socket of the session is open (``_handshake``).
STILL_OPEN_REASON = "Internal error encountered."


class Refused(ProtocolViolation):
    """A well-formed request the service turns down (an expired handle): recorded in
    ``LiveRegistry.rejected``, like a bad API key, not as the client's violation."""


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    # A close reason must fit in a 125-byte control frame (2 bytes are the code).
    data = reason.encode("utf-8")[:123]
    await ws.close(code=code, message=data)


async def serve_live(request: web.Request, options: LiveOptions, registry: LiveRegistry) -> web.StreamResponse:
    """aiohttp handler for the BidiGenerateContent websocket."""
    if not registry.accepting:
        registry.rejected.append((time.monotonic(), 503, "not accepting connections"))
        return web.Response(status=503, text="The service is currently unavailable.")
    ws = web.WebSocketResponse(autoping=True, max_msg_size=16 << 20)
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="Expected a websocket upgrade.")
    await ws.prepare(request)
    if request.headers.get("x-goog-api-key") != options.api_key:
        # The real service reads the setup, then closes with 1008.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.receive(), timeout=5)
        registry.rejected.append((time.monotonic(), 1008, BAD_KEY_REASON))
        await _close(ws, 1008, BAD_KEY_REASON)
        return ws
    conn = LiveConnection(ws, request, options, registry)
    await conn.run()
    return ws


class LiveConnection(ModelTurns):
    """One websocket: reads client frames, runs model turns, writes server frames."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        options: LiveOptions,
        registry: LiveRegistry,
    ):
        self.ws = ws
        self.request = request
        self.options = options
        self.registry = registry
        self.session: LiveSession | None = None
        self.index = 0
        self._send_lock = asyncio.Lock()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._clock: asyncio.Task[None] | None = None
        self.opened_at = time.monotonic()
        self._init_turns()
        self._detector: speech.SpeechDetector | None = None
        self._vad_disabled = False
        self._end_silence_ms = options.end_silence_ms
        self._speech_bytes = 0  # audio received since the caller's speech began
        self._last_audio = b""  # the end of the previous chunk (an onset may start there)

    # --- lifecycle -------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._handshake()
            assert self.session is not None
            self._worker = asyncio.create_task(self._work(), name=f"{self.session.id}-turns")
            self._clock = asyncio.create_task(enforce_limits(self), name=f"{self.session.id}-clock")
            async for msg in self.ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self._frame_at = time.monotonic()
                    await self._on_frame(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        except Refused as exc:  # the service's answer, not the client's mistake
            if not self.ws.closed:
                await _close(self.ws, exc.code, exc.reason)
        except ProtocolViolation as exc:
            await self._violate(exc)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        except Exception as exc:  # an emulator bug must surface in the test
            if self.session is None:
                self.registry.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                await self._fail(exc)
        finally:
            await self._teardown()

    async def _teardown(self) -> None:
        tasks = [t for t in (self._turn, self._worker, self._clock) if t is not None]
        for task in tasks:
            if not task.done():
                task.cancel()
        pending = [t for t in tasks if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending)
        if self.session is not None:
            session = self.session
            if self.registry.connections.get(session.id) is self:  # not yet resumed elsewhere
                del self.registry.connections[session.id]
                session.connected = False
                session.closed_at = time.monotonic()
            # Calls pending at a drop do not survive the resumption. The service sends no
            # resumable handle while the model is executing function calls ("Example of such
            # case could be model executing function calls ... Resuming session (using previous
            # session token) in such state will result in some data loss", google-genai
            # LiveServerSessionResumptionUpdate.resumable,
            # https://googleapis.github.io/js-genai/release_docs/interfaces/types.LiveServerSessionResumptionUpdate.html),
            # so the resumed session is the one from before the call; and "the reconnected
            # session won't act on a FunctionResponse for a call it didn't issue, so the model
            # stays blocked" (verified against the live API on gemini-2.5-flash-native-audio and
            # gemini-3.1-flash-live-preview, https://github.com/pipecat-ai/pipecat/pull/5497,
            # for https://github.com/pipecat-ai/pipecat/issues/5465). A late response for one is
            # therefore taken without error and without effect (``_on_tool_response``: stale).
            for call_id, (_, fut) in list(session._calls.items()):
                fut.cancel()
                session._stale_calls.add(call_id)
            session._calls.clear()
        if not self.ws.closed:
            await self.ws.close()

    async def _violate(self, exc: ProtocolViolation) -> None:
        sid = self.session.id if self.session else None
        violation = Violation(time.monotonic(), exc.code, exc.reason, sid)
        self.registry.violations.append(violation)
        if self.session is not None:
            self.session.violations.append(violation)
        if not self.ws.closed:
            await _close(self.ws, exc.code, exc.reason)

    async def end_session(self, code: int, reason: str) -> None:
        """The service ends the session (a time limit): closed, and never resumable."""
        assert self.session is not None
        self.registry.end(self.session, code, reason)
        if not self.ws.closed:
            await _close(self.ws, code, reason)

    async def end_connection(self, code: int, reason: str) -> None:
        """The service closes this connection (its lifetime is up); the session may be resumed."""
        if not self.ws.closed:
            await _close(self.ws, code, reason)

    @property
    def still_open(self) -> bool:
        """Neither side has closed this websocket nor dropped its connection yet."""
        transport = self.request.transport
        return not self.ws.closed and transport is not None and not transport.is_closing()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (the client sees 1006)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    # --- sending ---------------------------------------------------------

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one server frame (binary JSON, like the real service)."""
        unknown = set(frame) - KNOWN_SERVER_KEYS
        if unknown:
            raise AssertionError(f"the SDK would drop server keys {sorted(unknown)}")
        await self.send_raw(frame)

    async def send_raw(self, frame: dict[str, Any]) -> None:
        """Send any frame, unchecked (test hook for SDK behaviour)."""
        blob = json.dumps(frame, separators=(",", ":")).encode("utf-8")
        if len(blob) >= MAX_SERVER_FRAME:
            raise AssertionError(f"server frame of {len(blob)} bytes exceeds the SDK's 1 MiB")
        async with self._send_lock:
            if self.ws.closed:
                raise ConnectionResetError("websocket closed")
            await asyncio.shield(self.ws.send_bytes(blob))
        if self.session is not None:
            self.session.max_frame_bytes = max(self.session.max_frame_bytes, len(blob))
            self.session.sent.append(_summarise(frame))
            if self.options.keep_frames:
                self.session.frames_sent.append(frame)

    # --- handshake -------------------------------------------------------

    async def _handshake(self) -> None:
        msg = await self.ws.receive()
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            raise ConnectionResetError("closed before setup")
        raw_key, frame = self._parse(msg.data)
        if raw_key is None or frame is None or "setup" not in frame:
            first = raw_key or "?"
            raise ProtocolViolation(f"{INVALID_ARGUMENT} First message must be setup, got {first}")
        setup = frame["setup"]
        check_setup(setup, api_version=_api_version(self.request.path), models=self.options.models)
        if self.registry.setup_hold is not None:
            await self.registry.setup_hold.wait()  # a connect the test holds open
        if self.options.connect_delay_ms > 0:
            await asyncio.sleep(self.options.connect_delay_ms / 1000)  # a slow connect, as a benchmark sets
        handle = (setup.get("sessionResumption") or {}).get("handle")
        if handle:
            session = self.registry.handles.get(handle)
            lifetime = self.options.handle_lifetime_s
            if session is not None and handle_expired(session.closed_at, session.connected, lifetime):
                self.registry.end(session, 1008, "resumption handle expired")  # every handle of it
                session = None
            if session is None or self.registry.refuse_resumption:
                reason = "Session resumption handle is invalid or expired."
                self.registry.rejected.append((time.monotonic(), 1008, reason))
                raise Refused(reason, 1008)
            old = self.registry.connections.get(session.id)
            if old is not None and old.still_open:
                # The service refuses to resume a session while an earlier socket of it is
                # still open: "Gemini rejects a resume with 1011 while an earlier socket of the
                # same session is still open (verified against the live API)", which is why
                # that client closes the old socket before resuming
                # (https://github.com/aicc2025/sip-to-ai/pull/14). LiveKit's Gemini plugin
                # also closes the active session before it reconnects (livekit/agents,
                # plugins/google/realtime/realtime_api.py ``_main_task``). The source names
                # the code but not the reason text, nor what becomes of the old socket; the
                # strictest reading is taken: the new connection is closed with 1011 and
                # Google's generic INTERNAL text, and the old one carries on untouched.
                self.registry.rejected.append((time.monotonic(), 1011, STILL_OPEN_REASON))
                raise Refused(STILL_OPEN_REASON, 1011)
        else:
            session = self.registry.new_session(self.options.brain_factory(), setup)
        self.session = session
        session.setup = setup
        session.setups.append(setup)
        session.connections += 1
        session.connected = True
        self.index = session.connections
        session.frames.append(ClientFrame(time.monotonic(), "setup", raw_key, setup, self.index))
        self._configure_vad(setup)
        self.registry.connections[session.id] = self
        await self.send({"setupComplete": {"sessionId": session.id}})
        await self._resumption_update()

    def _configure_vad(self, setup: dict[str, Any]) -> None:
        aad = (setup.get("realtimeInputConfig") or {}).get("automaticActivityDetection") or {}
        self._vad_disabled = bool(aad.get("disabled"))
        if aad.get("silenceDurationMs"):
            self._end_silence_ms = int(aad["silenceDurationMs"])

    async def _resumption_update(self) -> None:
        assert self.session is not None
        if "sessionResumption" not in self.session.setup or self.session.ended:
            return  # the real service only issues handles when asked to, for a live session
        handle = self.registry.issue_handle(self.session)
        await self.send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    # --- receiving -------------------------------------------------------

    def _parse(self, data: str | bytes) -> tuple[str | None, dict[str, Any] | None]:
        try:
            raw = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProtocolViolation(f"{INVALID_ARGUMENT} Invalid JSON payload: {exc}") from exc
        if not isinstance(raw, dict) or len(raw) != 1:
            keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise ProtocolViolation(f"{INVALID_ARGUMENT} Expected exactly one message, got {keys}")
        (raw_key,) = raw
        frame = normalise(raw)
        (key,) = frame
        if key not in CLIENT_KEYS:
            raise ProtocolViolation(f'Invalid JSON payload received. Unknown name "{raw_key}"')
        return raw_key, frame

    async def _on_frame(self, data: str | bytes) -> None:
        assert self.session is not None
        raw_key, frame = self._parse(data)
        assert raw_key is not None and frame is not None
        ((key, body),) = frame.items()
        if not isinstance(body, dict):
            raise ProtocolViolation(f"{INVALID_ARGUMENT} {raw_key} must be an object")
        self.session.frames.append(ClientFrame(time.monotonic(), key, raw_key, body, self.index))
        if key == "setup":
            raise ProtocolViolation(f"{INVALID_ARGUMENT} setup may only be sent once")
        if key == "realtimeInput":
            await self._on_realtime(body)
        elif key == "clientContent":
            await self._on_client_content(body)
        elif key == "toolResponse":
            await self._on_tool_response(body)
        elif key == "contextUpdate":
            self._on_context_update(body)

    async def _on_realtime(self, body: dict[str, Any]) -> None:
        fields = [k for k in body if body[k] is not None]
        if len(fields) != 1 or fields[0] not in REALTIME_FIELDS:
            raise ProtocolViolation(f"{INVALID_ARGUMENT} realtime_input needs exactly one field, got {fields}")
        name = fields[0]
        value = body[name]
        if name == "audio":
            await self._on_audio(value)
        elif name == "mediaChunks":
            for chunk in value:
                if str(chunk.get("mimeType", "")).startswith("audio/"):
                    await self._on_audio(chunk)
        elif name == "text":
            if str(value).strip():  # pipecat's gemini-3 nudge is a single space
                await cancel_on_input(self, self.options.models, "text")
                self._user(str(value))
        elif name == "audioStreamEnd" or name == "activityEnd":
            await self._end_of_speech()
        elif name == "activityStart":
            await self._maybe_barge_in()
            await cancel_on_input(self, self.options.models, "speech")

    async def _on_audio(self, blob: dict[str, Any]) -> None:
        assert self.session is not None
        mime = str(blob.get("mimeType", ""))
        if not mime.startswith("audio/pcm"):
            raise ProtocolViolation(f"{INVALID_ARGUMENT} unsupported audio mime type {mime!r}")
        rate = 16000
        for param in mime.split(";")[1:]:
            k, _, v = param.strip().partition("=")
            if k == "rate" and v.isdigit():
                rate = int(v)
        try:
            pcm = b64decode(str(blob.get("data", "")))
        except Base64Error as exc:
            raise ProtocolViolation(f"{INVALID_ARGUMENT} audio data is not base64") from exc
        if self._detector is None or self._detector.rate != rate:
            end_ms = 10**9 if self._vad_disabled else self._end_silence_ms
            self._detector = speech.SpeechDetector(rate, end_ms, self.options.speech_threshold)
        self.session.audio_bytes_in += len(pcm)
        self._turn_prompt_ms += len(pcm) * 500 // rate
        was_speaking = self._detector.speaking
        utterances = self._detector.feed(pcm)
        onset = not was_speaking and (self._detector.speaking or bool(utterances))
        if onset:
            # Count from the first loud sample, not from the start of the chunk: clients
            # that batch audio (pipecat's resampler sends ~95 ms blocks) would otherwise
            # end the turn early by the silence that led the block.
            self._speech_bytes = _from_onset(self._last_audio, pcm, rate) - len(pcm)
            await self._maybe_barge_in()
            await cancel_on_input(self, self.options.models, "speech")
        if onset or was_speaking:
            self._speech_bytes += len(pcm)
        self._last_audio = pcm[-2 * speech.FRAME_MS * rate // 1000 :]
        for utt in utterances:
            await self._heard(utt)
        limit = self.options.end_of_turn_after_bytes
        if limit and self._detector.speaking and self._speech_bytes >= limit:
            await self._end_of_speech()  # deterministic: no wait for trailing silence

    async def _end_of_speech(self) -> None:
        for utt in self._detector.flush() if self._detector is not None else []:
            await self._heard(utt)

    async def _heard(self, utt: speech.Utterance) -> None:
        self._speech_bytes = 0
        self._heard_at = self._frame_at
        assert self.session is not None
        if self.session.transcribes("input"):  # only when the setup asked (module docstring)
            pieces = fragments(utt.text, self.options.transcription_chars)  # delivery
            for i, piece in enumerate(pieces):
                last = {"finished": True} if i == len(pieces) - 1 else {}
                await self.send({"serverContent": {"inputTranscription": {"text": piece, **last}}})
        self._user(utt.text)

    def _user(self, text: str) -> None:
        assert self.session is not None
        self.session.transcript.append(("user", text))
        self._turn_prompt_chars += len(text)
        self._queue.put_nowait(("user", text))

    async def _on_client_content(self, body: dict[str, Any]) -> None:
        assert self.session is not None
        for turn in body.get("turns") or []:
            text = "".join(p.get("text", "") for p in turn.get("parts") or [])
            role = str(turn.get("role", "user"))
            self.session.history.append({"role": role, "text": text})
            self._turn_prompt_chars += len(text)
            if role == "user" and text.strip():
                self.session._pending_text.append(text)
        if not body.get("turnComplete"):
            return
        pending = " ".join(self.session._pending_text)
        self.session._pending_text.clear()
        if not self.session.started:
            self.session.asked_at = self.session.asked_at or time.monotonic()
            self._queue.put_nowait(("start", ""))
        elif pending:
            await cancel_on_input(self, self.options.models, "clientContent")
            self.session.transcript.append(("user", pending))
            self._queue.put_nowait(("user", pending))

    async def _on_tool_response(self, body: dict[str, Any]) -> None:
        await take_responses(self, body.get("functionResponses") or [])

    def _on_context_update(self, body: dict[str, Any]) -> None:
        assert self.session is not None
        setup = dict(self.session.setup)
        if "systemInstruction" in body:
            setup["systemInstruction"] = body["systemInstruction"]
        tools = body.get("tools")
        if isinstance(tools, dict) and "tools" in tools:
            setup["tools"] = tools["tools"]
        self.session.setup = setup

    async def _fail(self, exc: BaseException) -> None:
        """An emulator bug or a send on a dead socket: record it, close with 1011."""
        if isinstance(exc, ConnectionResetError | ConnectionError):
            return
        assert self.session is not None
        self.session.errors.append(f"{type(exc).__name__}: {exc}")
        self.registry.errors.append(f"{self.session.id}: {type(exc).__name__}: {exc}")
        if not self.ws.closed:
            await _close(self.ws, 1011, "Internal error encountered.")


def _api_version(path: str) -> str:
    """``v1beta`` or ``v1alpha``, from the BidiGenerateContent path."""
    return "v1alpha" if ".v1alpha." in path else "v1beta"


def _from_onset(before: bytes, pcm16: bytes, rate: int) -> int:
    """Bytes from the start of speech in ``before + pcm16`` to the end: 1 ms before the first
    loud sample (``speech.ONSET_LEVEL``; a fade-in crosses it ~1 ms late, as in
    ``speech.decode_id``); all of ``pcm16`` if nothing is that loud (quiet speech)."""
    audio = before + pcm16
    x = np.frombuffer(audio[: len(audio) // 2 * 2], dtype="<i2")
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) >= speech.ONSET_LEVEL)
    if not len(loud):
        return len(pcm16)
    return 2 * (len(x) - max(0, int(loud[0]) - rate // 1000))


def _summarise(frame: dict[str, Any]) -> dict[str, Any]:
    """A copy of a sent frame with audio payloads replaced by their length."""
    content = frame.get("serverContent") or {}
    parts = (content.get("modelTurn") or {}).get("parts") or []
    if parts and all("inlineData" in part for part in parts):
        summaries = [
            {
                "inlineData": {
                    "mimeType": p["inlineData"].get("mimeType"),
                    "bytes": len(p["inlineData"].get("data", "")) * 3 // 4,
                }
            }
            for p in parts
        ]
        return {"serverContent": {"modelTurn": {"parts": summaries}}}
    return json.loads(json.dumps(frame))
