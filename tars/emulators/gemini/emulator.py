"""A loopback Gemini emulator: Live API websocket + REST, over TLS, for the real SDKs.

The real, unmodified google-genai client (and pipecat's ``GeminiLiveLLMService``
on top of it) talk to this server as if it were
``generativelanguage.googleapis.com``. google-genai always rewrites the Live
base URL to ``wss://``, so the server is TLS only, with a throw-away CA
(``tls.py``). One aiohttp server on ``127.0.0.1`` (free port) serves:

* ``/ws/google.ai.generativelanguage.{v1beta|v1alpha}.GenerativeService.BidiGenerateContent``
  (one or more leading slashes: a base URL ending in ``/`` yields ``//ws/...``)
  -> ``live`` (model turns decided by a pluggable ``Brain``);
* ``/{v1beta|v1alpha|v1}/models/{model}:generateContent`` ->
  ``rest`` (answers from a pluggable responder);
* ``/{v1beta|v1alpha|v1}/models/{model}:embedContent`` and ``:batchEmbedContents`` ->
  ``embed`` (deterministic embeddings that put a paraphrase near its original);
* ``GET /{v1beta|v1alpha|v1}/models/{model}`` -> the ``Model`` resource (``models.get``);
  models come from a catalogue (``models``), and an unknown one is refused
  everywhere the real service refuses it;
* anything else -> 404.

Usage::

    emu = GeminiEmulator(api_key="test-key", brain_factory=EchoBrain)
    async with emu:                       # or: with emu.running_in_thread(): (sync tests)
        client = genai.Client(api_key="test-key", http_options=emu.http_options())
        ...                               # or GeminiLiveLLMService(http_options=...)
        emu.sessions[-1].transcript       # what was heard and said
        await emu.drop()                  # abrupt disconnect (client resumes with its handle)

Public API::

    GeminiEmulator(api_key="test-key", *, brain_factory=EchoBrain, responder=default_responder,
                   response_delay_ms=0, realtime=False, pacing=None, chunk_ms=100,
                   end_silence_ms=500, end_of_turn_after_bytes=None, speech_body_ms=None,
                   models=None, model_traits=None, session_limit_s=900, connection_limit_s=600,
                   go_away_lead_s=60, handle_lifetime_s=7200, parts_per_message=3,
                   transcription_chars=3, burst_messages=2, keep_frames=False,
                   host="127.0.0.1", port=0)
      await start() / await stop() / async with / with running_in_thread()
      base_url, ws_url, port, ca_file, client_ssl_context(), env()
      http_options(api_version=None, trailing_slash=False) -> types.HttpOptions
      sessions: list[LiveSession]; violations; errors (emulator bugs; keep empty)
      live.rejected: (t, code, reason) refused before a session (bad key, expired handle,
        a resume while an older socket of the session is still open: 1011)
      models: ModelCatalogue (add(name, methods, traits) / remove(name) / has(name, trait));
        options: LiveOptions
        (session_limit_s, connection_limit_s, go_away_lead_s may be changed mid-test:
        they apply from the next connection)
      rest_requests: list[RestRequest]; requests: list[(t, method, path)]
      refuse_resumption: bool  (reconnects with a handle are closed with 1008)
      accepting: bool          (False: every new websocket gets HTTP 503)
      await drop(session=None, abrupt=True); await go_away(session=None, time_left="10s")
      await interrupt(session=None); await hear(text, session=None)
      await send_raw(frame, session=None)   (unchecked; SDK-behaviour tests only)
      await wait_for(predicate, timeout=10, what=...); call(coro)  (thread mode)
    LiveSession: id, model, system_instruction, tools, tool_names, generation_config,
      setup, setups, frames (ClientFrame t/key/raw_key/data/connection), frames_of(key),
      sent, history, transcript, user_texts(), model_texts(), tool_calls, tool_results,
      handles, connections, connected, started, interruptions, audio_bytes_in,
      max_frame_bytes, violations, errors, state, brain, compression, compressed,
      transcribes("input"|"output"), opened_at, ended (code, reason), closed_at, frames_sent,
      cancellations (toolCallCancellation sent: t, ids, by), context_results (SILENT results)
    Brains (brain): Brain protocol, EchoBrain, ScriptedBrain(steps),
      actions Say(text), CallTool(name, args), Wait(ms), EndTurn(),
      Stall(lasting="connection"|"session"|"service")  (quiet, no error, no close;
      LiveSession.unanswered / stalled, live.stalled)
    REST (rest): responder(RestRequest) -> str | dict | FunctionCall | None
      (sync or async); instance_from_schema(schema)

Constructor options: ``response_delay_ms`` (pause before each model reply and
after each tool result), ``realtime``/``pacing`` (1.0 paces model audio in real
time, 0 sends it as fast as possible), ``chunk_ms`` (audio per frame),
``end_silence_ms`` (quiet that ends a caller utterance, unless the setup sets
``silenceDurationMs``), ``end_of_turn_after_bytes`` (deterministic end of the
caller's turn once N bytes of audio arrived since their speech began, without
waiting for trailing silence), ``speech_body_ms`` (model speech of a fixed length
whatever its text: clients such as pipecat play audio out in real time, so brief
speech keeps simulated calls short). ``models`` (name -> supported methods; default
``models.DEFAULT_MODELS``), ``session_limit_s``/``connection_limit_s``/
``go_away_lead_s`` (a session without context-window compression, and any connection,
gets ``goAway`` this long before its limit, then a 1011 close; only a connection's end
can be resumed; ``None``: no limit; see ``limits``), ``handle_lifetime_s``
(resumption handles expire this long after the session's last connection ended, 2 hours
as documented), ``model_traits`` (name -> how the model treats function calls: BLOCKING
calls cancelled by new input on the 3.x models, NON_BLOCKING calls and their scheduling;
see ``models`` and ``cancellation``), ``parts_per_message``/
``transcription_chars``/``burst_messages`` (untidy delivery as the real service does it,
by default: ``delivery.REALISTIC``; ``**delivery.TIDY`` for one part a message and one
transcription per sentence after its audio), ``keep_frames`` (keep every sent server frame whole
in ``LiveSession.frames_sent``, for validating them).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from aiohttp import web
from google.genai import types

from tars.emulators import tls
from tars.emulators.gemini.brain import (
    Action,
    Brain,
    BrainFactory,
    CallTool,
    EchoBrain,
    EndTurn,
    Event,
    Say,
    ScriptedBrain,
    Search,
    Stall,
    Wait,
)
from tars.emulators.gemini.delivery import REALISTIC
from tars.emulators.gemini.embed import serve_embed
from tars.emulators.gemini.limits import AUDIO_SESSION_LIMIT_S, CONNECTION_LIMIT_S, GO_AWAY_LEAD_S, HANDLE_LIFETIME_S
from tars.emulators.gemini.live import serve_live
from tars.emulators.gemini.models import ModelCatalogue, not_found
from tars.emulators.gemini.rest import (
    BAD_KEY_MESSAGE,
    FunctionCall,
    Responder,
    RestRequest,
    echo_responder,
    instance_from_schema,
    serve_rest,
)
from tars.emulators.gemini.session import (
    Connection,
    LiveOptions,
    LiveRegistry,
    LiveSession,
    Violation,
)
from tars.emulators.gemini.transcript_reader import default_responder
from tars.emulators.gemini.wire import error_json

__all__ = [
    "Action",
    "Brain",
    "CallTool",
    "EchoBrain",
    "EndTurn",
    "Event",
    "FunctionCall",
    "GeminiEmulator",
    "LiveSession",
    "ModelCatalogue",
    "RestRequest",
    "Say",
    "ScriptedBrain",
    "Search",
    "Stall",
    "Violation",
    "Wait",
    "echo_responder",
    "instance_from_schema",
]

LIVE_PATH = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(v1beta|v1alpha)\."
    r"GenerativeService\.BidiGenerateContent$"
)
REST_PATH = re.compile(r"^/+(v1beta|v1alpha|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")
EMBED_PATH = re.compile(r"^/+(v1beta|v1alpha|v1)/models/([^/:]+):(embedContent|batchEmbedContents)$")
MODEL_PATH = re.compile(r"^/+(v1beta|v1alpha|v1)/models/([^/:]+)$")

T = TypeVar("T")


class GeminiEmulator:
    """Fake Gemini (Live websocket + REST) on ``https://127.0.0.1:<free port>``."""

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        brain_factory: BrainFactory = EchoBrain,
        responder: Responder = default_responder,
        response_delay_ms: int = 0,
        realtime: bool = False,
        pacing: float | None = None,
        chunk_ms: int = 100,
        end_silence_ms: int = 500,
        end_of_turn_after_bytes: int | None = None,
        speech_body_ms: int | None = None,
        models: Mapping[str, Iterable[str]] | None = None,
        model_traits: Mapping[str, Iterable[str]] | None = None,
        session_limit_s: float | None = AUDIO_SESSION_LIMIT_S,
        connection_limit_s: float | None = CONNECTION_LIMIT_S,
        go_away_lead_s: float = GO_AWAY_LEAD_S,
        handle_lifetime_s: float | None = HANDLE_LIFETIME_S,
        parts_per_message: int = REALISTIC["parts_per_message"],
        transcription_chars: int | None = REALISTIC["transcription_chars"],
        burst_messages: int = REALISTIC["burst_messages"],
        keep_frames: bool = False,
        connect_delay_ms: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.api_key = api_key
        self.responder = responder
        self.host = host
        self.options = LiveOptions(
            api_key=api_key,
            brain_factory=brain_factory,
            response_delay_ms=response_delay_ms,
            pacing=pacing if pacing is not None else (1.0 if realtime else 0.0),
            chunk_ms=chunk_ms,
            end_silence_ms=end_silence_ms,
            end_of_turn_after_bytes=end_of_turn_after_bytes,
            speech_body_ms=speech_body_ms,
            models=ModelCatalogue(models, model_traits),
            session_limit_s=session_limit_s,
            connection_limit_s=connection_limit_s,
            go_away_lead_s=go_away_lead_s,
            handle_lifetime_s=handle_lifetime_s,
            parts_per_message=parts_per_message,
            transcription_chars=transcription_chars,
            burst_messages=burst_messages,
            keep_frames=keep_frames,
            connect_delay_ms=connect_delay_ms,
        )
        self.live = LiveRegistry()
        self.rest_requests: list[RestRequest] = []
        self.embed_requests: list[dict[str, Any]] = []  # embedContent / batchEmbedContents bodies
        self.requests: list[tuple[float, str, str]] = []  # (t, method, path) of every request
        self.port = 0
        self._want_port = port  # 0: a free port
        self._tls: tls.LoopbackTLS | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- what tests look at ---------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return (
            f"wss://{self.host}:{self.port}/ws/google.ai.generativelanguage.v1beta."
            "GenerativeService.BidiGenerateContent"
        )

    @property
    def ca_file(self) -> str:
        assert self._tls is not None, "start the emulator first"
        return str(self._tls.ca_file)

    @property
    def sessions(self) -> list[LiveSession]:
        return self.live.sessions

    @property
    def models(self) -> ModelCatalogue:
        """The models this emulator offers (change it to test a missing model)."""
        return self.options.models

    @property
    def violations(self) -> list[Violation]:
        return self.live.violations

    @property
    def errors(self) -> list[str]:
        """Emulator-side failures (should always be empty)."""
        return self.live.errors

    @property
    def refuse_resumption(self) -> bool:
        return self.live.refuse_resumption

    @refuse_resumption.setter
    def refuse_resumption(self, value: bool) -> None:
        self.live.refuse_resumption = value

    @property
    def accepting(self) -> bool:
        return self.live.accepting

    @accepting.setter
    def accepting(self, value: bool) -> None:
        self.live.accepting = value

    def client_ssl_context(self) -> Any:
        """An ``ssl.SSLContext`` that trusts only this emulator's CA."""
        assert self._tls is not None, "start the emulator first"
        return self._tls.client_context()

    def http_options(self, api_version: str | None = None, trailing_slash: bool = False) -> Any:
        """``HttpOptions`` pointing google-genai (Live and REST, sync and aio) here."""
        ctx = self.client_ssl_context()
        return types.HttpOptions(
            base_url=self.base_url + ("/" if trailing_slash else ""),
            api_version=api_version,
            client_args={"verify": ctx},
            async_client_args={"ssl": ctx},
        )

    def env(self) -> dict[str, str]:
        """Environment that points a ``genai.Client()`` built without options here."""
        return {
            "GOOGLE_GEMINI_BASE_URL": self.base_url + "/",
            "SSL_CERT_FILE": self.ca_file,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    # --- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tls = tls.create()
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.host,
            self._want_port,
            ssl_context=self._tls.server_context(),
        )
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for conn in list(self.live.connections.values()):
            if not conn.ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=1001, message=b"Going away."), 1)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tls is not None:
            self._tls.close()
            self._tls = None

    async def __aenter__(self) -> GeminiEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[GeminiEmulator]:
        """Run the emulator on its own event loop in a background thread."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(target=self._thread_main, args=(loop, ready), name="gemini-emulator", daemon=True)
        thread.start()
        ready.wait()
        self._loop = loop
        try:
            self.call(self.start())
            yield self
        finally:
            with contextlib.suppress(Exception):
                self.call(self.stop())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    @staticmethod
    def _thread_main(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the emulator's loop from another thread (thread mode)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("emulator loop not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # --- control ---------------------------------------------------------

    def _connection(self, session: LiveSession | None) -> Connection:
        session = session or (self.sessions[-1] if self.sessions else None)
        conn = self.live.connections.get(session.id) if session else None
        if conn is None:
            raise RuntimeError("no live connection for that session")
        return conn

    async def drop(self, session: LiveSession | None = None, *, abrupt: bool = True) -> None:
        """Cut a live connection: abruptly (TCP abort, client sees 1006) or with 1011."""
        conn = self._connection(session)
        if abrupt:
            conn.abort()
        else:
            await conn.ws.close(code=1011, message=b"Internal error encountered.")

    async def go_away(self, session: LiveSession | None = None, time_left: str = "10s") -> None:
        """Send ``goAway{timeLeft}`` (the service is about to close the connection)."""
        await self._connection(session).send({"goAway": {"timeLeft": time_left}})

    async def interrupt(self, session: LiveSession | None = None) -> None:
        """Interrupt the model's current reply, as a barge-in would."""
        await self._connection(session).interrupt()

    async def hear(self, text: str, session: LiveSession | None = None) -> None:
        """Hand the brain a user event, as if the caller had said ``text``."""
        self._connection(session)._user(text)

    async def send_raw(self, frame: dict[str, Any], session: LiveSession | None = None) -> None:
        """Send an arbitrary frame, unchecked (for SDK-behaviour tests only)."""
        await self._connection(session).send_raw(frame)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
        """Poll ``predicate`` until truthy (a safety net, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"emulator: timed out waiting for {what}")
            await asyncio.sleep(0.01)

    # --- routing ---------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((time.monotonic(), request.method, path))
        if LIVE_PATH.match(path):
            return await serve_live(request, self.options, self.live)
        match = REST_PATH.match(path)
        if match:
            version, model, method = match.groups()
            if request.headers.get("x-goog-api-key") == self.api_key and not self.models.supports(model, method):
                body = error_json(404, not_found(model, version, method), "NOT_FOUND")
                return web.json_response(body, status=404)
            return await serve_rest(
                request,
                api_key=self.api_key,
                responder=self.responder,
                records=self.rest_requests,
                api_version=version,
                model=model,
                method=method,
            )
        match = EMBED_PATH.match(path)
        if match:
            version, model, method = match.groups()
            if request.headers.get("x-goog-api-key") == self.api_key and not self.models.supports(model, method):
                body = error_json(404, not_found(model, version, method), "NOT_FOUND")
                return web.json_response(body, status=404)
            return await serve_embed(
                request, api_key=self.api_key, records=self.embed_requests, model=model, method=method
            )
        match = MODEL_PATH.match(path)
        if match and request.method == "GET":
            return self._get_model(request, *match.groups())
        return web.json_response(
            {"error": {"code": 404, "message": f"Not found: {path}", "status": "NOT_FOUND"}},
            status=404,
        )

    def _get_model(self, request: web.Request, version: str, model: str) -> web.Response:
        """``models.get``: the Model resource, 400 for a bad key, 404 for an unknown model."""
        if request.headers.get("x-goog-api-key") != self.api_key:
            return web.json_response(error_json(400, BAD_KEY_MESSAGE, "INVALID_ARGUMENT"), status=400)
        if model not in self.models:
            # The sentence the service uses for generateContent, said of GET (models).
            return web.json_response(error_json(404, not_found(model, version, "get"), "NOT_FOUND"), status=404)
        return web.json_response(self.models.resource(model))
