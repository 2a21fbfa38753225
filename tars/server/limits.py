"""Limits on what a request may send, checked before the body is read.

An unsigned webhook must not cost more memory than its 403 (a 100 MB POST to
``/twilio/voice`` once grew the server by 400 MB before the signature was checked), so
``BodyLimit`` refuses a declared ``Content-Length`` over the limit at once and stops
reading a chunked body as soon as it passes it: 413, and the app never sees it.

* Twilio webhooks are form posts of a few kilobytes (an SMS body is at most 1,600
  characters: https://www.twilio.com/docs/glossary/what-sms-character-limit), so
  ``/twilio/`` gets ``WEBHOOK_BODY_LIMIT``.
* The local API (goal-call inputs) gets ``API_BODY_LIMIT``; n8n tasks (``/hooks/``, one
  message of at most 4,000 characters) ``HOOK_BODY_LIMIT``; everything else the webhook limit.
* The media stream's websocket takes messages of at most ``STREAM_MESSAGE_LIMIT``: a Twilio
  media message is 20 ms of μ-law (160 bytes, ~216 in base64) in a few hundred bytes of
  JSON (https://www.twilio.com/docs/voice/media-streams/websocket-messages#media-message).
  uvicorn's default is 16 MiB (``ws_max_size``); past the limit the web server closes the
  stream with 1009 and the call is recorded ``failed`` (``tars.calls.media_socket``).
* JSON bodies are refused past ``JSON_DEPTH_LIMIT`` levels of nesting before they are
  parsed (the parser would recurse once per level).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tars import metrics

WEBHOOK_BODY_LIMIT = 64 * 1024
API_BODY_LIMIT = 1024 * 1024
HOOK_BODY_LIMIT = 16 * 1024
JSON_DEPTH_LIMIT = 32
STREAM_MESSAGE_LIMIT = 1024 * 1024

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class BodyTooLarge(Exception):
    pass


def limit_for(path: str) -> int:
    if path.startswith("/hooks/"):
        return HOOK_BODY_LIMIT
    return API_BODY_LIMIT if path.startswith("/api/") else WEBHOOK_BODY_LIMIT


class BodyLimit:
    """ASGI middleware: HTTP bodies over ``limit_for(path)`` get 413 without being read whole."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = True
            if too_big:
                _count_refusal(scope)
                await _refuse(send, limit)
                return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                _count_refusal(scope)
                await _refuse(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, limit: int) -> None:
    text = f"request body too large: at most {limit} bytes here".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": text})


class JSONTooDeep(ValueError):
    pass


def parse_json(raw: bytes, depth: int = JSON_DEPTH_LIMIT) -> Any:
    """``json.loads`` for a request body, refusing nesting deeper than ``depth`` first."""
    structure = _STRINGS.sub(b'""', raw)
    levels = accumulate(1 if c in b"[{" else -1 for c in structure if c in b"[]{}")
    if max(levels, default=0) > depth:
        raise JSONTooDeep(f"JSON nested deeper than {depth} levels")
    return json.loads(raw)


def _count_refusal(scope: Scope) -> None:
    path = str(scope.get("path", ""))
    route = "/twilio" if path.startswith("/twilio") else "/api" if path.startswith("/api") else "other"
    metrics.WEBHOOKS_REFUSED.labels(route, "body too large").inc()
