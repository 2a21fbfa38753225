"""Tool calls whose ``args`` are not an object, caught before google-genai parses them
(``GatedGeminiLive`` wraps each Live socket in ``ArgsCheck``)."""

from __future__ import annotations

import json
from typing import Any


class ArgsCheck:
    """The Live socket, with each ``toolCall``'s ``args`` checked before google-genai parses it.

    The API says ``args`` is an object; a model that emits a string or a list makes the
    SDK's ``LiveServerMessage`` validation raise inside ``receive()``, which pipecat takes
    for a dropped connection (and three of those end the call). Here such a call keeps its
    id and name with empty args, and is noted so its handler answers it with an error.
    """

    def __init__(self, ws: Any, malformed: dict[str, str]):
        self._ws = ws
        self._malformed = malformed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)

    async def recv(self, *args: Any, **kwargs: Any) -> Any:
        raw = await self._ws.recv(*args, **kwargs)
        if b'"toolCall"' not in (raw if isinstance(raw, bytes) else raw.encode()):
            return raw
        try:
            frame = json.loads(raw)
            calls = frame["toolCall"]["functionCalls"]
        except (ValueError, KeyError, TypeError):
            return raw
        changed = False
        for call in calls if isinstance(calls, list) else []:
            args = call.get("args") if isinstance(call, dict) else None
            if args is not None and not isinstance(args, dict):
                self._malformed[str(call.get("id"))] = f"arguments that are a {type(args).__name__}, not an object"
                call["args"] = {}
                changed = True
        return json.dumps(frame).encode() if changed else raw
