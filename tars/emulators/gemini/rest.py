"""Gemini REST ``models/{model}:generateContent`` for the emulator.

Text in, text out through a pluggable *responder*. What the wire requires:

* Path ``/{v1beta|v1alpha|v1}/models/{model}:generateContent`` (or
  ``:streamGenerateContent``, answered as one server-sent event when
  ``alt=sse``); the SDK may add leading slashes.
* Auth is the ``x-goog-api-key`` header. A wrong key is ``400`` with Google's
  error envelope and ``INVALID_ARGUMENT``, which google-genai raises as
  ``ClientError``.
* JSON mode (``generationConfig.responseMimeType: application/json`` with a
  ``responseSchema`` (Gemini Schema, upper-case types) or a
  ``responseJsonSchema`` (JSON Schema)) must answer with a JSON text that
  validates, because the SDK parses it into the caller's pydantic model.
  When the responder gives nothing, a minimal valid instance is generated from
  the schema. The emulator's default responder (``transcript_reader.default_responder``)
  answers summaries and extractions from the call transcript in the prompt.
* Function calling (https://ai.google.dev/gemini-api/docs/function-calling): the request
  declares ``tools[].functionDeclarations``; the model answers with ``functionCall`` parts
  (a responder returns ``FunctionCall``, or ``Answer`` for text and several calls at once);
  the client sends the results back as a ``user`` turn of ``functionResponse`` parts after
  the model's call turn, and asks again. The request shape is checked first, as strictly as
  the service does (``request``: unknown fields, turn order, declarations): 400.
* Response shape: ``{"candidates":[{"content":{"role":"model","parts":[...]},
  "finishReason":"STOP","index":0}],"usageMetadata":{...},"modelVersion":...}``.
"""

from __future__ import annotations

import inspect
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiohttp import web

from tars.emulators.gemini import request as gemini_request
from tars.emulators.gemini.wire import error_json, normalise

BAD_KEY_MESSAGE = "API key not valid. Please pass a valid API key."


@dataclass(frozen=True)
class FunctionCall:
    """Responder answer: have the model call ``name(**args)``."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """Responder answer: some text and/or function calls, in one model turn."""

    text: str = ""
    calls: tuple[FunctionCall, ...] = ()


@dataclass
class RestRequest:
    """One recorded ``generateContent`` request (body normalised to camelCase)."""

    t: float
    api_version: str
    model: str
    method: str
    body: dict[str, Any]

    @property
    def contents(self) -> list[dict[str, Any]]:
        return list(self.body.get("contents") or [])

    @property
    def text(self) -> str:
        """Text of the last user turn."""
        for content in reversed(self.contents):
            if content.get("role", "user") == "user":
                return "".join(p.get("text", "") for p in content.get("parts") or [])
        return ""

    @property
    def system_instruction(self) -> str:
        content = self.body.get("systemInstruction") or {}
        return "".join(p.get("text", "") for p in content.get("parts") or [])

    @property
    def generation_config(self) -> dict[str, Any]:
        return dict(self.body.get("generationConfig") or {})

    @property
    def tools(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for tool in self.body.get("tools") or []:
            for decl in tool.get("functionDeclarations") or []:
                out[decl.get("name", "")] = decl
        return out

    @property
    def function_responses(self) -> list[dict[str, Any]]:
        """The ``functionResponse`` parts of the last turn (the results the client sends back)."""
        last = self.contents[-1] if self.contents else {}
        return [p["functionResponse"] for p in last.get("parts") or [] if "functionResponse" in p]

    @property
    def json_mode(self) -> bool:
        return self.generation_config.get("responseMimeType") == "application/json"

    @property
    def schema(self) -> tuple[dict[str, Any] | None, bool]:
        """(schema, is_json_schema) requested for the answer, if any."""
        config = self.generation_config
        if config.get("responseJsonSchema") is not None:
            return config["responseJsonSchema"], True
        if config.get("responseSchema") is not None:
            return config["responseSchema"], False
        return None, False


Reply: TypeAlias = str | dict[str, Any] | list[Any] | FunctionCall | Answer | None
Responder: TypeAlias = Callable[[RestRequest], Any]


def echo_responder(request: RestRequest) -> Reply:
    """Default: repeat the last user text (JSON mode falls back to the schema)."""
    if request.json_mode:
        return None
    text = request.text.strip()
    return f"Echo: {text}" if text else "Echo."


# --- minimal instances from schemas -----------------------------------------


def instance_from_schema(schema: dict[str, Any] | None) -> Any:
    """A small value valid against a Gemini Schema (upper-case types) or a JSON Schema."""
    return _instance(schema or {}, schema or {}, 0)


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _instance(schema: dict[str, Any], root: dict[str, Any], depth: int) -> Any:
    if depth > 12:
        return None
    if "$ref" in schema:
        return _instance(_resolve(schema["$ref"], root), root, depth + 1)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if isinstance(o, dict)]
        if options:
            typed = [o for o in options if str(o.get("type", "")).lower() != "null"]
            return _instance((typed or options)[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), kind[0] if kind else None)
    kind = str(kind or ("object" if "properties" in schema else "string")).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: _instance(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        count = int(schema.get("minItems") or 0)
        items = schema.get("items") or {}
        return [_instance(items, root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        value: float = 0
        if low is not None:
            value = float(low) + (1 if "exclusiveMinimum" in schema else 0)
        high = schema.get("maximum")
        if high is not None and value > float(high):
            value = float(high)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _string(schema)


def _string(schema: dict[str, Any]) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2026-01-01T09:00:00Z"
    if fmt == "date":
        return "2026-01-01"
    if fmt == "time":
        return "09:00:00"
    if fmt == "email":
        return "someone@example.com"
    if fmt in ("uri", "url"):
        return "https://example.com/"
    if fmt == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    text = "example"
    low = int(schema.get("minLength") or 0)
    if len(text) < low:
        text += "x" * (low - len(text))
    high = schema.get("maxLength")
    if high is not None:
        text = text[: int(high)]
    return text


# --- handler -----------------------------------------------------------------


def _schema_config_problem(config: dict[str, Any]) -> str | None:
    """What the service refuses in a structured-output ``generationConfig``.

    ``responseJsonSchema``: "If set, responseSchema must be omitted, but responseMimeType is
    required and must be set to application/json" (firebase.google.com/docs/reference/js/
    ai.generationconfig; the same in googleapis.github.io/kotlin-genai ``GenerateContentConfig.
    responseJsonSchema``: "If set, response_schema must be omitted, but response_mime_type is
    required"); ``responseSchema``: "If set, a compatible response_mime_type must
    also be set" (google-genai ``GenerateContentConfig.responseSchema``). The rules are
    documented; the wording of the errors is ours."""
    mime = config.get("responseMimeType")
    where = "* GenerateContentRequest.generation_config"
    if config.get("responseJsonSchema") is not None:
        if config.get("responseSchema") is not None:
            return f"{where}: responseSchema must be omitted when responseJsonSchema is set"
        if mime != "application/json":
            return f"{where}.response_mime_type: responseJsonSchema needs application/json"
    elif config.get("responseSchema") is not None and mime not in ("application/json", "text/x.enum"):
        return f"{where}.response_mime_type: responseSchema needs application/json or text/x.enum"
    return None


async def _answer(responder: Responder, request: RestRequest) -> Reply:
    result = responder(request)
    if inspect.isawaitable(result):
        result = await result
    return result  # type: ignore[no-any-return]


def _parts(reply: Reply, request: RestRequest) -> list[dict[str, Any]]:
    if isinstance(reply, FunctionCall):
        reply = Answer(calls=(reply,))
    if isinstance(reply, Answer):
        parts: list[dict[str, Any]] = [{"text": reply.text}] if reply.text or not reply.calls else []
        return parts + [{"functionCall": {"name": c.name, "args": dict(c.args)}} for c in reply.calls]
    if request.json_mode:
        if isinstance(reply, str):
            try:
                json.loads(reply)
                return [{"text": reply}]
            except ValueError:
                reply = None
        if reply is None:
            schema, _ = request.schema
            reply = instance_from_schema(schema) if schema else {}
        return [{"text": json.dumps(reply)}]
    if reply is None:
        reply = echo_responder(request)
    if not isinstance(reply, str):
        reply = json.dumps(reply)
    return [{"text": reply}]


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


async def serve_rest(
    request: web.Request,
    *,
    api_key: str,
    responder: Responder,
    records: list[RestRequest],
    api_version: str,
    model: str,
    method: str,
) -> web.StreamResponse:
    """aiohttp handler for ``generateContent`` / ``streamGenerateContent``."""
    if request.method != "POST":
        return web.json_response(error_json(405, "Method not allowed.", "INVALID_ARGUMENT"), 405)
    if request.headers.get("x-goog-api-key") != api_key:
        body = error_json(400, BAD_KEY_MESSAGE, "INVALID_ARGUMENT")
        return web.json_response(body, status=400)
    try:
        body = normalise(json.loads(await request.read() or b"{}"))
    except ValueError as exc:
        err = error_json(400, f"Invalid JSON payload received. {exc}", "INVALID_ARGUMENT")
        return web.json_response(err, status=400)
    if not isinstance(body, dict) or not body.get("contents"):
        err = error_json(400, "* GenerateContentRequest.contents: contents is not specified", "INVALID_ARGUMENT")
        return web.json_response(err, status=400)
    problem = gemini_request.problem(body) or _schema_config_problem(body.get("generationConfig") or {})
    if problem:
        return web.json_response(error_json(400, problem, "INVALID_ARGUMENT"), status=400)
    rest = RestRequest(time.monotonic(), api_version, model, method, body)
    records.append(rest)
    reply = await _answer(responder, rest)
    parts = _parts(reply, rest)
    prompt = _tokens(json.dumps(rest.contents))
    output = _tokens(json.dumps(parts))
    answer = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output,
        },
        "modelVersion": model,
        "responseId": secrets.token_hex(8),
    }
    if method == "streamGenerateContent":
        if request.query.get("alt") == "sse":
            stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await stream.prepare(request)
            await stream.write(f"data: {json.dumps(answer)}\r\n\r\n".encode())
            await stream.write_eof()
            return stream
        return web.json_response([answer])
    return web.json_response(answer)
