"""What `tars serve` writes to its log: one line per thing that happened, readable by a person
(the default) or, with ``--log-format json``, one JSON object per line for a machine."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from tars.emulators.gemini.emulator import GeminiEmulator
from tars.emulators.twilio.emulator import TwilioEmulator
from tests.server.harness import ACCOUNT, API_KEY, TOKEN
from tests.server.test_owner_calls import greet_then
from tests.server.test_serve_process import owner_rings, served_project, start_serving


async def served_call_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *options: str) -> list[str]:
    """The lines `tars serve` logged for one owner's call, start to stop."""
    async with (
        TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False) as twilio,
        GeminiEmulator(api_key=API_KEY, brain_factory=greet_then) as gemini,
    ):
        project, env = served_project(tmp_path, monkeypatch, twilio, gemini)
        server = await start_serving(project, env, twilio, "--log-level", "info", *options)
        try:
            call = await owner_rings(twilio, project)
            await call.wait_for_agent_utterance(timeout=30)
            await call.hang_up()
            assert await call.wait_ended(timeout=30) == "completed"
            server.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.wait, 40)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert server.stderr is not None
        return server.stderr.read().decode().splitlines()


NOISE = ("WebSocket /twilio/stream", "connection open", "POST /twilio", "is not emitting turn frames",
         "mutated turn strategies", "AFC is enabled", "x-goog-api-key")  # fmt: skip


async def test_a_call_is_a_few_lines_a_person_can_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = await served_call_log(tmp_path, monkeypatch)
    text = "\n".join(lines)
    assert "INFO tars.calls: call 1 connected: inbound, from Alex Morgan (owner)" in text
    assert "INFO tars.calls: call 1 ended: completed after" in text
    assert not [line for line in lines if any(noise in line for noise in NOISE)], text
    assert "+44" not in text, "no phone number in the log at info"
    assert len([line for line in lines if line.strip()]) <= 8, text


async def test_json_lines_for_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line for line in await served_call_log(tmp_path, monkeypatch, "--log-format", "json") if line.strip()]
    entries = []
    for line in lines:
        if line.startswith("TARS is answering"):  # said to the person starting it, not logged
            continue
        entry = json.loads(line)
        assert set(entry) >= {"time", "level", "logger", "message"}, entry
        entries.append(entry)
    said = [(e["level"], e["logger"], e["message"]) for e in entries]
    assert ("info", "tars.calls", "call 1 connected: inbound, from Alex Morgan (owner)") in said
    assert any(m.startswith("call 1 ended: completed after") for _level, _logger, m in said)
    assert all(e["time"].endswith("+00:00") for e in entries)
