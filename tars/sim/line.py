"""A TARS server between the two emulators: the phone line that tests and `tars simulate` share.

    async with Line(project, brain_factory) as line:
        call = await line.call_in(from_=line.project.owner.phone)
        await call.wait_for_agent_utterance()
        ...

Everything is real but the far ends: the twilio and google-genai SDKs and pipecat run
unmodified against the loopback Twilio and Gemini emulators; the server is `tars serve`'s
own app under uvicorn on a free 127.0.0.1 port. Webhook endpoints (webhook tools and
``delivery.webhook``) are answered by a loopback receiver that records every request.

``for_simulation`` gives a project whose state (the database) lives in a folder of your
choosing, so a simulation never touches the owner's real records.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from tars.endpoints import Endpoints
from tars.loading import load_project
from tars.project import Project, freeze, thaw
from tars.scaffold import scaffold
from tars.server.run import Running, running
from tars.sim.gemini import GeminiEmulator
from tars.sim.twilio import Call, Party, TwilioEmulator

ACCOUNT = "AC" + "1" * 32
TOKEN = "test-auth-token"
API_KEY = "test-gemini-key"
PUBLIC = "https://tars.example.com"
DELIVERY = "delivery"  # the name delivery.webhook requests are recorded under


#: How long the emulated model's speech lasts whatever it says (``speech_body_ms``; a test may
#: pass its own): pipecat plays audio out in real time, and a call's meaning is in the words,
#: which travel with the audio, so brief speech keeps simulated calls short.
BRIEF_SPEECH_MS = 300


def make_project(root: Path, monkeypatch: Any, edits: Iterable[tuple[str, str, str]] = ()) -> Project:
    """The shipped example project in ``root`` with text ``edits`` (file, old, new), loaded with
    the emulators' credentials in the environment (``monkeypatch.setenv``, as pytest's)."""
    scaffold(root)
    for file, old, new in edits:
        path = root / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))
    for name, value in environment(root / ".tars").items():
        monkeypatch.setenv(name, value)
    return load_project(root)


def environment(state_dir: Path) -> dict[str, str]:
    """Variables a project needs to run against the emulators (credentials, state, no proxy)."""
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "GEMINI_API_KEY": API_KEY,
        "TARS_PUBLIC_URL": PUBLIC, "TARS_HOME": str(state_dir), "NO_PROXY": "127.0.0.1,localhost",
    }  # fmt: skip


def for_simulation(project: Project, state_dir: Path) -> Project:
    """``project`` with its state in ``state_dir``: a fresh SQLite database there, whatever
    ``storage.url`` or ``$TARS_HOME`` say, so the owner's real records are never touched."""
    settings = thaw(project.settings)
    settings.setdefault("storage", {}).pop("url", None)
    return dataclasses.replace(project, state_dir=state_dir, settings=freeze(settings))


def keeping(original: Project, base_url: str) -> Callable[[Project], Project]:
    """How a project loaded while a Line runs (a persona change, a reload) keeps what the
    harness changed in ``original``: its state folder and storage, webhooks to ``base_url``."""

    def adapt(project: Project) -> Project:
        settings = thaw(project.settings)
        settings["storage"] = thaw(original.section("storage"))
        kept = dataclasses.replace(project, state_dir=original.state_dir, settings=freeze(settings))
        return with_webhooks_to(kept, base_url)

    return adapt


def with_webhooks_to(project: Project, base_url: str) -> Project:
    """``project`` with every webhook tool and ``delivery.webhook`` sent to ``base_url/<name>``."""
    tools = {
        name: dataclasses.replace(tool, webhook=dataclasses.replace(tool.webhook, url=f"{base_url}/{name}"))
        if tool.webhook is not None else tool
        for name, tool in project.tools.items()
    }  # fmt: skip
    settings = thaw(project.settings)
    hook = settings.get("delivery", {}).get("webhook")
    if isinstance(hook, dict) and hook.get("url"):
        hook["url"] = f"{base_url}/{DELIVERY}"
    return dataclasses.replace(project, tools=freeze(tools), settings=freeze(settings))


@dataclass
class WebhookRequest:
    """One request TARS sent to a webhook endpoint."""

    name: str  # the webhook tool's name, or "delivery"
    method: str
    headers: dict[str, str]
    payload: Any  # the JSON body (or the text, if it was not JSON)
    at: float = field(default_factory=time.monotonic)


class LoopbackApp:
    """An aiohttp app on a free 127.0.0.1 port: every request on ``ROUTE`` goes to ``_handle``."""

    ROUTE = "/{name}"

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", self.ROUTE, self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class WebhookReceiver(LoopbackApp):
    """Loopback stand-in for every webhook endpoint: records requests, answers as told."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[WebhookRequest] = []
        self.replies: dict[str, tuple[int, Any]] = {}  # name -> (status, JSON body)
        self.holds: dict[str, asyncio.Event] = {}  # name -> answered once set (a slow endpoint)

    def reply(self, name: str, status: int = 200, body: Any = None) -> None:
        """How the endpoint ``name`` answers (default: 200 ``{"ok": true}``)."""
        self.replies[name] = (status, {"ok": True} if body is None else body)

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        text = await request.text()
        try:
            payload: Any = json.loads(text) if text else None
        except json.JSONDecodeError:
            payload = text
        self.requests.append(WebhookRequest(name, request.method, dict(request.headers), payload))
        if name in self.holds:
            await self.holds[name].wait()
        status, body = self.replies.get(name, (200, {"ok": True}))
        return web.json_response(body, status=status)


class Line:
    """The emulated phone network and model around one TARS server."""

    def __init__(self, project: Project, brain_factory: Callable[[], Any], *, watch: bool = False, **gemini: Any):
        self.project = project
        self.watch = watch  # the server follows saved YAML edits, as `tars serve` does
        self.reloads: list[Project | None] = []  # each reload's outcome (None: the edit did not load)
        self.twilio = TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False)
        gemini.setdefault("speech_body_ms", BRIEF_SPEECH_MS)  # pipecat plays speech out in real time
        self.gemini = GeminiEmulator(api_key=API_KEY, brain_factory=brain_factory, **gemini)
        self.webhooks = WebhookReceiver()
        self._stack = contextlib.AsyncExitStack()
        self.server: Running | None = None
        self.owner_replies = 0  # texts the owner has sent TARS (owner_texts)
        self.others: list[Running] = []  # servers started with another_server()

    async def __aenter__(self) -> Line:
        try:
            await self._stack.enter_async_context(self.twilio)
            await self._stack.enter_async_context(self.gemini)
            await self._stack.enter_async_context(self.webhooks)
            adapt = keeping(self.project, self.webhooks.base_url)
            self.project = with_webhooks_to(self.project, self.webhooks.base_url)
            self.endpoints = endpoints = Endpoints(
                twilio_account_sid=ACCOUNT,
                twilio_auth_token=TOKEN,
                twilio_api_base_url=self.twilio.base_url,
                gemini_api_key=API_KEY,
                gemini_base_url=self.gemini.base_url,
                gemini_ssl=ssl.create_default_context(cafile=self.gemini.ca_file),
            )
            self.server = await self._stack.enter_async_context(
                running(
                    self.project,
                    endpoints,
                    public_base=PUBLIC,
                    handle_signals=False,
                    watch=self.watch,
                    reloaded=self.reloads.append,
                    adapt=adapt,
                )
            )
            self.twilio.route(PUBLIC, self.server.local_url)
            # The TARS number is this account's: a <Dial> to it rings TARS again, as on Twilio.
            self.twilio.serve_number(self.number, f"{PUBLIC}/twilio/voice", f"{PUBLIC}/twilio/status")
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def another_server(self) -> Running:
        """A second TARS server on the same project and database (as a second `tars serve`
        would be), shut down with the line; ``twilio.route(PUBLIC, its local_url)`` sends
        Twilio's webhooks and streams to it."""
        another = await self._stack.enter_async_context(
            running(self.project, self.endpoints, public_base=PUBLIC, handle_signals=False)
        )
        self.others.append(another)
        return another

    def send_twilio_to(self, server: Running) -> None:
        """Twilio's next webhooks and streams go to ``server`` (a load balancer's choice)."""
        self.twilio.route(PUBLIC, server.local_url)

    @property
    def number(self) -> str:
        """The TARS number (telephony.number)."""
        return str(self.project.section("telephony")["number"])

    async def call_in(self, from_: str, party: Party | None = None) -> Call:
        """``from_`` rings TARS; ``party`` says what they do at keypad prompts."""
        return await self.twilio.incoming_call(
            from_=from_,
            to=self.number,
            voice_url=f"{PUBLIC}/twilio/voice",
            status_callback=f"{PUBLIC}/twilio/status",
            party=party,
        )

    async def place_goal_call(self, target: str, playbook: str, inputs: Mapping[str, Any]) -> tuple[int, Any]:
        """Ask the server to place a goal call, as `tars call` does (``POST /api/calls`` with the
        server's API token); return the HTTP status and the JSON answer."""
        import aiohttp

        assert self.server is not None, "enter the Line first"
        body = {"target": target, "playbook": playbook, "inputs": dict(inputs)}
        headers = {"Authorization": f"Bearer {self.server.api_token}"}
        async with (
            aiohttp.ClientSession(trust_env=False) as http,
            http.post(f"{self.server.local_url}/api/calls", json=body, headers=headers) as response,
        ):
            return response.status, await response.json(content_type=None)

    async def owner_texts(self, body: str) -> Any:
        """The owner texts the TARS number: Twilio's signed SMS webhook; returns what the
        server answered (``status``, and the TwiML ``body`` texted back)."""
        from tars.sim.twilio_rest import new_sid

        sid = new_sid("SM")
        form = {
            "AccountSid": ACCOUNT, "MessageSid": sid, "SmsSid": sid, "From": self.project.owner.phone,
            "To": self.number, "Body": body, "NumMedia": "0", "NumSegments": "1",
        }  # fmt: skip
        result = await self.twilio.webhooks.send(f"{PUBLIC}/twilio/sms", form)
        self.owner_replies += 1
        return result

    def questions_texted(self) -> list[str]:
        """The questions TARS has texted the owner (ask_owner with no live owner call)."""
        owner = self.project.owner.phone
        return [m.body for m in self.twilio.messages if m.to == owner and " asks: " in m.body]

    async def settle(self, timeout: float = 30) -> None:
        """Wait until the server has no live call and its background work (reports, notices,
        summaries) is done, so every row and message a call leads to exists."""
        assert self.server is not None, "enter the Line first"
        deadline = time.monotonic() + timeout
        for server in (self.server.server, *(other.server for other in self.others)):
            while server.sessions or any(not task.done() for task in server.tasks):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the server was still busy after {timeout:.0f} s "
                        f"({len(server.sessions)} live calls, {len(server.tasks)} tasks)"
                    )
                await asyncio.sleep(0.02)

    def db(self) -> Any:
        """A context manager for the project's database (``with line.db() as db, db.session() as s``)."""
        from tars.store.database import connect

        return connect(self.project.database_url)


def webhook_payloads(requests: Iterable[WebhookRequest]) -> list[Mapping[str, Any]]:
    """The requests as plain ``{"name", "payload"}`` mappings (for reports and JSON)."""
    return [{"name": r.name, "method": r.method, "payload": r.payload} for r in requests]
