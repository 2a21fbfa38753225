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

from tars.sim.gemini import GeminiEmulator
from tars.sim.twilio import TwilioEmulator
from tests.server.harness import ACCOUNT, API_KEY, PUBLIC, TOKEN
from tests.server.test_owner_calls import greet_then
from tests.server.test_serve_process import free_port, owner_rings, served_project
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
