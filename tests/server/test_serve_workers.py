"""`tars serve --workers 2` as a real process: two servers on one port and one database, both
answering, and stopped together on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tars.emulators.gemini.emulator import GeminiEmulator
from tars.emulators.twilio.emulator import TwilioEmulator
from tests.server.harness import ACCOUNT, API_KEY, PUBLIC, TOKEN
from tests.server.test_owner_calls import greet_then
from tests.server.test_serve_process import free_port, owner_rings, served_project, start_serving
from tests.waiting import eventually


async def test_two_workers_share_the_port_and_stop_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False) as twilio,
        GeminiEmulator(api_key=API_KEY, brain_factory=greet_then) as gemini,
    ):
        project, env = served_project(tmp_path, monkeypatch, twilio, gemini)
        port = free_port()
        command = [sys.executable, "-m", "tars", "--project", str(project.root), "serve", "--port", str(port),
                   "--log-level", "warning", "--workers", "2"]  # fmt: skip
        server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen: set[str] = set()
        try:
            local = f"http://127.0.0.1:{port}"

            async def both_answer() -> bool:
                if server.poll() is not None:
                    pytest.fail("tars serve --workers 2 stopped: " + server.stderr.read().decode()[-2000:])
                try:  # a new connection each time: the kernel hands it to either worker
                    connector = aiohttp.TCPConnector(force_close=True)
                    async with aiohttp.ClientSession(connector=connector) as http, http.get(f"{local}/healthz") as r:
                        seen.add((await r.json())["server"])
                except aiohttp.ClientError:
                    return False
                return len(seen) == 2

            await eventually(both_answer, 120, "both workers answering /healthz")
            twilio.route(PUBLIC, local)
            call = await owner_rings(twilio, project)
            await call.wait_for_agent_utterance(timeout=30)
            server.send_signal(signal.SIGTERM)
            assert await call.wait_ended(timeout=40) == "completed"
            code = await asyncio.to_thread(server.wait, 40)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    assert code == 0, server.stderr.read().decode()[-3000:]
    assert len({name.rsplit(":", 2)[1] for name in seen}) == 2, f"two processes: {seen}"


async def test_metrics_count_the_calls_of_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls held by both workers; every scrape, whichever worker answers it, counts them all."""
    from sqlmodel import select

    from tars.server.api import read_token
    from tars.store.database import connect
    from tars.store.models import Call
    from tests.server.test_metrics import samples, value

    async with (
        TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False) as twilio,
        GeminiEmulator(api_key=API_KEY, brain_factory=greet_then) as gemini,
    ):
        project, env = served_project(tmp_path, monkeypatch, twilio, gemini)
        server = await start_serving(project, env, twilio, "--workers", "2")
        local = f"http://127.0.0.1:{server.args[server.args.index('--port') + 1]}"

        async def get(path: str, token: str | None = None) -> tuple[int, str]:
            connector = aiohttp.TCPConnector(force_close=True)  # a new connection: either worker
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with aiohttp.ClientSession(connector=connector) as http, http.get(local + path, headers=headers) as r:
                return r.status, await r.text()

        def holder(sid: str) -> str | None:
            with connect(project.database_url) as db, db.session() as s:
                return s.exec(select(Call.live_on).where(Call.sid == sid)).first()

        holders: set[str] = set()
        calls = 0
        try:
            while len(holders) < 2:  # each call's stream reaches either worker
                assert calls < 12, f"every call was held by one worker: {holders}"
                call = await owner_rings(twilio, project)
                await call.wait_for_agent_utterance(timeout=30)
                holders.add(await eventually(lambda c=call: holder(c.sid), 30, "the call's session in the database"))
                await call.hang_up()
                assert await call.wait_ended(timeout=30) == "completed"
                calls += 1
            token = read_token(project)

            async def all_counted() -> bool:
                status, text = await get("/metrics", token)
                assert status == 200, text
                ended = {"direction": "inbound", "purpose": "inbound", "role": "owner", "result": "completed"}
                return value(samples(text), "tars_calls_total", **ended) == calls

            for _ in range(6):  # scrapes land on either worker; each one counts every call
                await eventually(all_counted, 30, f"/metrics counting all {calls} calls")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(server.wait, 40)
            finally:
                if server.poll() is None:
                    server.kill()
                    server.wait()
