"""A TARS server between the two emulators, for tests that read like a day with the phone.

    async with Line(tmp_path, brain) as line:
        call = await line.call_in(from_=line.project.owner.phone)
        ...

Everything is real but the far ends: the twilio and google-genai SDKs and pipecat run
unmodified against the loopback Twilio and Gemini emulators; the server is `tars serve`'s
own app under uvicorn on a free 127.0.0.1 port.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tars.project import Project, load_project
from tars.scaffold import scaffold
from tars.server.endpoints import Endpoints
from tars.server.run import Running, running
from tars.sim.gemini import GeminiEmulator
from tars.sim.twilio import TwilioEmulator

ACCOUNT = "AC" + "1" * 32
TOKEN = "test-auth-token"
API_KEY = "test-gemini-key"
PUBLIC = "https://tars.example.com"


def make_project(root: Path, monkeypatch: Any, edits: list[tuple[str, str, str]] = ()) -> Project:
    scaffold(root)
    for file, old, new in edits:
        path = root / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("GEMINI_API_KEY", API_KEY)
    monkeypatch.setenv("TARS_PUBLIC_URL", PUBLIC)
    monkeypatch.setenv("TARS_HOME", str(root / ".tars"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return load_project(root)


class Line:
    """The emulated phone network and model around one TARS server."""

    def __init__(self, project: Project, brain_factory: Callable[[], Any], **gemini: Any):
        self.project = project
        self.twilio = TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False)
        self.gemini = GeminiEmulator(api_key=API_KEY, brain_factory=brain_factory, **gemini)
        self._stack = contextlib.AsyncExitStack()
        self.server: Running | None = None

    async def __aenter__(self) -> Line:
        await self._stack.enter_async_context(self.twilio)
        await self._stack.enter_async_context(self.gemini)
        endpoints = Endpoints(
            twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN, twilio_api_base_url=self.twilio.base_url,
            gemini_api_key=API_KEY, gemini_base_url=self.gemini.base_url,
            gemini_ssl=ssl.create_default_context(cafile=self.gemini.ca_file),
        )
        self.server = await self._stack.enter_async_context(running(self.project, endpoints, public_base=PUBLIC))
        self.twilio.route(PUBLIC, self.server.local_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def number(self) -> str:
        return str(self.project.section("telephony")["number"])

    async def call_in(self, from_: str) -> Any:
        return await self.twilio.incoming_call(from_=from_, to=self.number, voice_url=f"{PUBLIC}/twilio/voice",
                                               status_callback=f"{PUBLIC}/twilio/status")

    def db(self) -> Any:
        from tars.store.database import connect

        return connect(self.project.database_url)
