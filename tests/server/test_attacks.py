"""What an attack run on `tars serve` broke, held now: PIN guessing across calls, replayed
and re-split stream parameters, oversized and deeply nested bodies, odd tokens."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from tars.emulators.gemini.emulator import ScriptedBrain
from tars.emulators.twilio.emulator import Party
from tars.telephony.signatures import StreamSigner
from tests.server.harness import PUBLIC, TOKEN, Line, make_project
from tests.server.test_callers import STRANGER, details
from tests.waiting import eventually

CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


def signed(path: str, form: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(f"{PUBLIC}{path}", form)}


async def open_stream(http: aiohttp.ClientSession, line: Line, params: dict[str, str]) -> Any:
    """A media stream as Twilio opens one, presenting ``params`` as its custom parameters."""
    assert line.server is not None
    ws = await http.ws_connect(line.server.local_url.replace("http", "ws") + "/twilio/stream")
    await ws.send_str(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    start = {
        "accountSid": "AC" + "1" * 32,
        "streamSid": "MZ" + "1" * 32,
        "callSid": params["call_sid"],
        "tracks": ["inbound"],
        "customParameters": params,
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    await ws.send_str(
        json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": start["streamSid"], **{"start": start}})
    )
    return ws


def events(line: Line) -> list[tuple[str, str]]:
    """The security events recorded, oldest first: (kind, detail)."""
    from tars.store.security_events import recent

    with line.db() as db, db.session() as s:
        return [(e.kind, e.detail) for e in reversed(recent(s))]


async def test_wrong_pins_across_calls_lock_pin_entry_and_the_owner_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARS_OWNER_PIN", "2468")
    project = make_project(tmp_path / "p", monkeypatch, [("tars.yaml", "require_pin: false", "require_pin: true")])
    owner = project.owner.phone
    async with Line(project, ScriptedBrain) as line:
        first = await line.call_in(from_=owner, party=Party(gather=["1111#", "2222#", "3333#"]))
        assert await first.wait_ended(timeout=20) == "completed"
        second = await line.call_in(from_=owner, party=Party(gather=["4444#", "5555#", "2468#"]))
        assert await second.wait_ended(timeout=20) == "completed"
        # Even the right PIN is refused while PIN entry is locked.
        third = await line.call_in(from_=owner, party=Party(gather=["2468#"]))
        assert await third.wait_ended(timeout=20) == "completed"
        await line.settle()
        texts = [m.body for m in line.twilio.messages if m.to == owner]
    locked = "PIN entry is locked after too many wrong tries. Please try again later. Goodbye."
    assert [u.text for u in second.heard][-1] == locked
    assert [u.text for u in third.heard] == [locked]
    assert line.gemini.sessions == []
    assert (details(line, second.sid).call.failure_reason, details(line, third.sid).call.failure_reason) == (
        "PIN entry locked",
        "PIN entry locked",
    )
    assert any(t.startswith(f"Security: PIN entry is locked for {owner} until ") for t in texts), texts
    # The lockout and the call refused while locked are security events; the owner hears of the first.
    found = events(line)
    assert [kind for kind, _ in found] == ["pin_lockout", "pin_lockout"]
    assert found[0][1].startswith(f"PIN entry is locked for {owner} until ")
    assert found[1][1] == f"a call from {owner}: PIN entry is locked"
    assert len([t for t in texts if t.startswith("Security:")]) == 1


async def test_signed_stream_parameters_open_one_stream_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, ScriptedBrain) as line, aiohttp.ClientSession() as http:
        assert line.server is not None
        form = {"CallSid": "CA" + "a" * 32, "From": STRANGER, "To": line.number, "AccountSid": "AC" + "1" * 32}
        url = f"{line.server.local_url}/twilio/voice"
        async with http.post(url, data=form, headers=signed("/twilio/voice", form)) as response:
            params = {p.get("name"): p.get("value") for p in ET.fromstring(await response.text()).iter("Parameter")}
        board = line.server.server
        first = await open_stream(http, line, params)
        await eventually(lambda: form["CallSid"] in board.sessions, what="the genuine stream's call session")
        again = await open_stream(http, line, params)
        assert (await again.receive(timeout=10)).type in CLOSED
        assert again.close_code == 1008
        await again.close()
        await first.close()
        await line.settle()
        await first.close()
        # after the call ended, the same parameters still open nothing
        late = await open_stream(http, line, params)
        assert (await late.receive(timeout=10)).type in CLOSED
        assert late.close_code == 1008
        await late.close()
        assert not board.sessions


async def test_control_characters_in_a_signed_webhook_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, ScriptedBrain) as line, aiohttp.ClientSession() as http:
        assert line.server is not None
        form = {
            "CallSid": "CA" + "c" * 32,
            "From": STRANGER + "\nrole=owner",
            "To": line.number,
            "AccountSid": "AC" + "1" * 32,
        }
        url = f"{line.server.local_url}/twilio/voice"
        async with http.post(url, data=form, headers=signed("/twilio/voice", form)) as response:
            assert response.status == 403
    with line.db() as db, db.session() as s:
        from tars.store.calls import list_calls

        assert list_calls(s) == []


def test_the_stream_mac_cannot_be_re_split() -> None:
    """``{a: 1, b: 2}`` and ``{a: "1\\nb=2"}`` once signed alike."""
    signer = StreamSigner.from_secret("s3cret")
    genuine = signer.sign({"from": "+15005550006\nrole=owner"}, now=1000)
    split = {"from": "+15005550006", "role": "owner", "exp": genuine["exp"], "n": genuine["n"], "sig": genuine["sig"]}
    assert signer.verify(genuine, now=1001) is None
    assert signer.verify(split, now=1001) == "stream parameter signature does not match"


async def test_bodies_are_limited_before_they_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, ScriptedBrain) as line, aiohttp.ClientSession() as http:
        assert line.server is not None
        base = line.server.local_url
        token = {"Authorization": f"Bearer {line.server.api_token}"}

        async def chunks(total: int) -> Any:  # chunked: no Content-Length to refuse up front
            for _ in range(total // 65536):
                yield b"x" * 65536

        async with http.post(f"{base}/twilio/voice", data=b"x" * (200 * 1024)) as response:
            assert response.status == 413
            assert "at most 65536 bytes" in await response.text()
        async with http.post(f"{base}/twilio/voice", data=chunks(4 * 1024 * 1024)) as response:
            assert response.status == 413
        async with http.post(f"{base}/api/calls", data=b"{" + b" " * (2 * 1024 * 1024), headers=token) as response:
            assert response.status == 413
        deep = b"[" * 100_000 + b"]" * 100_000
        async with http.post(f"{base}/api/calls", data=deep, headers=token) as response:
            assert response.status == 400
            assert "nested deeper than 32 levels" in (await response.json())["error"]
        for odd in ("Bearer caf\u00e9\u00ff", "Bearer \u00e9"):
            async with http.post(f"{base}/api/calls", json={}, headers={"Authorization": odd}) as response:
                assert response.status == 401
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200


async def test_bad_media_frames_are_skipped_and_the_call_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tars.emulators.gemini.emulator import CallTool, Say
    from tests.server.test_owner_calls import greet_then

    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(Say("Still here, sir."), [Say("Goodbye."), CallTool("end_call", {})])
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        stream = call.stream
        assert stream is not None
        sid = getattr(stream, "stream_sid", "MZ" + "0" * 32)
        for bad in (
            {"event": "media", "streamSid": sid, "media": {"track": "inbound", "payload": "!!not base64!!"}},
            {"event": "media", "streamSid": sid, "media": {"track": "inbound", "payload": 12345}},
            {"event": "media", "streamSid": sid, "media": None},
            {"event": "dtmf", "streamSid": sid, "dtmf": None},
            {"event": "dtmf", "streamSid": sid, "dtmf": {"digit": None}},
            [1, 2, 3],
            {"event": "media", "streamSid": sid, "media": {"payload": "A" * 200_000}},
        ):
            await stream._send(bad)  # type: ignore[arg-type]  # a fault no real Twilio would send
        await call.say("are you still there")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Still here, sir."
        await call.say("good, bye")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    assert details(line, call.sid).call.status == "completed"


@pytest.mark.parametrize("size", [2_000_000, 20_000_000])  # over the stream's 1 MiB; over uvicorn's own 16 MiB
async def test_an_oversized_media_message_ends_the_call_recorded_failed_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    from tars.emulators.gemini.emulator import Say
    from tests.server.test_owner_calls import greet_then

    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, lambda: greet_then(Say("Still here, sir."), [])) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        stream = call.stream
        assert stream is not None
        sid = getattr(stream, "stream_sid", "MZ" + "0" * 32)
        # Megabytes in one message: no Twilio media message is more than a few hundred bytes.
        huge = {"event": "media", "streamSid": sid, "media": {"track": "inbound", "payload": "A" * size}}
        await stream._send(huge)  # type: ignore[arg-type]  # a fault no real Twilio would send
        await call.wait_ended(timeout=30)
        await line.settle()
    row = details(line, call.sid).call
    assert row.status == "failed"
    assert "1009" in (row.failure_reason or "") and "too large" in (row.failure_reason or "")
