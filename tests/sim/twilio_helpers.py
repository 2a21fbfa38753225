"""Small apps that play "TARS" for the Twilio emulator tests.

* :class:`WebhookApp`: a ``tars.sim.line.LoopbackApp`` (aiohttp on 127.0.0.1:0) that
  checks every request's ``X-Twilio-Signature`` with twilio-python's own
  ``RequestValidator`` against the public URL (rebuilt from ``X-Forwarded-Proto``/
  ``X-Forwarded-Host``, as an app behind a proxy must), records it, and answers with
  TwiML chosen per path.
* :class:`MediaServer`: FastAPI + uvicorn serving ``/ws`` with pipecat's own
  ``parse_telephony_websocket`` and ``TwilioFrameSerializer``; a per-test ``bot``
  coroutine decides what the "agent" does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from aiohttp import web
from fastapi import FastAPI, WebSocket
from twilio.request_validator import RequestValidator

from tars.sim.line import LoopbackApp

TwimlAnswer = str | Callable[[dict[str, str]], str]
CALLER = "+15551230001"
TARS_NUMBER = "+15551230002"


async def create_call(client: Any, **kwargs: Any) -> Any:
    """The twilio client blocks: run it off the event loop the emulator shares."""
    kwargs.setdefault("to", CALLER)
    kwargs.setdefault("from_", TARS_NUMBER)
    return await asyncio.to_thread(client.calls.create, **kwargs)


@dataclass
class SeenRequest:
    """One request the app received from the emulator."""

    method: str
    path: str
    params: dict[str, str]
    signature: str
    public_url: str
    request_url: str
    valid: bool  # RequestValidator over the public URL
    valid_against_request_url: bool
    headers: dict[str, str]
    peer: tuple[str, int]  # the connection it came on (Twilio's side)


class WebhookApp(LoopbackApp):
    """A webhook endpoint that validates Twilio signatures and answers TwiML."""

    ROUTE = "/{tail:.*}"

    def __init__(self, auth_token: str) -> None:
        super().__init__()
        self.validator = RequestValidator(auth_token)
        self.answers: dict[str, TwimlAnswer] = {}
        self.statuses: dict[str, int] = {}
        self.content_types: dict[str, str] = {}
        self.requests: list[SeenRequest] = []

    def seen(self, path: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        params = dict(parse_qsl(body, keep_blank_values=True)) if request.method == "POST" else {}
        proto = request.headers.get("X-Forwarded-Proto")
        host = request.headers.get("X-Forwarded-Host")
        request_url = str(request.url)
        public_url = f"{proto}://{host}{request.path_qs}" if proto and host else request_url
        signature = request.headers.get("X-Twilio-Signature", "")
        self.requests.append(
            SeenRequest(
                method=request.method,
                path=request.path,
                params=params,
                signature=signature,
                public_url=public_url,
                request_url=request_url,
                valid=self.validator.validate(public_url, params, signature),
                valid_against_request_url=self.validator.validate(request_url, params, signature),
                headers=dict(request.headers),
                peer=request.transport.get_extra_info("peername")[:2] if request.transport else ("", 0),
            )
        )
        if not self.requests[-1].valid:
            return web.Response(status=403, text="bad signature")
        answer = self.answers.get(request.path, "<Response/>")
        body = answer(params) if callable(answer) else answer
        return web.Response(
            status=self.statuses.get(request.path, 200),
            text=body,
            content_type=self.content_types.get(request.path, "text/xml"),
        )


Bot = Callable[["MediaSession"], Awaitable[None]]


@dataclass
class MediaSession:
    """One websocket the media server accepted, as pipecat sees it."""

    websocket: WebSocket
    transport_type: str
    call_data: Any
    headers: dict[str, str]
    serializer: Any = None
    frames: list[Any] = field(default_factory=list)  # pipecat frames from deserialize()
    raw: list[str] = field(default_factory=list)  # raw text after the handshake

    async def send(self, message: dict[str, Any] | str) -> None:
        import json

        await self.websocket.send_text(message if isinstance(message, str) else json.dumps(message))

    async def receive_until(self, predicate: Callable[[Any], bool], timeout: float = 5) -> Any:
        """Deserialize incoming messages until one gives a frame matching ``predicate``."""

        async def loop() -> Any:
            while True:
                text = await self.websocket.receive_text()
                self.raw.append(text)
                frame = await self.serializer.deserialize(text)
                if frame is not None:
                    self.frames.append(frame)
                    if predicate(frame):
                        return frame

        return await asyncio.wait_for(loop(), timeout)

    async def drain(self, timeout: float = 5) -> None:
        """Read until the emulator closes the socket."""
        from starlette.websockets import WebSocketDisconnect

        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await self.receive_until(lambda f: False, timeout)


class MediaServer:
    """FastAPI ``/ws`` on uvicorn, parsing the Twilio handshake with pipecat."""

    def __init__(self, bot: Bot, *, account_sid: str, auth_token: str, rest_base_url: str) -> None:
        self.bot = bot
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.rest_base_url = rest_base_url
        self.sessions: list[MediaSession] = []
        self.failures: list[BaseException] = []
        self.app = FastAPI()
        self.app.add_api_websocket_route("/ws", self._ws)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def _ws(self, websocket: WebSocket) -> None:
        from pipecat.runner.utils import parse_telephony_websocket
        from pipecat.serializers.twilio import TwilioFrameSerializer

        await websocket.accept()
        transport_type, call_data = await parse_telephony_websocket(websocket)
        session = MediaSession(websocket, transport_type, call_data, dict(websocket.headers))
        session.serializer = TwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            account_sid=self.account_sid,
            auth_token=self.auth_token,
            base_url=self.rest_base_url,
            params=TwilioFrameSerializer.InputParams(sample_rate=16000),
        )
        await session.serializer.setup(None)
        self.sessions.append(session)
        try:
            await self.bot(session)
        except Exception as exc:  # surfaced by the tests through .failures
            self.failures.append(exc)
            raise

    async def __aenter__(self) -> MediaServer:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


def media_server(emu: Any, bot: Bot) -> MediaServer:
    """A media server whose pipecat serializer hangs up through ``emu``'s REST API."""
    return MediaServer(bot, account_sid=emu.account_sid, auth_token=emu.auth_token, rest_base_url=emu.base_url)


def stream_twiml(url: str, **params: str) -> str:
    from twilio.twiml.voice_response import Connect, VoiceResponse

    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    for name, value in params.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)
