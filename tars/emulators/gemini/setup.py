"""What the emulated Live API refuses in a ``setup`` frame, the way the real one does.

The real service parses the setup as proto-JSON and closes the websocket on the first
thing it cannot accept; the close reason names the field path in snake_case with map
entries and list items indexed:

* An unknown model (or one without ``bidiGenerateContent``): **1008**, see
  ``models``.
* A field the message type does not have: **1007** ``Invalid JSON payload received.
  Unknown name "X" at 'path': Cannot find field.`` (livekit/agents#3853: "received 1007
  (invalid frame payload data) Invalid JSON payload received. Unknown name "scheduling"
  at 'tool_response.function_responses[0]': Cannot find field."; for a tool schema the
  path runs on into ``tools[0].function_declarations[5].parameters.properties[8].value``,
  zed-industries/zed#44875). The known fields of a setup are those google-genai 2.34's
  converter (``_LiveConnectConfig_to_mldev``) can put there; those of tools, function
  declarations and schemas are the fields of its ``types.Tool``,
  ``types.FunctionDeclaration`` and ``types.Schema``.
* A schema ``type`` that is not a ``Type`` value, or an ``enum`` item that is not a
  string: **1007** ``Invalid value at 'path' (type.googleapis.com/google.ai.
  generativelanguage.v1beta.Type), "x"`` (zereight/gitlab-mcp#166; for enum items
  "(TYPE_STRING), 2", microsoft/azure-devops-mcp#139). The values are the enum's names,
  upper case: JSON Schema's lower-case ``"string"`` is refused too (iBUHub/AIStudioToAPI#265:
  a Gemini ``Schema`` with ``"type": "object"`` got 400 INVALID_ARGUMENT, ``OBJECT`` passed).
* A function name outside ``[a-zA-Z0-9_:.-]{1,64}`` ("Must be a-z, A-Z, 0-9, or contain
  underscores, colons, dots, and dashes, with a maximum length of 64", the v1beta
  ``FunctionDeclaration.name`` reference). The rule is documented; the wording of the
  close reason is ours.

What the emulator does not know for certain it lets through (``generationConfig``
contents, ``parametersJsonSchema``, which is JSON Schema and opaque here).
"""

from __future__ import annotations

import re
from typing import Any

from google.genai import types
from pydantic.alias_generators import to_camel

from tars.emulators.gemini.models import ModelCatalogue, not_found
from tars.emulators.gemini.wire import ProtocolViolation

SETUP_FIELDS = frozenset(
    {
        "model",
        "generationConfig",
        "systemInstruction",
        "tools",
        "sessionResumption",
        "inputAudioTranscription",
        "outputAudioTranscription",
        "realtimeInputConfig",
        "contextWindowCompression",
        "proactivity",
        "historyConfig",
        "avatarConfig",
        "safetySettings",
        "labels",
    }
)
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_:.\-]{1,64}$")
TYPE_VALUES = frozenset(t.value for t in types.Type)


def _fields(model: type[Any]) -> frozenset[str]:
    return frozenset(to_camel(name) for name in model.model_fields)


TOOL_FIELDS = _fields(types.Tool)
DECLARATION_FIELDS = _fields(types.FunctionDeclaration)
SCHEMA_FIELDS = _fields(types.Schema)


def _unknown(key: str, path: str) -> ProtocolViolation:
    return ProtocolViolation(f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field.")


def _invalid(path: str, kind: str, value: Any) -> ProtocolViolation:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return ProtocolViolation(f"Invalid value at '{path}' ({kind}), {shown}")


def _only(data: Any, known: frozenset[str], path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _invalid(path, "type.googleapis.com/google.protobuf.Struct", data)
    for key in data:
        if key not in known:
            raise _unknown(key, path)
    return data


def check_setup(setup: Any, *, api_version: str, models: ModelCatalogue) -> None:
    """Raise ``ProtocolViolation`` (1008 or 1007) for what the real service refuses."""
    if not isinstance(setup, dict):
        raise ProtocolViolation("Request contains an invalid argument. setup must be an object")
    model = str(setup.get("model", ""))
    if not model.startswith("models/"):
        raise ProtocolViolation("Request contains an invalid argument. setup.model must be models/...")
    if not models.supports(model, "bidiGenerateContent"):
        raise ProtocolViolation(not_found(model, api_version, "bidiGenerateContent"), 1008)
    _only(setup, SETUP_FIELDS, "setup")
    for i, tool in enumerate(setup.get("tools") or []):
        path = f"setup.tools[{i}]"
        for j, decl in enumerate(_only(tool, TOOL_FIELDS, path).get("functionDeclarations") or []):
            _check_declaration(decl, f"{path}.function_declarations[{j}]")


def _check_declaration(decl: Any, path: str) -> None:
    _only(decl, DECLARATION_FIELDS, path)
    name = decl.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.match(name):
        raise ProtocolViolation(
            f"Request contains an invalid argument. {path}.name {name!r}: must be a-z, A-Z, 0-9, "
            "underscores, colons, dots or dashes, at most 64"
        )
    for key in ("parameters", "response"):
        if decl.get(key) is not None:
            _check_schema(decl[key], f"{path}.{key}")


def _check_schema(schema: Any, path: str) -> None:
    _only(schema, SCHEMA_FIELDS, path)
    kind = schema.get("type")
    if kind is not None and kind not in TYPE_VALUES:
        raise _invalid(f"{path}.type", "type.googleapis.com/google.ai.generativelanguage.v1beta.Type", kind)
    for k, item in enumerate(schema.get("enum") or []):
        if not isinstance(item, str):
            raise _invalid(f"{path}.enum[{k}]", "TYPE_STRING", item)
    for k, sub in enumerate((schema.get("properties") or {}).values()):
        _check_schema(sub, f"{path}.properties[{k}].value")
    if schema.get("items") is not None:
        _check_schema(schema["items"], f"{path}.items")
    for k, sub in enumerate(schema.get("anyOf") or []):
        _check_schema(sub, f"{path}.any_of[{k}]")
    for k, sub in enumerate((schema.get("defs") or {}).values()):
        _check_schema(sub, f"{path}.defs[{k}].value")
