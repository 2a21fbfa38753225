"""What the Gemini emulator's ``generateContent`` refuses, as the real service does: 400
``INVALID_ARGUMENT`` with the field path, before any model is asked.

The request body (https://ai.google.dev/api/generate-content#request-body) is proto-JSON, so
a field the message does not have is refused by name: ``Invalid JSON payload received.
Unknown name "x" at 'contents[7].parts[0].function_response': Cannot find field.`` (reported
from the live service in google-gemini/gemini-cli#13972 and danny-avila/LibreChat#11761; the
path is written in snake_case). The shapes checked here:

* ``GenerateContentRequest``: contents, tools, toolConfig, safetySettings, systemInstruction,
  generationConfig, cachedContent (the request body above);
* ``Content`` {role, parts}, role ``user`` or ``model`` ("Must be either 'user' or 'model'",
  https://ai.google.dev/api/caching#Content); ``Part`` with exactly one data field
  (https://ai.google.dev/api/caching#Part);
* ``FunctionCall`` {id, name, args}, ``FunctionResponse`` {id, name, response, parts,
  willContinue, scheduling} (https://ai.google.dev/api/caching#FunctionResponse);
* ``Tool`` and ``FunctionDeclaration`` {name, description, behavior, parameters,
  parametersJsonSchema, response, responseJsonSchema}
  (https://ai.google.dev/api/caching#FunctionDeclaration): ``parameters`` is the OpenAPI
  ``Schema`` subset, so JSON Schema words such as ``additionalProperties`` or ``const`` are
  unknown names there (LibreChat#11761 above); a JSON Schema goes in ``parametersJsonSchema``,
  and the two are mutually exclusive ("parametersJsonSchema ... if set, parameters must be
  omitted", same page). A name is ``a-z, A-Z, 0-9``, underscores and dashes, at most 63
  characters (google.generativeai ``protos.FunctionDeclaration``).
* The function-calling turns: a function response turn must come right after the model's
  function call turn, with one response part per call part, and a function call turn right
  after a user turn or a function response turn. The service's own sentences, as reported in
  google-gemini/gemini-cli#4217 ("Please ensure that the number of function response parts
  is equal to the number of function call parts of the function call turn.") and
  google-gemini/gemini-cli#11814 and #26956 (a function call turn first in the history, or
  after another model turn: "Please ensure that function call turn comes immediately after a
  user turn or after a function response turn.").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REQUEST_FIELDS = frozenset(
    {"contents", "tools", "toolConfig", "safetySettings", "systemInstruction", "generationConfig", "cachedContent"}
)
CONTENT_FIELDS = frozenset({"role", "parts"})
DATA_FIELDS = frozenset(
    {"text", "inlineData", "functionCall", "functionResponse", "fileData", "executableCode", "codeExecutionResult"}
)
PART_FIELDS = DATA_FIELDS | {"thought", "thoughtSignature", "partMetadata", "videoMetadata", "mediaResolution"}
CALL_FIELDS = frozenset({"id", "name", "args"})
RESPONSE_FIELDS = frozenset({"id", "name", "response", "parts", "willContinue", "scheduling"})
TOOL_FIELDS = frozenset(
    {"functionDeclarations", "googleSearchRetrieval", "codeExecution", "googleSearch", "computerUse",
     "urlContext", "fileSearch", "googleMaps"}
)  # fmt: skip
DECLARATION_FIELDS = frozenset(
    {"name", "description", "behavior", "parameters", "parametersJsonSchema", "response", "responseJsonSchema"}
)
#: The OpenAPI Schema subset ``parameters`` takes (https://ai.google.dev/api/caching#Schema).
SCHEMA_FIELDS = frozenset(
    {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
     "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
     "propertyOrdering", "default", "items", "minimum", "maximum"}
)  # fmt: skip
ROLES = ("user", "model")
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")

RESPONSE_AFTER_CALL = "Please ensure that function response turn comes immediately after a function call turn."
CALL_AFTER_USER = (
    "Please ensure that function call turn comes immediately after a user turn or after a function response turn."
)
SAME_COUNT = (
    "Please ensure that the number of function response parts is equal to the number of function call parts "
    "of the function call turn."
)

_UPPER = re.compile(r"([A-Z])")


def _snake(name: str) -> str:
    return _UPPER.sub(lambda m: "_" + m.group(1).lower(), name)


def unknown(name: str, where: str) -> str:
    at = f" at '{where}'" if where else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'


def _fields(value: Any, allowed: frozenset[str], where: str) -> str | None:
    if not isinstance(value, Mapping):
        return f"Invalid value at '{where}': expected an object"
    for key in value:
        if key not in allowed:
            return unknown(_snake(str(key)), where)
    return None


def problem(body: Mapping[str, Any]) -> str | None:
    """The first thing the service would refuse in a (camelCase-normalised) request, or None."""
    found = _fields(body, REQUEST_FIELDS, "")
    if found:
        return found
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        found = _content(content, f"contents[{i}]")
        if found:
            return found
    if body.get("systemInstruction") is not None:
        found = _content(body["systemInstruction"], "system_instruction", role_required=False)
        if found:
            return found
    for i, tool in enumerate(body.get("tools") or []):
        found = _tool(tool, f"tools[{i}]")
        if found:
            return found
    return _turn_order(contents)


def _content(content: Any, where: str, *, role_required: bool = True) -> str | None:
    found = _fields(content, CONTENT_FIELDS, where)
    if found:
        return found
    role = content.get("role")
    if role is not None and role not in ROLES:
        return f"* GenerateContentRequest.{where}.role: Please use a valid role: user, model."
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        return f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty."
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        found = _fields(part, PART_FIELDS, at)
        if found:
            return found
        data = [k for k in part if k in DATA_FIELDS]
        if len(data) != 1:
            return f"* GenerateContentRequest.{at}.data: required oneof field 'data' must have one initialized field"
        if "functionCall" in part:
            found = _function(part["functionCall"], CALL_FIELDS, f"{at}.function_call", "args")
        elif "functionResponse" in part:
            found = _function(part["functionResponse"], RESPONSE_FIELDS, f"{at}.function_response", "response")
        if found:
            return found
    return None


def _function(value: Any, allowed: frozenset[str], where: str, payload: str) -> str | None:
    found = _fields(value, allowed, where)
    if found:
        return found
    if not value.get("name"):
        return f"* GenerateContentRequest.{where}.name: Name cannot be empty."
    if value.get(payload) is not None and not isinstance(value[payload], Mapping):
        return f"Invalid value at '{where}.{payload}' (type.googleapis.com/google.protobuf.Struct): expected an object"
    return None


def _tool(tool: Any, where: str) -> str | None:
    found = _fields(tool, TOOL_FIELDS, where)
    if found:
        return found
    for k, decl in enumerate(tool.get("functionDeclarations") or []):
        at = f"{where}.function_declarations[{k}]"
        found = _fields(decl, DECLARATION_FIELDS, at)
        if found:
            return found
        name = str(decl.get("name") or "")
        if not FUNCTION_NAME.match(name):
            return (
                f"* GenerateContentRequest.{at}.name: Invalid function name. Must start with a letter or an "
                "underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.) or dashes (-), with "
                "a maximum length of 64."
            )
        if decl.get("parameters") is not None and decl.get("parametersJsonSchema") is not None:
            return f"* GenerateContentRequest.{at}: parameters and parameters_json_schema must not both be set."
        if decl.get("parameters") is not None:
            found = _schema(decl["parameters"], f"{at}.parameters")
            if found:
                return found
    return None


def _schema(schema: Any, where: str) -> str | None:
    found = _fields(schema, SCHEMA_FIELDS, where)
    if found:
        return found
    for name, sub in (schema.get("properties") or {}).items():
        found = _schema(sub, f"{where}.properties[{name}].value")
        if found:
            return found
    if schema.get("items") is not None:
        found = _schema(schema["items"], f"{where}.items")
        if found:
            return found
    for n, sub in enumerate(schema.get("anyOf") or []):
        found = _schema(sub, f"{where}.any_of[{n}]")
        if found:
            return found
    return None


def _count(content: Mapping[str, Any], field: str) -> int:
    return sum(1 for part in content.get("parts") or [] if field in part)


def _turn_order(contents: list[Any]) -> str | None:
    previous: Mapping[str, Any] | None = None
    for content in contents:
        responses, calls = _count(content, "functionResponse"), _count(content, "functionCall")
        if responses:
            if previous is None or previous.get("role") != "model" or not _count(previous, "functionCall"):
                return RESPONSE_AFTER_CALL
            if responses != _count(previous, "functionCall"):
                return SAME_COUNT
        if calls and (previous is None or previous.get("role", "user") != "user"):
            return CALL_AFTER_USER
        previous = content
    return None
