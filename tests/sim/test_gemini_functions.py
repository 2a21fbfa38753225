"""Function calling on the Gemini emulator's REST side, through the real google-genai: the
declarations go in, ``functionCall`` parts come out, ``functionResponse`` parts go back; what
the real service refuses (``tars.emulators.gemini.request``, each rule with its source) is a 400."""

from __future__ import annotations

import json
import ssl
from typing import Any

import aiohttp
import pytest
from google.genai import errors, types

from tars.emulators.gemini.emulator import GeminiEmulator
from tars.emulators.gemini.rest import Answer, FunctionCall, RestRequest
from tars.scenarios.scenario import ModelTurn, PartyTurn
from tars.scenarios.text_script import TextScript
from tests.sim.test_gemini_emulator import KEY, client_for

TEXT_MODEL = "gemini-3.5-flash"
LIST = types.FunctionDeclaration(
    name="list_reminders",
    description="List the owner's reminders.",
    parameters_json_schema={"type": "object", "properties": {"include_done": {"type": "boolean"}},
                            "additionalProperties": False},
)  # fmt: skip


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def config(*declarations: types.FunctionDeclaration) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        system_instruction="You are TARS.",
        tools=[types.Tool(function_declarations=list(declarations or [LIST]))],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part.from_text(text=text)])


async def test_a_function_call_and_its_response_round_trip() -> None:
    answers = iter([Answer("Let me look.", (FunctionCall("list_reminders", {"include_done": False}),)), "None."])
    seen: list[RestRequest] = []

    def responder(request: RestRequest) -> Any:
        seen.append(request)
        return next(answers)

    async with GeminiEmulator(api_key=KEY, responder=responder) as emu:
        client = client_for(emu)
        contents = [user("what reminders do I have?")]
        first = await client.aio.models.generate_content(model=TEXT_MODEL, contents=contents, config=config())
        [call] = first.function_calls or []
        assert (call.name, call.args) == ("list_reminders", {"include_done": False})
        assert first.candidates[0].content.parts[0].text == "Let me look."
        contents += [
            first.candidates[0].content,
            types.Content(role="user", parts=[types.Part.from_function_response(name="list_reminders",
                                                                                response={"reminders": []})]),
        ]  # fmt: skip
        second = await client.aio.models.generate_content(model=TEXT_MODEL, contents=contents, config=config())
        assert second.text == "None."
    assert list(seen[0].tools) == ["list_reminders"]
    assert seen[0].tools["list_reminders"]["parametersJsonSchema"]["additionalProperties"] is False
    assert seen[1].function_responses == [{"name": "list_reminders", "response": {"reminders": []}}]


async def _post(emu: GeminiEmulator, body: dict[str, Any]) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    url = f"{emu.base_url}/v1beta/models/{TEXT_MODEL}:generateContent"
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.post(url, json=body, headers={"x-goog-api-key": KEY}, ssl=ctx) as response,
    ):
        return response.status, json.loads(await response.text())["error"]["message"] if response.status != 200 else ""


CALL = {"role": "model", "parts": [{"functionCall": {"name": "list_reminders", "args": {}}}]}
RESULT = {"role": "user", "parts": [{"functionResponse": {"name": "list_reminders", "response": {"ok": True}}}]}
ASK = {"role": "user", "parts": [{"text": "what reminders?"}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"contents": [ASK], "temprature": 0}, 'Unknown name "temprature": Cannot find field.'),
        ({"contents": [{"role": "user", "parts": [{"text": "hi", "colour": "red"}]}]},
         "Unknown name \"colour\" at 'contents[0].parts[0]'"),
        ({"contents": [ASK, CALL, {"role": "user", "parts": [
            {"functionResponse": {"id": "1", "name": "list_reminders", "content": {}}}]}]},
         "Unknown name \"content\" at 'contents[2].parts[0].function_response'"),
        ({"contents": [ASK], "tools": [{"functionDeclarations": [
            {"name": "list_reminders", "parameters": {"type": "OBJECT", "additionalProperties": False}}]}]},
         "Unknown name \"additional_properties\" at 'tools[0].function_declarations[0].parameters'"),
        ({"contents": [ASK], "tools": [{"functionDeclarations": [
            {"name": "list reminders", "parametersJsonSchema": {"type": "object"}}]}]},
         "Invalid function name."),
        ({"contents": [ASK, RESULT]}, "function response turn comes immediately after a function call turn"),
        ({"contents": [CALL, RESULT]}, "function call turn comes immediately after a user turn"),
        ({"contents": [ASK, CALL, {"role": "user", "parts": [RESULT["parts"][0], RESULT["parts"][0]]}]},
         "number of function response parts is equal to the number of function call parts"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}, "Please use a valid role"),
    ],
    ids=["unknown-field", "unknown-part-field", "unknown-response-field", "json-schema-in-parameters",
         "bad-function-name", "response-without-call", "call-first", "count-mismatch", "bad-role"],
)  # fmt: skip
async def test_what_the_service_refuses_is_a_400(body: dict[str, Any], message: str) -> None:
    asked: list[RestRequest] = []
    async with GeminiEmulator(api_key=KEY, responder=lambda r: asked.append(r)) as emu:
        status, said = await _post(emu, body)
    assert status == 400
    assert message in said
    assert asked == []  # refused before any model is asked


async def test_the_sdk_sees_the_refusal_as_a_client_error() -> None:
    async with GeminiEmulator(api_key=KEY) as emu:
        client = client_for(emu)
        bad = types.FunctionDeclaration(name="list_reminders", parameters={"type": "OBJECT"},
                                        parameters_json_schema={"type": "object"})  # fmt: skip
        with pytest.raises(errors.ClientError) as info:
            await client.aio.models.generate_content(model=TEXT_MODEL, contents="hi", config=config(bad))
    assert info.value.code == 400
    assert "parameters and parameters_json_schema must not both be set" in str(info.value)


async def test_a_script_in_the_scenario_format_plays_the_text_model() -> None:
    script = TextScript([
        PartyTurn(0, say="what reminders do I have?"),
        ModelTurn(1, tool="list_reminders", args={}, result={"count": 0}),
        ModelTurn(2, say="You have none."),
    ])  # fmt: skip
    async with GeminiEmulator(api_key=KEY, responder=script) as emu:
        client = client_for(emu)
        contents = [user("What reminders do I have?")]
        first = await client.aio.models.generate_content(model=TEXT_MODEL, contents=contents, config=config())
        assert [c.name for c in first.function_calls or []] == ["list_reminders"]
        contents += [
            first.candidates[0].content,
            types.Content(role="user", parts=[types.Part.from_function_response(name="list_reminders",
                                                                                response={"count": 1})]),
        ]  # fmt: skip
        second = await client.aio.models.generate_content(model=TEXT_MODEL, contents=contents, config=config())
    assert second.text == "You have none."
    assert script.finished
    [check] = script.checks
    assert not check.passed and "count" in check.detail  # the result was judged against the turn's


async def test_the_default_model_calls_a_declared_tool_and_answers_from_its_result() -> None:
    async with GeminiEmulator(api_key=KEY) as emu:
        client = client_for(emu)
        contents = [user("What reminders do I have?")]
        first = await client.aio.models.generate_content(model=TEXT_MODEL, contents=contents, config=config())
        assert [c.name for c in first.function_calls or []] == ["list_reminders"]
        result = {"reminders": [{"text": "call mum", "due": "Thu 3 Dec 17:00"}], "count": 1}
        contents += [
            first.candidates[0].content,
            types.Content(role="user", parts=[types.Part.from_function_response(name="list_reminders",
                                                                                response=result)]),
        ]  # fmt: skip
        second = await client.aio.models.generate_content(model=TEXT_MODEL, contents=contents, config=config())
    assert second.text == "You have 1 reminder: call mum (Thu 3 Dec 17:00)."
