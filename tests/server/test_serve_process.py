"""`tars serve` as a real process: starts, answers, and on SIGTERM says goodbye before it stops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tars.emulators.gemini.emulator import GeminiEmulator, Say
from tars.emulators.twilio.emulator import TwilioEmulator
from tests.server.harness import ACCOUNT, API_KEY, PUBLIC, TOKEN, make_project
from tests.server.test_owner_calls import greet_then
from tests.waiting import eventually


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, twilio: TwilioEmulator, gemini: GeminiEmulator
) -> tuple[Any, dict[str, str]]:
    """The example project pointed at the emulators, and the environment `tars serve` runs in."""
    project = make_project(
        tmp_path / "p",
        monkeypatch,
        [
            (
                "tars.yaml",
                "  public_url: ${TARS_PUBLIC_URL:-https://tars.example.com}\n",
                f"  public_url: ${{TARS_PUBLIC_URL:-https://tars.example.com}}\n  api_base_url: {twilio.base_url}\n",
            ),
            ("tars.yaml", "  voice: Charon\n", f"  voice: Charon\n  base_url: {gemini.base_url}\n"),
        ],
    )
    env = {**os.environ, "TARS_GEMINI_CA_FILE": gemini.ca_file, "NO_PROXY": "127.0.0.1,localhost"}
    return project, env


async def owner_rings(twilio: TwilioEmulator, project: Any) -> Any:
    """The owner calls the TARS number, as Twilio delivers it to whatever serves PUBLIC."""
    return await twilio.incoming_call(
        from_=project.owner.phone,
        to=str(project.section("telephony")["number"]),
        voice_url=f"{PUBLIC}/twilio/voice",
        status_callback=f"{PUBLIC}/twilio/status",
    )


class Goodbye:
    """Greets; when told the server is stopping, says goodbye."""

    def __init__(self) -> None:
        self.inner = greet_then()

    async def on_start(self, session: Any) -> list[Any]:
        return await self.inner.on_start(session)

    async def on_user(self, session: Any, text: str) -> list[Any]:
        return [Say("My apologies, I must go. Goodbye.")] if "shutting down" in text else []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        return []


async def test_serve_answers_and_stops_gracefully_on_sigterm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False) as twilio,
        GeminiEmulator(api_key=API_KEY, brain_factory=Goodbye) as gemini,
    ):
        project, env = served_project(tmp_path, monkeypatch, twilio, gemini)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tars",
                "--project",
                str(project.root),
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            local = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:

                async def up() -> bool:
                    if server.poll() is not None:
                        pytest.fail("tars serve did not come up: " + server.stderr.read().decode()[-2000:])
                    try:
                        async with http.get(f"{local}/healthz") as r:
                            return r.status == 200 and (await r.json())["status"] == "ok"
                    except aiohttp.ClientError:
                        return False

                await eventually(up, 120, "tars serve answering /healthz")
            twilio.route(PUBLIC, local)
            call = await owner_rings(twilio, project)
            await call.wait_for_agent_utterance(timeout=30)
            server.send_signal(signal.SIGTERM)
            goodbye = await call.wait_for_agent_utterance(timeout=30)
            assert goodbye.text == "My apologies, I must go. Goodbye."
            assert await call.wait_ended(timeout=30) == "completed"
            code = await asyncio.to_thread(server.wait, 30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert code == 0, server.stderr.read().decode()[-3000:]
        assert call.rest_hangups, "the goodbye ends with a hang-up through Twilio"

    from tars.store.calls import call_details
    from tars.store.database import connect

    with connect(project.database_url) as db, db.session() as s:
        record = call_details(s, call.sid)
    assert record.call.status == "completed" and record.call.ended_at is not None


def test_serve_without_credentials_says_what_to_set(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tars.cli.app import app
    from tars.scaffold import scaffold

    scaffold(tmp_path / "p")
    result = CliRunner().invoke(app, ["--project", str(tmp_path / "p"), "serve"])
    assert result.exit_code == 1
    assert "tars serve needs credentials that are not set: telephony.account_sid (TWILIO_ACCOUNT_SID)" in result.output


async def test_a_call_left_live_by_a_killed_server_is_finished_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kill -9`` mid-call: Twilio's final status callback goes nowhere; the next start asks
    Twilio how the call ended and finishes the row with that status and a reason."""
    from tars.store.calls import call_details
    from tars.store.database import connect

    async with (
        TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False) as twilio,
        GeminiEmulator(api_key=API_KEY, brain_factory=Goodbye) as gemini,
    ):
        project, env = served_project(tmp_path, monkeypatch, twilio, gemini)

        def row() -> Any:
            with connect(project.database_url) as db, db.session() as s:
                return call_details(s, call.sid).call

        first = await start_serving(project, env, twilio)
        try:
            call = await owner_rings(twilio, project)
            await call.wait_for_agent_utterance(timeout=30)
            await eventually(lambda: row().status == "in-progress", what="the call in progress")
            first.kill()  # SIGKILL: no goodbye, no status written
            first.wait()
            assert await call.wait_ended(timeout=30) == "completed"
            assert row().status == "in-progress"
            second = await start_serving(project, env, twilio)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        try:
            ended = await eventually(lambda: row().status != "in-progress" and row(), 60, "the row reconciled")
        finally:
            second.terminate()
            await asyncio.to_thread(second.wait, 30)
    assert ended.status == "completed" and ended.ended_at is not None
    assert ended.failure_reason == "the server holding the call stopped; Twilio reports the call completed"


async def test_a_call_that_ended_while_being_put_through_unheard_is_finished_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call is in a conference (its transfer connected, no stream) when every server stops:
    the end Twilio reports goes nowhere. The next start asks Twilio, and finishes the row and
    its transfer as Twilio saw them; a call still being put through at Twilio is left alone."""
    from tars.store.calls import call_details
    from tars.store.database import connect
    from tars.store.transfers import settle, start_transfer

    async with (
        TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False) as twilio,
        GeminiEmulator(api_key=API_KEY, brain_factory=Goodbye) as gemini,
    ):
        project, env = served_project(tmp_path, monkeypatch, twilio, gemini)

        def details() -> Any:
            with connect(project.database_url) as db, db.session() as s:
                return call_details(s, call.sid)

        first = await start_serving(project, env, twilio)
        try:
            call = await owner_rings(twilio, project)
            await call.wait_for_agent_utterance(timeout=30)
            await eventually(lambda: details().call.status == "in-progress", what="the call in progress")
            with connect(project.database_url) as db, db.session() as s:  # put through, and connected
                transfer = start_transfer(s, details().call.id, kind="warm", target="dentist")
                settle(s, transfer.id, "connected")
                s.commit()
            first.kill()
            first.wait()
            assert await call.wait_ended(timeout=30) == "completed"
            second = await start_serving(project, env, twilio)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        try:
            ended = await eventually(lambda: details().call.status != "in-progress" and details(), 60, "reconciled")
        finally:
            second.terminate()
            await asyncio.to_thread(second.wait, 30)
    assert ended.call.status == "completed" and ended.call.ended_at is not None
    assert ended.call.failure_reason == (
        "the call ended while being put through, with no server up to hear it; Twilio reports it completed"
    )
    assert [(t.kind, t.result) for t in ended.transfers] == [("warm", "completed")]


async def start_serving(
    project: Any, env: dict[str, str], twilio: TwilioEmulator, *options: str
) -> subprocess.Popen[bytes]:
    """`tars serve` on a free port, answering /healthz, with Twilio's webhooks routed to it;
    ``options`` are added to the command line (the last of an option's values wins)."""
    port = free_port()
    command = ["-m", "tars", "--project", str(project.root), "serve", "--port", str(port), "--log-level", "warning"]
    command += options
    server = subprocess.Popen(
        [sys.executable, *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    local = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:

        async def up() -> bool:
            if server.poll() is not None:
                pytest.fail("tars serve did not come up: " + server.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
            try:
                async with http.get(f"{local}/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(up, 120, "tars serve answering /healthz")
    twilio.route(PUBLIC, local)
    return server
