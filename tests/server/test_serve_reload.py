"""`tars serve` follows the YAML: a saved edit applies to the next call without a restart; an
edit that does not load is logged as file:line and the last good configuration keeps serving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tars.emulators.gemini.emulator import GeminiEmulator
from tars.emulators.twilio.emulator import TwilioEmulator
from tests.server.harness import ACCOUNT, API_KEY, PUBLIC, TOKEN
from tests.server.test_personas import greet_and_hang_up
from tests.server.test_serve_process import free_port, owner_rings, served_project
from tests.waiting import eventually


async def test_an_edit_applies_to_the_next_call_and_a_bad_one_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False) as twilio,
        GeminiEmulator(api_key=API_KEY, brain_factory=greet_and_hang_up) as gemini,
    ):
        project, env = served_project(tmp_path, monkeypatch, twilio, gemini)
        persona = project.root / "personas" / "tars.yaml"
        log = tmp_path / "serve.log"
        port = free_port()
        command = ["-m", "tars", "--project", str(project.root), "serve", "--port", str(port), "--log-level", "info"]
        with log.open("wb") as sink:
            server = subprocess.Popen([sys.executable, *command], env=env, stdout=subprocess.DEVNULL, stderr=sink)
        try:

            async def up() -> bool:
                if server.poll() is not None:
                    pytest.fail("tars serve did not come up: " + log.read_text()[-2000:])
                try:
                    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(up, 120, "tars serve answering /healthz")
            twilio.route(PUBLIC, f"http://127.0.0.1:{port}")

            async def owner_call() -> str:
                call = await owner_rings(twilio, project)
                await call.wait_for_agent_utterance(timeout=30)
                assert await call.wait_ended(timeout=30) == "completed"
                return gemini.sessions[-1].system_instruction

            assert "Humour: 35/100" in await owner_call()

            text = persona.read_text()
            persona.write_text(text.replace("humor: 35", "humor: 150"))  # out of range: the schema refuses it
            logged = await eventually(
                lambda: "still serving the last good configuration" in log.read_text() and log.read_text(),
                60,
                "the bad edit logged",
            )
            assert "personas/tars.yaml:10:8" in logged and "$.humor  150 is too large; must be <= 100" in logged
            assert "Humour: 35/100" in await owner_call()  # the last good persona

            persona.write_text(text.replace("humor: 35", "humor: 60"))
            await eventually(lambda: "reloaded after a change to personas/tars.yaml" in log.read_text(), 60, "reload")
            assert "Humour: 60/100" in await owner_call()  # no restart
            assert server.poll() is None
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
