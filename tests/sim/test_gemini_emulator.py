"""The Gemini emulator against the real, unmodified google-genai client and pipecat.

Every test starts its own emulator on a free loopback port and stops it in a
``finally`` (``async with``). Model audio is sent as fast as possible
(``realtime=False``), so the module runs in seconds. Waits are safety nets
(``emu.wait_for``), never timing assertions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pydantic
import pytest
import websockets
from google import genai
from google.genai import errors, types

from tars.emulators import speech
from tars.emulators.gemini.emulator import (
    CallTool,
    EchoBrain,
    FunctionCall,
    GeminiEmulator,
    RestRequest,
    Say,
    ScriptedBrain,
    Stall,
    instance_from_schema,
)
from tars.emulators.gemini.live import KNOWN_SERVER_KEYS, MAX_SERVER_FRAME
from tars.emulators.gemini.wire import b64decode, normalise
from tests.waiting import eventually

KEY = "test-key"
MODEL = "gemini-3.8-live"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # websockets.connect honours HTTPS_PROXY; loopback must never go through one.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
async def gemini_emulator() -> AsyncIterator[GeminiEmulator]:
    emu = GeminiEmulator(api_key=KEY)
    async with emu:
        yield emu
    assert emu.errors == []


def live_config(**extra: Any) -> types.LiveConnectConfig:
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(handle=extra.pop("handle", None)),
        **extra,
    )


async def speak(session: Any, text: str, rate: int = 16000, chunk_ms: int = 100) -> None:
    """Send synthetic speech plus enough silence to end the utterance."""
    audio = speech.encode(text, rate) + speech.silence(700, rate)
    step = rate * 2 * chunk_ms // 1000
    for i in range(0, len(audio), step):
        blob = types.Blob(data=audio[i : i + step], mime_type=f"audio/pcm;rate={rate}")
        await session.send_realtime_input(audio=blob)


class Inbox:
    """Collects every server message of a live session in the background."""

    def __init__(self, session: Any):
        self.session = session
        self.messages: list[types.LiveServerMessage] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                async for message in self.session.receive():
                    self.messages.append(message)
        except Exception as exc:  # the SDK raises APIError when the socket closes
            self.error = exc

    def content(self, field: str) -> list[Any]:
        out = []
        for m in self.messages:
            value = getattr(m.server_content, field, None) if m.server_content else None
            if value:
                out.append(value)
        return out

    def audio(self) -> list[types.Blob]:
        """Every audio part, in order (the service sends several in one message)."""
        return [
            part.inline_data
            for m in self.messages
            if m.server_content and m.server_content.model_turn
            for part in m.server_content.model_turn.parts or []
            if part.inline_data
        ]

    def said(self) -> list[str]:
        """What the model said, a turn at a time: its transcription fragments stitched together
        (the service sends them a few characters at a time), the turn under way last."""
        return spoken(self.messages)

    async def wait(self, predicate: Any, what: str) -> None:
        def done() -> bool:
            if predicate():
                return True
            if self.error is not None:
                raise AssertionError(f"session failed while waiting for {what}: {self.error!r}")
            return False

        await eventually(done, what=what)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def transcribed(messages: list[types.LiveServerMessage], field: str = "output_transcription") -> str:
    """One transcription (``output_transcription`` or ``input_transcription``) stitched together
    from its fragments, as a client must ("you need to get all the parts that you are
    receiving and stitch them", google-gemini/cookbook#951)."""
    return "".join(
        getattr(m.server_content, field).text or ""
        for m in messages
        if m.server_content and getattr(m.server_content, field)
    )


def spoken(messages: list[types.LiveServerMessage]) -> list[str]:
    """The model's output transcription a turn at a time (a turn ends at ``turnComplete`` or
    ``interrupted``), the turn under way last."""
    turns: list[str] = []
    current = ""
    for m in messages:
        content = m.server_content
        if content and content.output_transcription:
            current += content.output_transcription.text or ""
        if content and (content.turn_complete or content.interrupted) and current:
            turns.append(current)
            current = ""
    return [*turns, current] if current else turns


def client_for(emu: GeminiEmulator, **kwargs: Any) -> genai.Client:
    return genai.Client(api_key=kwargs.pop("api_key", KEY), http_options=emu.http_options(**kwargs))


# --- 1. audio turn ------------------------------------------------------------


async def test_sdk_audio_turn(gemini_emulator: GeminiEmulator) -> None:
    emu = gemini_emulator
    client = client_for(emu)
    async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
        assert session.session_id == "session-1"  # from the first frame, setupComplete
        await speak(session, "book a table")
        turn = [m async for m in session.receive()]  # ends at turnComplete
    heard = [
        m.server_content.input_transcription for m in turn if m.server_content and m.server_content.input_transcription
    ]
    assert transcribed(turn, "input_transcription") == "book a table"
    assert heard[-1].finished is True and not any(h.finished for h in heard[:-1])
    audio = [
        part.inline_data
        for m in turn
        if m.server_content and m.server_content.model_turn
        for part in m.server_content.model_turn.parts or []
    ]
    assert audio and all(b.mime_type == "audio/pcm;rate=24000" for b in audio)
    pcm = b"".join(b.data for b in audio)
    det = speech.SpeechDetector(24000)
    assert [u.text for u in det.feed(pcm) + det.flush()] == ["You said: book a table"]
    assert transcribed(turn) == "You said: book a table"
    assert any(m.server_content and m.server_content.generation_complete for m in turn)
    last = turn[-1]
    assert last.server_content.turn_complete is True
    assert last.usage_metadata is not None and last.usage_metadata.total_token_count > 0

    [s] = emu.sessions
    assert s.model == f"models/{MODEL}"
    assert s.transcript == [("user", "book a table"), ("model", "You said: book a table")]
    assert s.audio_bytes_in > 0


# --- 2. tool call round trip -----------------------------------------------------


async def test_sdk_tool_call_roundtrip() -> None:
    brain = ScriptedBrain([CallTool("book_table", {"party_size": 4, "time": "19:00"}), Say("Booked for four.")])
    decl = types.FunctionDeclaration(
        name="book_table",
        description="Book a table.",
        behavior=types.Behavior.BLOCKING,  # the 3.8 models run an undeclared call NON_BLOCKING
        parameters=types.Schema(
            type=types.Type.OBJECT,
            properties={
                "party_size": types.Schema(type=types.Type.INTEGER),
                "time": types.Schema(type=types.Type.STRING),
            },
            required=["party_size"],
        ),
    )
    config = live_config(tools=[types.Tool(function_declarations=[decl])], system_instruction="You are TARS.")
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain) as emu:
        client = client_for(emu)
        async with client.aio.live.connect(model=MODEL, config=config) as session:
            await speak(session, "book a table for four")
            call = None
            async for m in session.receive():
                if m.tool_call:
                    call = m.tool_call.function_calls[0]
                    break
            assert call is not None and call.name == "book_table"
            assert call.args == {"party_size": 4, "time": "19:00"}
            await session.send_tool_response(
                function_responses=types.FunctionResponse(id=call.id, name=call.name, response={"confirmation": "B-42"})
            )
            rest = [m async for m in session.receive()]
        assert spoken(rest) == ["Booked for four."]
        assert rest[-1].server_content.turn_complete

        [s] = emu.sessions
        assert s.system_instruction == "You are TARS."
        # Property names are user data: normalisation must not camelCase them.
        params = s.tools["book_table"]["parameters"]
        assert set(params["properties"]) == {"party_size", "time"}
        assert params["required"] == ["party_size"]
        assert [r["id"] for r in s.tool_results] == [call.id] == [c["id"] for c in s.tool_calls]
        assert s.tool_results[0]["response"] == {"confirmation": "B-42"}
        assert [e.kind for e in brain.events] == ["user", "tool_result"]
        assert brain.events[1].response == {"confirmation": "B-42"}
        assert emu.errors == []


# --- 3. interruption --------------------------------------------------------------


async def test_speech_over_the_model_interrupts(gemini_emulator: GeminiEmulator) -> None:
    emu = gemini_emulator
    client = client_for(emu)
    async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
        inbox = Inbox(session)
        try:
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="Greet the caller.")]),
                turn_complete=True,
            )
            await inbox.wait(lambda: inbox.audio(), "greeting audio")
            # The greeting is still playing out (by the real-time clock) when
            # the caller talks over it.
            await speak(session, "stop please")
            await inbox.wait(lambda: inbox.content("interrupted"), "interrupted")
            await inbox.wait(lambda: "You said: stop please" in inbox.said(), "reply to the barge-in")
        finally:
            await inbox.close()
    [s] = emu.sessions
    assert s.interruptions == 1
    kinds = [next(iter(f.get("serverContent", f))) for f in s.sent]
    assert kinds.index("interrupted") < kinds.index("inputTranscription")
    # (The greeting's line is written once all its audio is sent, which on a busy machine can
    # come after the caller's words: only the reply's place is fixed.)
    assert s.transcript[-1] == ("model", "You said: stop please") and ("user", "stop please") in s.transcript


# --- 4. resumption -----------------------------------------------------------------


async def test_resumption_continues_the_conversation() -> None:
    brain = ScriptedBrain([Say("Hello, this is the emulator."), Say("It is noon.")])
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain) as emu:
        client = client_for(emu)
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            inbox = Inbox(session)
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="Greet.")]),
                turn_complete=True,
            )

            def handles() -> list[str]:
                updates = [m.session_resumption_update for m in inbox.messages if m.session_resumption_update]
                return [u.new_handle for u in updates if u.resumable and u.new_handle]

            await inbox.wait(lambda: len(handles()) >= 2, "handle after the greeting")
            handle = handles()[-1]
            await emu.drop()  # abrupt: no close frame
            await inbox.wait(lambda: inbox.error is not None, "the SDK to notice the drop")
            assert isinstance(inbox.error, errors.APIError) and inbox.error.code == 1006
            await inbox.close()

        async with client.aio.live.connect(model=MODEL, config=live_config(handle=handle)) as session:
            await speak(session, "what time is it")
            turn = [m async for m in session.receive()]
        assert spoken(turn) == ["It is noon."]

        [s] = emu.sessions  # one conversation over two connections
        assert s.connections == 2
        assert [e.kind for e in brain.events] == ["start", "user"]  # no second greeting
        assert s.transcript == [
            ("model", "Hello, this is the emulator."),
            ("user", "what time is it"),
            ("model", "It is noon."),
        ]

        emu.refuse_resumption = True  # a dead session
        with pytest.raises(errors.APIError) as info:
            async with client.aio.live.connect(model=MODEL, config=live_config(handle=handle)):
                pass
        assert info.value.code == 1008

        emu.accepting = False  # the service is down: the handshake itself fails
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with client.aio.live.connect(model=MODEL, config=live_config()):
                pass
        assert refused.value.response.status_code == 503


class QuietOnce:
    """Greets; goes quiet (``Stall(lasting)``) on the first thing it hears; echoes where it answers."""

    def __init__(self, lasting: str):
        self.lasting = lasting
        self.stalled = False

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Hello, this is the emulator.")]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if not self.stalled:
            self.stalled = True
            return [Stall(self.lasting)]
        return [Say(f"You said: {text}")]

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        return []


@pytest.mark.parametrize(
    ("lasting", "cured_by"),
    [("connection", {"resume", "new session"}), ("session", {"new session"}), ("service", set())],
)
async def test_a_stall_lasts_as_long_as_scripted(lasting: str, cured_by: set[str]) -> None:
    """``Stall``: quiet with no error and no close, on this connection, this session or the service."""
    brain = QuietOnce(lasting)
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain) as emu:
        client = client_for(emu)
        greet = types.Content(role="user", parts=[types.Part(text="Greet.")])
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            inbox = Inbox(session)
            await session.send_client_content(turns=greet, turn_complete=True)
            await inbox.wait(lambda: inbox.said() == ["Hello, this is the emulator."], "the greeting")
            [s] = emu.sessions
            await session.send_realtime_input(text="are you there")
            await session.send_realtime_input(text="hello?")
            await inbox.wait(lambda: (1, "hello?") in s.unanswered, "the second words to go unanswered")
            assert inbox.error is None and inbox.said() == ["Hello, this is the emulator."]
            handle = s.handles[-1]
            await inbox.close()

        async with client.aio.live.connect(model=MODEL, config=live_config(handle=handle)) as session:
            inbox = Inbox(session)
            await session.send_realtime_input(text="what time is it")
            if "resume" in cured_by:
                await inbox.wait(lambda: inbox.said() == ["You said: what time is it"], "the resumed answer")
            else:
                await inbox.wait(lambda: (2, "what time is it") in s.unanswered, "the resumed session to stay quiet")
            await inbox.close()

        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            inbox = Inbox(session)
            await session.send_client_content(turns=greet, turn_complete=True)
            fresh = emu.sessions[-1]
            if "new session" in cured_by:
                await inbox.wait(lambda: inbox.said() == ["Hello, this is the emulator."], "a new session's greeting")
            else:
                await inbox.wait(lambda: fresh.unanswered, "the new session to stay quiet")
                assert fresh.unanswered == [(1, "the start of the conversation")]
            await inbox.close()
        assert fresh is not s and emu.violations == [] and emu.errors == []


async def test_go_away_reaches_the_sdk(gemini_emulator: GeminiEmulator) -> None:
    client = client_for(gemini_emulator)
    async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
        inbox = Inbox(session)
        await gemini_emulator.go_away(time_left="5s")
        await inbox.wait(lambda: any(m.go_away for m in inbox.messages), "goAway")
        await inbox.close()
    assert next(m.go_away for m in inbox.messages if m.go_away).time_left == "5s"


async def test_deterministic_end_of_turn_delay_and_pacing() -> None:
    """end_of_turn_after_bytes ends the caller's turn without waiting for silence."""
    one_second = 16000 * 2
    emu = GeminiEmulator(api_key=KEY, end_of_turn_after_bytes=one_second, response_delay_ms=20, pacing=0.05)
    async with emu:
        client = client_for(emu)
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            talk = speech.encode("this caller never pauses at all", 16000)[:one_second]
            for i in range(0, len(talk), 3200):
                blob = types.Blob(data=talk[i : i + 3200], mime_type="audio/pcm;rate=16000")
                await session.send_realtime_input(audio=blob)
            turn = [m async for m in session.receive()]
        assert transcribed(turn, "input_transcription") == "this caller never pauses at all"  # the id survives
        assert turn[-1].server_content.turn_complete
        assert emu.errors == []


# --- 5. loud failures --------------------------------------------------------------


async def test_bad_api_key_raises_1008(gemini_emulator: GeminiEmulator) -> None:
    client = client_for(gemini_emulator, api_key="wrong-key")
    with pytest.raises(errors.APIError) as info:
        async with client.aio.live.connect(model=MODEL, config=live_config()):
            pass
    assert info.value.code == 1008
    assert "API key not valid" in str(info.value)
    assert gemini_emulator.sessions == []


async def raw_socket(emu: GeminiEmulator, path: str | None = None) -> Any:
    url = emu.ws_url if path is None else f"wss://127.0.0.1:{emu.port}{path}"
    return await websockets.connect(url, ssl=emu.client_ssl_context(), additional_headers={"x-goog-api-key": KEY})


async def closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await ws.recv()
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


SETUP = json.dumps({"setup": {"model": f"models/{MODEL}"}})


@pytest.mark.parametrize(
    ("frames", "fragment"),
    [
        ([json.dumps({"realtime_input": {"text": "hi"}})], "First message must be setup"),
        (["not json"], "Invalid JSON"),
        (
            [SETUP, json.dumps({"realtime_input": {"text": "a", "audio_stream_end": True}})],
            "exactly one field",
        ),
        (
            [
                SETUP,
                json.dumps({"tool_response": {"functionResponses": [{"id": "fc-9", "name": "x", "response": {}}]}}),
            ],
            "unknown function call id",
        ),
        ([SETUP, json.dumps({"bogus_message": {}})], 'Unknown name "bogus_message"'),
        ([SETUP, SETUP], "only be sent once"),
    ],
    ids=[
        "before-setup",
        "not-json",
        "two-realtime-fields",
        "unknown-tool-id",
        "unknown-key",
        "setup-twice",
    ],
)
async def test_protocol_violations_close_loudly(
    gemini_emulator: GeminiEmulator, frames: list[str], fragment: str
) -> None:
    ws = await raw_socket(gemini_emulator)
    try:
        for frame in frames:
            await ws.send(frame)
        code, reason = await closed_with(ws)
    finally:
        await ws.close()
    assert code == 1007
    assert fragment in reason
    [violation] = gemini_emulator.violations
    assert fragment in violation.reason


async def test_unknown_path_is_404(gemini_emulator: GeminiEmulator) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await raw_socket(gemini_emulator, "/ws/google.ai.generativelanguage.v1beta.Nope")
    assert info.value.response.status_code == 404


# --- 6. pipecat GeminiLiveLLMService ------------------------------------------------


class PipecatCall:
    """A minimal pipecat pipeline around the real GeminiLiveLLMService."""

    def __init__(self, emu: GeminiEmulator, messages: list[dict[str, Any]], **llm: Any):
        from pipecat.pipeline.pipeline import Pipeline
        from pipecat.pipeline.worker import PipelineParams, PipelineWorker
        from pipecat.processors.aggregators.llm_context import LLMContext
        from pipecat.processors.aggregators.llm_response_universal import (
            LLMContextAggregatorPair,
        )
        from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
        from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
        from pipecat.workers.runner import WorkerRunner

        class Tap(FrameProcessor):
            def __init__(self, into: list[Any], direction: FrameDirection):
                super().__init__()
                self.into, self.direction = into, direction

            async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
                await super().process_frame(frame, direction)
                if direction == self.direction:
                    self.into.append(frame)
                await self.push_frame(frame, direction)

        self.frames: list[Any] = []  # downstream out of the LLM service
        self.upstream: list[Any] = []  # upstream out of the LLM service (transcripts)
        self.llm = GeminiLiveLLMService(api_key=KEY, http_options=emu.http_options(), **llm)
        self.context = LLMContext(messages=messages)
        pair = LLMContextAggregatorPair(self.context)
        pipeline = Pipeline(
            [
                pair.user(),
                Tap(self.upstream, FrameDirection.UPSTREAM),
                self.llm,
                Tap(self.frames, FrameDirection.DOWNSTREAM),
                pair.assistant(),
            ]
        )
        self.worker = PipelineWorker(pipeline, params=PipelineParams(), cancel_on_idle_timeout=False)
        self.runner = WorkerRunner(handle_sigint=False)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from pipecat.frames.frames import LLMRunFrame

        await self.runner.add_workers(self.worker)
        await self.worker.queue_frame(LLMRunFrame())
        self.task = asyncio.create_task(self.runner.run())

    async def stop(self) -> None:
        from pipecat.frames.frames import EndFrame

        assert self.task is not None
        await self.worker.queue_frame(EndFrame())
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 20)
        except TimeoutError:
            await self.worker.cancel()
            await self.task

    def of(self, kind: type) -> list[Any]:
        return [f for f in self.frames if isinstance(f, kind)]

    def of_up(self, kind: type) -> list[Any]:
        return [f for f in self.upstream if isinstance(f, kind)]


def weather_tool() -> Any:
    from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
    from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema

    return ToolsSchema(
        [
            FunctionSchema(
                name="lookup_weather",
                description="Weather for a city.",
                properties={"city": {"type": "string"}},
                required=["city"],
            )
        ]
    )


async def test_pipecat_greets_calls_tool_and_resumes() -> None:
    from pipecat.frames.frames import (
        InputAudioRawFrame,
        InputTextRawFrame,
        TranscriptionFrame,
        TTSAudioRawFrame,
    )

    brain = ScriptedBrain(
        [
            [Say("Hello, this is the emulator."), CallTool("lookup_weather", {"city": "Paris"})],
            Say("It is sunny in Paris."),
            lambda session, event: [Say(f"Pressed {event.text[-1]}.")],
            Say("No rain today."),
        ]
    )
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain) as emu:
        call = PipecatCall(
            emu,
            [{"role": "user", "content": "Greet the caller."}],
            system_instruction="You are TARS.",
            tools=weather_tool(),
        )
        seen: list[dict[str, Any]] = []

        async def lookup_weather(params: Any) -> None:
            seen.append(dict(params.arguments))
            await params.result_callback({"forecast": "sunny"})

        call.llm.register_function("lookup_weather", lookup_weather)
        await call.start()
        try:
            await emu.wait_for(lambda: emu.sessions and len(emu.sessions[0].model_texts()) >= 2, what="tool reply")
            s = emu.sessions[0]
            await emu.wait_for(
                lambda: s.handles and len(s.sent) and "turnComplete" in s.sent[-2].get("serverContent", {}),
                what="turn end",
            )
            # Drop the connection: pipecat reconnects with its handle, no reseed.
            await emu.drop()
            await emu.wait_for(lambda: s.connections == 2 and s.connected, what="resumed connection")
            await call.worker.queue_frame(InputTextRawFrame("DTMF: 5"))
            await emu.wait_for(lambda: "Pressed 5." in s.model_texts(), what="DTMF reply")
            # Caller audio through pipecat (16 kHz) is heard and transcribed.
            audio = speech.encode("is it raining", 16000) + speech.silence(700, 16000)
            for i in range(0, len(audio), 640):
                frame = InputAudioRawFrame(audio=audio[i : i + 640], sample_rate=16000, num_channels=1)
                await call.worker.queue_frame(frame)
            await emu.wait_for(lambda: "No rain today." in s.model_texts(), what="reply to audio")
            # pipecat flushes an unpunctuated transcript after 0.5 s, upstream. (Without a
            # local VAD its user aggregator adds it to the context only after a 5 s timeout.)
            await emu.wait_for(
                lambda: [f.text for f in call.of_up(TranscriptionFrame)] == ["is it raining"],
                what="TranscriptionFrame upstream",
            )
        finally:
            await call.stop()

        assert seen == [{"city": "Paris"}]
        audio = call.of(TTSAudioRawFrame)
        assert audio and {f.sample_rate for f in audio} == {24000}
        [s] = emu.sessions
        assert s.tool_names == ["lookup_weather"]
        assert s.system_instruction == "You are TARS."
        assert [r["response"] for r in s.tool_results] == [{"forecast": "sunny"}]
        assert s.tool_results[0]["id"] == s.tool_calls[0]["id"]
        keys = [(f.connection, f.raw_key) for f in s.frames]
        assert keys[:3] == [(1, "setup"), (1, "client_content"), (1, "realtime_input")]
        # After resumption: setup, then straight to realtime input (no client_content seed).
        assert [k for c, k in keys if c == 2][:2] == ["setup", "realtime_input"]
        assert [e.kind for e in brain.events] == ["start", "tool_result", "user", "user"]
        assert brain.events[2].text == "DTMF: 5"
        # pipecat sends its generationConfig contents in snake_case; we see camelCase.
        assert s.generation_config["maxOutputTokens"] == 4096
        assert next(f for f in s.frames if f.raw_key == "realtime_input").data == {"text": " "}
        messages = call.context.get_messages()
        assert any(m.get("role") == "tool" for m in messages)
        assert emu.errors == [] and emu.violations == []


async def test_pipecat_empty_context_never_greets() -> None:
    """Trap: empty LLMContext + system_instruction only -> no seed, no greeting."""
    from pipecat.frames.frames import InputTextRawFrame

    async with GeminiEmulator(api_key=KEY) as emu:
        call = PipecatCall(emu, [], system_instruction="You are TARS. Greet the caller.")
        await call.start()
        try:
            await emu.wait_for(lambda: emu.sessions, what="setup")
            s = emu.sessions[0]
            # Frames arrive in order: once this text is in, any seed would be too.
            for _ in range(100):
                await call.worker.queue_frame(InputTextRawFrame("marker"))
                if s.user_texts():
                    break
                await asyncio.sleep(0.05)
            await emu.wait_for(lambda: s.user_texts(), what="marker text")
        finally:
            await call.stop()
        assert s.frames_of("clientContent") == []
        assert "Hello, this is the emulator." not in s.model_texts()
        assert s.started is True and s.user_texts()[0] == "marker"


# --- 7. the traps from the reference, one by one -----------------------------------


async def test_tls_only_and_sdk_forces_wss(gemini_emulator: GeminiEmulator) -> None:
    with pytest.raises((websockets.InvalidMessage, OSError, EOFError)):
        ws = await websockets.connect(f"ws://127.0.0.1:{gemini_emulator.port}/ws/x", open_timeout=5)
        await ws.close()
    # The SDK rewrites an http:// base URL to wss://, so TLS is what it speaks.
    opts = gemini_emulator.http_options()
    opts.base_url = f"http://127.0.0.1:{gemini_emulator.port}"
    client = genai.Client(api_key=KEY, http_options=opts)
    async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
        assert session.session_id


async def test_double_slash_path_from_trailing_slash_base_url(
    gemini_emulator: GeminiEmulator,
) -> None:
    client = client_for(gemini_emulator, trailing_slash=True, api_version="v1alpha")
    async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
        assert session.session_id
    paths = [p for _, _, p in gemini_emulator.requests]
    assert paths == ["//ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"]


async def test_url_safe_base64_audio_and_mixed_keys(gemini_emulator: GeminiEmulator) -> None:
    # 0xfb 0xff 0xbf encodes to "-_-_" in the URL-safe alphabet ("+/+/" standard).
    pcm = bytes([0xFB, 0xFF, 0xBF, 0xFB]) * 400
    client = client_for(gemini_emulator)
    async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
        await session.send_realtime_input(audio=types.Blob(data=pcm, mime_type="audio/pcm;rate=16000"))
        await gemini_emulator.wait_for(lambda: gemini_emulator.sessions[0].audio_bytes_in, what="audio")
    [s] = gemini_emulator.sessions
    assert s.audio_bytes_in == len(pcm)
    [frame] = s.frames_of("realtimeInput")
    assert frame.raw_key == "realtime_input"  # the SDK's top-level keys are snake_case
    data = frame.data["audio"]["data"]
    assert "-" in data or "_" in data
    assert b64decode(data) == pcm
    assert frame.data["audio"]["mimeType"] == "audio/pcm;rate=16000"  # sent as mime_type


def test_normalise_and_tolerant_base64() -> None:
    raw = {
        "tool_response": {"function_responses": [{"id": "fc-1", "response": {"snake_case_key": 1}}]},
        "setup": {
            "generation_config": {"max_output_tokens": 5, "responseModalities": ["AUDIO"]},
            "tools": [
                {
                    "function_declarations": [
                        {"parameters": {"properties": {"party_size": {"type": "INTEGER", "min_items": 1}}}}
                    ]
                }
            ],
        },
    }
    out = normalise(raw)
    assert out["toolResponse"]["functionResponses"][0]["response"] == {"snake_case_key": 1}
    assert out["setup"]["generationConfig"] == {
        "maxOutputTokens": 5,
        "responseModalities": ["AUDIO"],
    }
    props = out["setup"]["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]
    assert props == {"party_size": {"type": "INTEGER", "minItems": 1}}
    for text in ("-_-_", "+/+/", "-_8", "+/8=", " -_-_\n"):
        assert b64decode(text)[:2] == bytes([0xFB, 0xFF])


async def test_server_frames_known_keys_parts_of_100ms_under_1mib() -> None:
    long_text = "word " * 60  # ~25 s of audio: many frames, none large
    brain = ScriptedBrain([Say(long_text)])
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain) as emu:
        client = client_for(emu)
        async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
            await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="go")]))
            turn = [m async for m in session.receive()]
        [s] = emu.sessions
        assert turn[-1].server_content.turn_complete
    assert 0 < s.max_frame_bytes < MAX_SERVER_FRAME
    for frame in s.sent:
        assert set(frame) <= KNOWN_SERVER_KEYS
        parts = frame.get("serverContent", {}).get("modelTurn", {}).get("parts")
        if parts is not None:
            assert 1 <= len(parts) <= emu.options.parts_per_message
            assert all(part["inlineData"]["bytes"] <= 24000 * 2 // 10 for part in parts)
    first = s.sent[0]
    assert first == {"setupComplete": {"sessionId": s.id}}


async def test_first_server_frame_is_setup_complete(gemini_emulator: GeminiEmulator) -> None:
    ws = await raw_socket(gemini_emulator)
    try:
        await ws.send(json.dumps({"setup": {"model": f"models/{MODEL}", "sessionResumption": {}}}))
        first = json.loads(await ws.recv())
        second = json.loads(await ws.recv())
    finally:
        await ws.close()
    assert first == {"setupComplete": {"sessionId": "session-1"}}
    assert second["sessionResumptionUpdate"]["resumable"] is True


async def test_sdk_drops_unknown_top_level_keys(gemini_emulator: GeminiEmulator) -> None:
    """Trap: an unknown top-level server key vanishes; a frame of only unknown keys fails."""
    emu = gemini_emulator
    client = client_for(emu)
    async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
        with pytest.raises(AssertionError):
            await emu._connection(None).send({"bogus": {}})  # the emulator refuses to send one
        await emu.send_raw({"bogusKey": {"x": 1}, "serverContent": {"turnComplete": True}})
        turn = [m async for m in session.receive()]
        assert turn[-1].server_content.turn_complete is True
        assert "bogus_key" not in turn[-1].model_dump(exclude_none=True)
        await emu.send_raw({"bogusKey": {"x": 1}})
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises a bare error
            await session._receive()


async def test_sdk_rejects_frames_over_1mib(gemini_emulator: GeminiEmulator) -> None:
    emu = gemini_emulator
    client = client_for(emu)
    async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
        assert (await session._receive()).session_resumption_update  # drain the first handle
        with pytest.raises(AssertionError):
            await emu.send_raw({"serverContent": {"outputTranscription": {"text": "x" * MAX_SERVER_FRAME}}})
        big = json.dumps({"serverContent": {"outputTranscription": {"text": "x" * MAX_SERVER_FRAME}}})
        await emu._connection(None).ws.send_bytes(big.encode())  # bypass the guard
        with pytest.raises(errors.APIError) as info:
            await session._receive()
        # websockets fails the connection (PayloadTooBig); the SDK reports 1006/1009.
        assert info.value.code in (1006, 1009)


# --- 8. REST generateContent ---------------------------------------------------------


class Order(pydantic.BaseModel):
    item: str
    quantity: int
    notes: list[str]
    rush: bool


def order_responder(request: RestRequest) -> Any:
    if request.tools:
        return FunctionCall("book_table", {"party_size": 2})
    return None


async def test_rest_text_json_and_function_call() -> None:
    async with GeminiEmulator(api_key=KEY, responder=order_responder) as emu:
        client = client_for(emu)
        text = await client.aio.models.generate_content(model="gemini-3.5-flash", contents="hello there")
        assert text.text == "Echo: hello there"
        assert text.usage_metadata.total_token_count > 0

        structured = await client.aio.models.generate_content(
            model="gemini-3.5-flash",
            contents="an order",
            config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=Order),
        )
        assert isinstance(structured.parsed, Order)

        json_schema = {
            "type": "object",
            "properties": {
                "when": {"type": "string", "format": "date-time"},
                "n": {"type": "integer", "minimum": 3},
            },
            "required": ["when", "n"],
        }
        raw = await client.aio.models.generate_content(
            model="gemini-3.5-flash",
            contents="a time",
            config=types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=json_schema),
        )
        assert json.loads(raw.text) == {"when": "2026-01-01T09:00:00Z", "n": 3}

        decl = types.FunctionDeclaration(
            name="book_table",
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={"party_size": types.Schema(type=types.Type.INTEGER)},
            ),
        )
        called = await client.aio.models.generate_content(
            model="gemini-3.5-flash",
            contents="book it",
            config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[decl])]),
        )
        assert called.function_calls[0].name == "book_table"
        assert called.function_calls[0].args == {"party_size": 2}

        bad = client_for(emu, api_key="nope")
        with pytest.raises(errors.ClientError) as info:
            await bad.aio.models.generate_content(model="gemini-3.5-flash", contents="hi")
        assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
        assert "API key not valid" in str(info.value)

        paths = [r.model for r in emu.rest_requests]
        assert paths == ["gemini-3.5-flash"] * 4
        assert emu.rest_requests[1].json_mode and emu.rest_requests[1].schema[0] is not None


def test_rest_sync_client_in_thread_mode() -> None:
    import threading

    before = threading.active_count()
    emu = GeminiEmulator(api_key=KEY)
    with emu.running_in_thread():
        client = client_for(emu)
        reply = client.models.generate_content(model="gemini-3.5-flash", contents="from a thread")
        assert reply.text == "Echo: from a thread"
        assert reply.candidates[0].finish_reason == types.FinishReason.STOP
        assert emu.rest_requests[0].text == "from a thread"
        client.close()
    assert threading.active_count() == before


def test_instance_from_gemini_schema() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "kind": {"type": "STRING", "enum": ["a", "b"]},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 2},
            "maybe": {"anyOf": [{"type": "NULL"}, {"type": "NUMBER", "minimum": 1.5}]},
        },
    }
    assert instance_from_schema(schema) == {
        "kind": "a",
        "tags": ["example", "example"],
        "maybe": 1.5,
    }


async def test_echo_brain_is_default_and_threads_are_cleaned_up() -> None:
    import threading

    before = threading.active_count()
    emu = GeminiEmulator(api_key=KEY)
    assert isinstance(emu.options.brain_factory(), EchoBrain)
    await emu.start()
    await emu.stop()
    assert threading.active_count() == before


# --- the text model reading a call transcript --------------------------------


async def test_rest_reads_summaries_and_cited_outcomes_from_the_transcript(gemini_emulator: GeminiEmulator) -> None:
    from google.genai import types

    from tars.calls.aftercall import evidence_schema, transcript_text

    schema = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["booked", "declined"]}, "notes": {"type": "string"}},
    }
    said = [("assistant", "Anything on Wednesday?"), ("system", "[step]"), ("caller", "Yes, you are booked at 3")]
    silent = [("assistant", "Hello, is anyone there?")]
    client = client_for(gemini_emulator)
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=evidence_schema(schema)
    )

    async def ask(lines: list[tuple[str, str]], config: types.GenerateContentConfig | None = None) -> str:
        prompt = f"Read this call.\nTranscript:\n{transcript_text(lines)}"
        reply = await client.aio.models.generate_content(model="gemini-3.5-flash", contents=prompt, config=config)
        return reply.text or ""

    assert json.loads(await ask(said, config)) == {
        "outcome": {"status": "booked"},
        "evidence": [{"line": 2, "quote": "Yes, you are booked at 3"}],
    }
    assert json.loads(await ask(silent, config))["evidence"] == []  # fits the schema, rests on nothing
    assert await ask(said) == "The other party said “Yes, you are booked at 3” (1 of 2 lines)."
    assert await ask(silent) == "The other party never spoke; TARS said: “Hello, is anyone there?”."
