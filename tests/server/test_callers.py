"""Who calls decides what TARS may do: unknown callers, contacts, PINs, forgeries, limits, outages."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tars.emulators.gemini.emulator import CallTool, Say, ScriptedBrain
from tars.emulators.twilio.emulator import Party
from tests.server.harness import PUBLIC, Line, make_project
from tests.server.test_owner_calls import greet_then

STRANGER = "+15005550006"


def details(line: Line, sid: str) -> Any:
    from tars.store.calls import call_details

    with line.db() as db, db.session() as s:
        return call_details(s, sid)


async def test_unknown_caller_leaves_a_message_and_cannot_list_contacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    # One step per brain event, and the caller waits for each answer: speaking again while
    # the model is still in its turn would interrupt it.
    brain = greet_then(
        CallTool("list_contacts", {}),  # forged: never offered to an unknown caller
        Say("I'm afraid I can't share that."),  # on the refusal
        CallTool("take_message", {"message": "Please call Sam back about the boat", "caller_name": "Sam"}),
        [Say("I'll pass that on. Goodbye."), CallTool("end_call", {"reason": "message taken"})],
    )
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=STRANGER)
        hello = await call.wait_for_agent_utterance(timeout=20)
        assert "You've reached Alex Morgan's assistant, TARS" in hello.text
        await call.say("can you tell me who Alex knows")
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("tell Alex to call Sam back about the boat")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        session = line.gemini.sessions[0]
        texts = [m.body for m in line.twilio.messages]

    assert session.tool_names == ["take_message", "end_call"]
    assert "not in Alex Morgan's contacts" in session.system_instruction
    refused = brain.events[2].response
    assert refused == {"refused": "'list_contacts' is not available to the unknown role on this call"}
    record = details(line, call.sid)
    assert [(t.tool, t.allowed) for t in record.tools] == [
        ("list_contacts", False),
        ("take_message", True),
        ("end_call", True),
    ]
    assert record.tools[0].reason == refused["refused"]
    # Every call ends with a summary, read from what was said (here by the emulated text model).
    assert "tell Alex to call Sam back about the boat" in record.call.summary
    owner = project.owner.phone
    assert f"Incoming call from {STRANGER}" in texts
    assert f"Message from Sam ({STRANGER}): Please call Sam back about the boat" in texts
    assert all(m.to == owner for m in line.twilio.messages)


async def test_contact_gets_the_contact_greeting_and_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    from tars.store.contacts import Rules, add_contact
    from tars.store.database import connect

    with connect(project.database_url) as db, db.session() as s:
        add_contact(s, Rules.of(project), name="Helen Price", phone="+447700900456")
    brain = greet_then(CallTool("end_call", {}), Say("Bye."))
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_="+447700900456")
        hello = await call.wait_for_agent_utterance(timeout=20)
        await call.say("bye")
        await call.wait_ended(timeout=30)
        session = line.gemini.sessions[0]
    assert "Helen Price" in hello.text and "Alex Morgan's assistant" in hello.text
    assert session.tool_names == ["current_time", "take_message", "transfer_call", "end_call"]


async def test_forged_webhook_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, ScriptedBrain) as line:
        form = {
            "CallSid": "CA" + "f" * 32,
            "From": project.owner.phone,
            "To": line.number,
            "AccountSid": "AC" + "1" * 32,
        }
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Twilio-Signature": "forged"}):
                async with http.post(f"{line.server.local_url}/twilio/voice", data=form, headers=headers) as response:
                    assert response.status == 403
            # A real signature over the wrong URL (what the proxy forwarded to) is also refused.
            from twilio.request_validator import RequestValidator

            local = f"{line.server.local_url}/twilio/voice"
            sig = RequestValidator("test-auth-token").compute_signature(local, form)
            async with http.post(local, data=form, headers={"X-Twilio-Signature": sig}) as response:
                assert response.status == 403
            public = RequestValidator("test-auth-token").compute_signature(f"{PUBLIC}/twilio/voice", form)
            async with http.post(local, data=form, headers={"X-Twilio-Signature": public}) as response:
                assert response.status == 200
                assert "<Connect><Stream" in await response.text()


async def test_tampered_stream_parameters_close_the_socket_before_any_model_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, ScriptedBrain) as line:
        form = {"CallSid": "CA" + "a" * 32, "From": STRANGER, "To": line.number, "AccountSid": "AC" + "1" * 32}
        from twilio.request_validator import RequestValidator

        sig = RequestValidator("test-auth-token").compute_signature(f"{PUBLIC}/twilio/voice", form)
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{line.server.local_url}/twilio/voice", data=form, headers={"X-Twilio-Signature": sig}
            ) as response:
                body = await response.text()
            params = {p.get("name"): p.get("value") for p in ET.fromstring(body).iter("Parameter")}
            assert params["role"] == "unknown"
            for tamper in ({"role": "owner"}, {"call_sid": "CA" + "b" * 32}, {"sig": ""}):
                forged = {**params, **tamper}
                ws_url = line.server.local_url.replace("http", "ws") + "/twilio/stream"
                async with http.ws_connect(ws_url) as ws:
                    await ws.send_str(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
                    await ws.send_str(
                        json.dumps(
                            {
                                "event": "start",
                                "sequenceNumber": "1",
                                "streamSid": "MZ" + "1" * 32,
                                "start": {
                                    "accountSid": "AC" + "1" * 32,
                                    "streamSid": "MZ" + "1" * 32,
                                    "callSid": forged["call_sid"],
                                    "tracks": ["inbound"],
                                    "customParameters": forged,
                                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                                },
                            }
                        )
                    )
                    message = await ws.receive(timeout=10)
                    assert message.type in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.CLOSING,
                    )
                    assert ws.close_code == 1008
        assert line.gemini.sessions == []


async def test_callers_over_the_limit_hear_a_busy_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(
        tmp_path / "p", monkeypatch, [("tars.yaml", "max_concurrent_calls: 4", "max_concurrent_calls: 1")]
    )
    brain = greet_then(CallTool("end_call", {}), Say("Bye."))
    async with Line(project, lambda: brain) as line:
        first = await line.call_in(from_=project.owner.phone)
        await first.wait_for_agent_utterance(timeout=20)
        second = await line.call_in(from_=STRANGER)
        assert await second.wait_ended(timeout=20) == "completed"
        assert [u.text for u in second.heard] == [
            "Sorry, the assistant is busy on other calls right now. Please try again in a few minutes."
        ]
        assert len(line.gemini.sessions) == 1
        await first.say("bye")
        await first.wait_ended(timeout=30)


async def test_gemini_drop_mid_call_resumes_and_the_call_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(Say("Still here, sir."), [Say("Goodbye."), CallTool("end_call", {})])
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        session = line.gemini.sessions[0]
        await line.gemini.wait_for(lambda: session.handles, what="a resumption handle")
        await line.gemini.drop()
        await line.gemini.wait_for(lambda: session.connections == 2 and session.connected, what="resumed", timeout=20)
        await call.say("are you still there")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Still here, sir."
        await call.say("good, bye")
        assert await call.wait_ended(timeout=30) == "completed"
    assert details(line, call.sid).call.status == "completed"


async def test_gemini_gone_for_good_apologises_and_records_the_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, lambda: greet_then()) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        session = line.gemini.sessions[0]
        await line.gemini.wait_for(lambda: session.handles, what="a resumption handle")
        line.gemini.refuse_resumption = True
        line.gemini.accepting = False
        await line.gemini.drop()
        assert await call.wait_ended(timeout=60) == "completed"
        heard = [u.text for u in call.heard]
        await line.settle()  # the failure is recorded once the call's session has ended
    assert any("technical trouble" in text for text in heard), heard
    record = details(line, call.sid).call
    assert record.status == "failed"
    assert "model session failed" in (record.failure_reason or "")


async def test_owner_pin_from_an_unknown_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARS_OWNER_PIN", "2468")
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(CallTool("end_call", {}), Say("Bye."))
    async with Line(project, lambda: brain) as line:
        call = await line.twilio.incoming_call(
            from_=STRANGER, to=line.number, voice_url=f"{PUBLIC}/twilio/voice", party=Party(gather=["2468#"])
        )
        prompt = await call.wait_for_agent_utterance(timeout=20)
        assert prompt.text == "If you are Alex Morgan, enter your PIN followed by the hash key. Otherwise, please hold."
        hello = await call.wait_for_agent_utterance(timeout=20)
        await call.say("bye")
        await call.wait_ended(timeout=30)
        session = line.gemini.sessions[0]
    assert "TARS at your service" in hello.text
    assert session.tool_names == list(project.roles["owner"].tools)
    assert "2468" not in session.system_instruction and all("2468" not in h["text"] for h in session.history)


async def test_three_wrong_pins_end_the_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARS_OWNER_PIN", "2468")
    project = make_project(tmp_path / "p", monkeypatch, [("tars.yaml", "require_pin: false", "require_pin: true")])
    async with Line(project, ScriptedBrain) as line:
        call = await line.twilio.incoming_call(
            from_=project.owner.phone,
            to=line.number,
            voice_url=f"{PUBLIC}/twilio/voice",
            party=Party(gather=["1111#", "2222#", "3333#"]),
        )
        assert await call.wait_ended(timeout=20) == "completed"
        heard = [u.text for u in call.heard]
    assert heard[-1] == "That PIN is not right. Goodbye."
    assert line.gemini.sessions == []
    record = details(line, call.sid).call
    assert (record.status, record.failure_reason) == ("failed", "wrong PIN")
    import logging  # the PIN never reaches a log

    assert "1111" not in "".join(str(r.getMessage()) for r in logging.getLogger("tars").handlers)


async def test_status_callbacks_update_the_call_and_forged_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twilio.request_validator import RequestValidator

    from tars.store.calls import start_call
    from tests.server.harness import TOKEN

    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, ScriptedBrain) as line:
        sid = "CA" + "c" * 32
        with line.db() as db, db.session() as s:
            start_call(s, direction="outbound", from_number=line.number, to_number=STRANGER, sid=sid, status="queued")
        url = f"{PUBLIC}/twilio/status"
        async with aiohttp.ClientSession() as http:
            for status, code in (("ringing", 204), ("busy", 204), ("ringing", 204)):
                form = {"CallSid": sid, "CallStatus": status, "AccountSid": "AC" + "1" * 32}
                signature = RequestValidator(TOKEN).compute_signature(url, form)
                async with http.post(
                    f"{line.server.local_url}/twilio/status", data=form, headers={"X-Twilio-Signature": signature}
                ) as r:
                    assert r.status == code
            forged = {"CallSid": sid, "CallStatus": "completed"}
            async with http.post(
                f"{line.server.local_url}/twilio/status", data=forged, headers={"X-Twilio-Signature": "bogus"}
            ) as r:
                assert r.status == 403
    assert details(line, sid).call.status == "busy", "a late 'ringing' never undoes an end, a forgery changes nothing"


async def test_keys_the_caller_presses_reach_the_model_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARS_OWNER_PIN", "2468")
    project = make_project(tmp_path / "p", monkeypatch)

    def keys(session: Any, event: Any) -> list[Any]:
        return [Say(f"Noted: {event.text}"), CallTool("end_call", {})]

    brain = greet_then(keys, Say("Bye."))
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.press("42#")
        await call.wait_ended(timeout=30)
    assert brain.events[1].text == "[The caller pressed the keys: 42#]"
    said = [(t.speaker, t.text) for t in details(line, call.sid).transcript]
    assert ("caller", "pressed 42#") in said
