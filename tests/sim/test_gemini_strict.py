"""The Gemini emulator refuses what the real Live API refuses, through the real google-genai.

Each rule and its source is documented where it is enforced (``tars.emulators.gemini.models``,
``tars.emulators.gemini.setup``, ``tars.emulators.gemini.limits``); these tests hold the emulator to them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from google.genai import errors, types

from tars.emulators.gemini.emulator import GeminiEmulator, Say, ScriptedBrain
from tests.sim.test_gemini_emulator import (
    KEY,
    MODEL,
    client_for,
    closed_with,
    live_config,
    raw_socket,
    speak,
    transcribed,
)
from tests.waiting import eventually


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# --- models ---------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gemini-3.8-lvie", "gemini-3.5-flash"], ids=["misspelt", "text-only"])
async def test_live_refuses_a_model_it_does_not_offer_with_1008(model: str) -> None:
    async with GeminiEmulator(api_key=KEY) as emu:
        with pytest.raises(errors.APIError) as info:
            async with client_for(emu).aio.live.connect(model=model, config=live_config()):
                pass
        assert info.value.code == 1008
        assert f"models/{model} is not found for API version v1beta" in str(info.value)
        assert "not supported for bidiGenerateContent" in str(info.value)
        assert emu.sessions == []
        [violation] = emu.violations
        assert violation.code == 1008 and violation.reason.endswith("their supported methods.")


async def test_rest_knows_its_models() -> None:
    async with GeminiEmulator(api_key=KEY) as emu:
        client = client_for(emu)
        model = await client.aio.models.get(model="gemini-3.5-flash")
        assert model.name == "models/gemini-3.5-flash"
        assert "generateContent" in (model.supported_actions or [])
        live = await client.aio.models.get(model=f"models/{MODEL}")
        assert live.supported_actions == ["bidiGenerateContent"]
        with pytest.raises(errors.ClientError) as info:
            await client.aio.models.get(model="gemini-3.5-flsh")
        assert info.value.code == 404 and info.value.status == "NOT_FOUND"
        assert "models/gemini-3.5-flsh is not found for API version v1beta" in str(info.value)
        with pytest.raises(errors.ClientError) as info:
            await client.aio.models.generate_content(model="gemini-3.5-flsh", contents="hello")
        assert info.value.code == 404
        assert "not supported for generateContent" in str(info.value)
        bad = client_for(emu, api_key="wrong")  # held: a dropped client closes its HTTP session
        with pytest.raises(errors.ClientError) as info:
            await bad.aio.models.get(model="gemini-3.5-flash")
        assert info.value.code == 400 and "API key not valid" in str(info.value)
        emu.models.add("gemini-9-test")
        assert (await client.aio.models.get(model="gemini-9-test")).name == "models/gemini-9-test"
        assert emu.rest_requests == []  # nothing reached the responder


# --- setup and tool schemas ---------------------------------------------------------


def setup_with(**fields: Any) -> str:
    return json.dumps({"setup": {"model": f"models/{MODEL}", **fields}})


def tool(parameters: dict[str, Any], name: str = "book") -> list[dict[str, Any]]:
    return [{"functionDeclarations": [{"name": name, "parameters": parameters}]}]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (
            setup_with(speechConfig={}),
            "Invalid JSON payload received. Unknown name \"speechConfig\" at 'setup': Cannot find field.",
        ),
        (
            setup_with(tools=tool({"type": "OBJECT", "$schema": "x"})),
            'Invalid JSON payload received. Unknown name "$schema" at '
            "'setup.tools[0].function_declarations[0].parameters': Cannot find field.",
        ),
        (
            setup_with(tools=tool({"type": "OBJECT", "properties": {"a": {}, "b": {"const": 1}}})),
            'Invalid JSON payload received. Unknown name "const" at '
            "'setup.tools[0].function_declarations[0].parameters.properties[1].value': Cannot find field.",
        ),
        (
            setup_with(tools=tool({"type": "OBJECT", "properties": {"a": {"type": "STRNG"}}})),
            "Invalid value at 'setup.tools[0].function_declarations[0].parameters.properties[0].value.type' "
            '(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), "STRNG"',
        ),
        (
            setup_with(tools=tool({"type": "object"})),
            "Invalid value at 'setup.tools[0].function_declarations[0].parameters.type' "
            '(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), "object"',
        ),
        (
            setup_with(tools=tool({"type": "STRING", "enum": ["a", 2]})),
            "Invalid value at 'setup.tools[0].function_declarations[0].parameters.enum[1]' (TYPE_STRING), 2",
        ),
        (
            setup_with(tools=tool({"type": "OBJECT"}, name="book a table")),
            "setup.tools[0].function_declarations[0].name 'book a table'",
        ),
    ],
    ids=[
        "unknown-setup-field",
        "schema-keyword",
        "nested-unknown",
        "bad-type",
        "lower-case-type",
        "enum-not-string",
        "bad-name",
    ],
)
async def test_invalid_setup_closes_1007_naming_the_field(setup: str, reason: str) -> None:
    async with GeminiEmulator(api_key=KEY) as emu:
        ws = await raw_socket(emu)
        try:
            await ws.send(setup)
            code, said = await closed_with(ws)
        finally:
            await ws.close()
        assert code == 1007
        [violation] = emu.violations
        assert reason in violation.reason
        # A close reason fits a 125-byte control frame: longer ones are cut, as the real
        # service cuts them (google/adk-python#21 ends mid-sentence at "Call ListModels ").
        assert said.encode() == violation.reason.encode()[:123]
        assert emu.sessions == []


async def test_a_valid_tool_schema_from_the_sdk_is_accepted() -> None:
    decl = types.FunctionDeclaration(
        name="book_table",
        description="Book a table.",
        parameters=types.Schema(
            type=types.Type.OBJECT,
            properties={
                "size": types.Schema(type=types.Type.INTEGER, minimum=1),
                "when": types.Schema(type=types.Type.STRING, enum=["lunch", "dinner"]),
                "names": types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING)),
            },
            required=["size"],
        ),
    )
    async with GeminiEmulator(api_key=KEY) as emu:
        config = live_config(tools=[types.Tool(function_declarations=[decl])])
        async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
            assert session.session_id == "session-1"
        assert emu.violations == []
        assert emu.sessions[0].tool_names == ["book_table"]


# --- transcriptions only when asked for --------------------------------------------


async def test_transcriptions_only_when_the_setup_asks() -> None:
    brain = ScriptedBrain([Say("Table booked.")])
    async with GeminiEmulator(api_key=KEY, brain_factory=lambda: brain) as emu:
        config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
        async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
            await speak(session, "book a table")
            turn = [m async for m in session.receive()]
        contents = [m.server_content for m in turn if m.server_content]
        assert any(c.model_turn for c in contents), "the model still answers in audio"
        assert not any(c.input_transcription or c.output_transcription for c in contents)
        assert emu.sessions[0].transcript == [("user", "book a table"), ("model", "Table booked.")]

        brain.position = 0
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            output_audio_transcription=types.AudioTranscriptionConfig(),
        )
        async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
            await speak(session, "book a table")
            turn = [m async for m in session.receive()]
        contents = [m.server_content for m in turn if m.server_content]
        assert not any(c.input_transcription for c in contents)
        assert transcribed(turn) == "Table booked."


# --- session limit ------------------------------------------------------------------


async def test_a_session_without_compression_gets_go_away_then_1011() -> None:
    async with GeminiEmulator(api_key=KEY, session_limit_s=1.0, go_away_lead_s=0.5) as emu:
        async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
            messages: list[types.LiveServerMessage] = []
            with pytest.raises(errors.APIError) as info:
                while True:
                    async for message in session.receive():
                        messages.append(message)
        assert info.value.code == 1011
        assert "Deadline expired before operation could complete." in str(info.value)
        [away] = [m.go_away for m in messages if m.go_away]
        assert away.time_left is not None and away.time_left.endswith("s")
        [s] = emu.sessions
        assert s.ended == (1011, "Deadline expired before operation could complete.")
        assert s.handles and all(h not in emu.live.handles for h in s.handles)
        # The session is over: its handle no longer resumes it.
        config = live_config(handle=s.handles[-1])
        with pytest.raises(errors.APIError) as info:
            async with client_for(emu).aio.live.connect(model=MODEL, config=config):
                pass
        assert info.value.code == 1008


async def test_a_session_with_compression_has_no_limit() -> None:
    compression = types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow(), trigger_tokens=20000)
    async with GeminiEmulator(api_key=KEY, session_limit_s=0.5, go_away_lead_s=0.2) as emu:
        config = live_config(context_window_compression=compression)
        async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
            [s] = emu.sessions
            assert s.compression == {"slidingWindow": {}, "triggerTokens": 20000}
            assert s.compressed
            await eventually(lambda: s.opened_at + 1.0 < time.monotonic(), what="past the limit")
            await speak(session, "still there")
            turn = [m async for m in session.receive()]
        assert turn[-1].server_content.turn_complete
        assert not [m for m in turn if m.go_away] and s.ended is None
        assert "goAway" not in json.dumps(s.sent)


async def test_a_connection_ends_after_its_limit_but_the_session_resumes() -> None:
    compression = types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow())
    async with GeminiEmulator(api_key=KEY, connection_limit_s=1.0, go_away_lead_s=0.5) as emu:
        config = live_config(context_window_compression=compression)
        async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
            messages: list[types.LiveServerMessage] = []
            with pytest.raises(errors.APIError) as info:
                while True:
                    async for message in session.receive():
                        messages.append(message)
        assert info.value.code == 1011
        [left] = [m.go_away.time_left for m in messages if m.go_away]
        assert left is not None and left.endswith("s") and 0 < float(left[:-1]) <= 0.5
        [s] = emu.sessions
        assert s.ended is None, "a connection's end is not the session's"
        emu.options.connection_limit_s = None
        config = live_config(handle=s.handles[-1], context_window_compression=compression)
        async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
            await speak(session, "still there")
            turn = [m async for m in session.receive()]
        assert turn[-1].server_content.turn_complete
        assert emu.sessions == [s] and s.connections == 2


# --- REST structured output -----------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (types.GenerateContentConfig(response_json_schema={"type": "object"}), "needs application/json"),
        (types.GenerateContentConfig(response_schema=types.Schema(type=types.Type.OBJECT)), "needs application/json"),
        (
            types.GenerateContentConfig(
                response_mime_type="application/json",
                response_json_schema={"type": "object"},
                response_schema=types.Schema(type=types.Type.OBJECT),
            ),
            "responseSchema must be omitted",
        ),
    ],
    ids=["json-schema-without-mime", "schema-without-mime", "both-schemas"],
)
async def test_rest_refuses_a_schema_without_its_mime_type(config: types.GenerateContentConfig, fragment: str) -> None:
    async with GeminiEmulator(api_key=KEY) as emu:
        client = client_for(emu)
        with pytest.raises(errors.ClientError) as info:
            await client.aio.models.generate_content(model="gemini-3.5-flash", contents="hi", config=config)
        assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
        assert fragment in str(info.value)
        assert emu.rest_requests == []
        config = types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema={"type": "object"}
        )
        reply = await client.aio.models.generate_content(model="gemini-3.5-flash", contents="hi", config=config)
        assert reply.text == "{}"


async def test_the_session_is_not_resumable_while_the_model_generates() -> None:
    emu = GeminiEmulator(api_key=KEY)
    async with emu, client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        first = await session._receive()  # the handle issued at setup
        await speak(session, "book a table")
        turn = [m async for m in session.receive()]
        after = await session._receive()  # the handle issued when the turn is complete
    assert first.session_resumption_update.resumable is True
    updates = [(i, m.session_resumption_update) for i, m in enumerate(turn) if m.session_resumption_update]
    [(at, closed)] = updates
    assert closed.resumable is False and closed.new_handle is None
    audio = [i for i, m in enumerate(turn) if m.server_content and m.server_content.model_turn]
    assert at < audio[0], "said before the model's first audio"
    assert after.session_resumption_update.resumable is True and after.session_resumption_update.new_handle
