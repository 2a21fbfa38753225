"""Wire helpers shared by the Live and REST halves of the Gemini emulator.

The real service parses proto-JSON, which accepts both ``snake_case`` and
``lowerCamelCase`` field names, and both base64 alphabets. The SDKs use all of
them: google-genai sends ``realtime_input``/``tool_response`` at the top level,
``mime_type`` inside blobs, pipecat's ``generationConfig`` contents in snake
case, and bytes as URL-safe base64 (pydantic ``ser_json_bytes='base64'``). So
every incoming frame is normalised to camelCase here, except user data whose
keys are names, not fields: function ``args``/``response`` payloads, JSON
schemas, and the property names inside a ``properties`` map.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

# Values under these (camelCase) keys are user data: copied untouched.
OPAQUE_KEYS = frozenset(
    {
        "args",
        "response",
        "parametersJsonSchema",
        "responseJsonSchema",
        "responseJsonSchemaOrdering",
        "jsonSchema",
        "structValue",
    }
)
# Maps from user-chosen names to schemas: keep the names, normalise the schemas.
NAMED_MAP_KEYS = frozenset({"properties", "defs"})

_SNAKE = re.compile(r"_([a-z0-9])")


def camel(key: str) -> str:
    """``mime_type`` -> ``mimeType``; camelCase keys are returned unchanged."""
    if "_" not in key.strip("_"):
        return key
    return _SNAKE.sub(lambda m: m.group(1).upper(), key)


def normalise(value: Any) -> Any:
    """Recursively rename dict keys to camelCase, leaving user data alone."""
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = camel(key) if isinstance(key, str) else key
        if name in OPAQUE_KEYS:
            out[name] = item
        elif name in NAMED_MAP_KEYS and isinstance(item, dict):
            out[name] = {k: normalise(v) for k, v in item.items()}
        else:
            out[name] = normalise(item)
    return out


#: How the service's refusals of a malformed request begin.
INVALID_ARGUMENT = "Request contains an invalid argument."


class ProtocolViolation(Exception):
    """Raised inside a Live connection to close it with ``code`` and ``reason``."""

    def __init__(self, reason: str, code: int = 1007):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Base64Error(ValueError):
    """Payload is not base64 in either alphabet."""


def b64decode(data: str) -> bytes:
    """Decode standard or URL-safe base64, with or without padding."""
    text = "".join(data.split()).translate(str.maketrans("-_", "+/"))
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Base64Error(str(exc)) from exc


def b64encode(data: bytes) -> str:
    """Standard base64 (what the real service sends)."""
    return base64.b64encode(data).decode("ascii")


def error_json(code: int, message: str, status: str) -> dict[str, Any]:
    """Google's JSON error envelope."""
    return {"error": {"code": code, "message": message, "status": status}}
