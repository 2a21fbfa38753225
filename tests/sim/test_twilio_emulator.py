"""The loopback Twilio emulator against the real, unmodified twilio-python and pipecat.

Every test drives the real SDKs (``twilio.rest.Client``, ``RequestValidator``,
pipecat's ``parse_telephony_websocket``/``TwilioFrameSerializer``/transport) at the
emulator; nothing is mocked. Pacing is off (``realtime=False``) unless a test is
about pacing, so the file runs in seconds; no test asserts wall-clock times.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio_helpers import (
    CALLER,
    TARS_NUMBER,
    MediaServer,
    MediaSession,
    WebhookApp,
    create_call,
    media_server,
    stream_twiml,
)

from tars.sim import speech, twiml
from tars.sim.twilio import Party, TwilioEmulator
from tars.sim.twilio_rest import signature
from tests.waiting import eventually

PUBLIC = "https://tars.example.com"


# --- REST + signed webhooks ---------------------------------------------------------------


async def test_rest_create_posts_signed_webhooks_and_status_callbacks(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_app.answers["/voice"] = "<Response><Say>Hi</Say><Hangup/></Response>"
    created = await create_call(
        twilio_client,
        url=twilio_app.base_url + "/voice",
        status_callback=twilio_app.base_url + "/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    assert twilio_client.http_client._test_only_last_response.status_code == 201
    assert created.sid.startswith("CA") and len(created.sid) == 34
    assert created.status == "queued"
    assert created.direction == "outbound-api"
    assert created.to == CALLER and created._from == TARS_NUMBER
    call = await twilio_emu.next_call()
    assert call.sid == created.sid
    assert await call.wait_ended() == "completed"

    assert all(r.valid for r in twilio_app.requests)
    voice = twilio_app.seen("/voice")[0].params
    assert voice["CallSid"] == created.sid
    assert voice["AccountSid"] == twilio_emu.account_sid
    assert voice["Direction"] == "outbound-api"
    assert voice["CallStatus"] == "in-progress"
    assert voice["ApiVersion"] == "2010-04-01"
    assert (voice["From"], voice["To"], voice["Caller"], voice["Called"]) == (
        TARS_NUMBER,
        CALLER,
        TARS_NUMBER,
        CALLER,
    )
    assert voice["FromCountry"] == "US" and voice["FromCity"] == ""
    assert "AnsweredBy" not in voice  # no MachineDetection requested

    statuses = [r.params for r in twilio_app.seen("/status")]
    assert [s["CallStatus"] for s in statuses] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [s["SequenceNumber"] for s in statuses] == ["0", "1", "2", "3"]
    assert all(s["CallbackSource"] == "call-progress-events" and s["Timestamp"] for s in statuses)
    assert "CallDuration" in statuses[-1] and statuses[-1]["SipResponseCode"] == "200"
    assert [u.text for u in call.heard] == ["Hi"]
    assert call.statuses == ["queued", "ringing", "in-progress", "completed"]

    fetched = await asyncio.to_thread(twilio_client.calls(created.sid).fetch)
    assert fetched.status == "completed"
    assert fetched.end_time is not None
    twilio_emu.assert_no_errors()


async def test_only_completed_callback_by_default(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    await create_call(
        twilio_client,
        twiml="<Response><Say>Hello</Say></Response>",
        status_callback=twilio_app.base_url + "/status",
    )
    call = await twilio_emu.next_call()
    await call.wait_ended()
    assert [r.params["CallStatus"] for r in twilio_app.seen("/status")] == ["completed"]
    assert twilio_app.seen("/voice") == []  # inline Twiml: nothing fetched
    assert [u.text for u in call.heard] == ["Hello"]


async def test_tampered_signature_or_url_fails_request_validator(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_app.answers["/voice"] = "<Response><Hangup/></Response>"
    await create_call(twilio_client, url=twilio_app.base_url + "/voice?tenant=a")
    await (await twilio_emu.next_call()).wait_ended()
    seen = twilio_app.seen("/voice")[0]
    validator = RequestValidator(twilio_emu.auth_token)
    assert seen.public_url.endswith("/voice?tenant=a")
    assert validator.validate(seen.public_url, seen.params, seen.signature)
    tampered = seen.params | {"From": "+15559999999"}
    assert not validator.validate(seen.public_url, tampered, seen.signature)
    assert not validator.validate(seen.public_url + "&x=1", seen.params, seen.signature)
    assert not RequestValidator("other-token").validate(seen.public_url, seen.params, seen.signature)


def test_signature_matches_twilio_validator_including_repeated_keys() -> None:
    from multidict import MultiDict

    validator = RequestValidator("tok")
    url = "https://tars.example.com/voice?x=1"
    params = MultiDict([("b", "2"), ("a", "1"), ("b", "1"), ("Empty", "")])
    assert signature("tok", url, list(params.items())) == validator.compute_signature(url, params)
    assert validator.validate(url, params, signature("tok", url, list(params.items())))


async def test_webhook_with_blank_params_needs_keep_blank_values(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    """Trap: Twilio sends empty fields (FromCity=…); parse_qsl drops them by default."""
    from urllib.parse import parse_qsl, urlencode

    await create_call(twilio_client, url=twilio_app.base_url + "/voice")
    await (await twilio_emu.next_call()).wait_ended()
    seen = twilio_app.seen("/voice")[0]
    body = urlencode(seen.params)
    validator = RequestValidator(twilio_emu.auth_token)
    assert validator.validate(seen.public_url, dict(parse_qsl(body, keep_blank_values=True)), seen.signature)
    assert not validator.validate(seen.public_url, dict(parse_qsl(body)), seen.signature)


async def test_wrong_credentials_are_20003(twilio_emu: TwilioEmulator) -> None:
    client = twilio_emu.rest_client(auth_token="wrong")
    with pytest.raises(TwilioRestException) as info:
        await create_call(client, url="http://127.0.0.1:1/voice")
    assert info.value.status == 401 and info.value.code == 20003
    assert twilio_emu.calls == {}
    assert twilio_emu.errors[-1].code == 20003


async def test_api_key_credentials_are_accepted(twilio_app: WebhookApp) -> None:
    key, secret = "SK" + "1" * 32, "key-secret"
    async with TwilioEmulator(realtime=False, api_keys={key: secret}) as emu:
        client = emu.rest_client(api_key=(key, secret))
        created = await create_call(client, url=twilio_app.base_url + "/voice")
        assert created.account_sid == emu.account_sid
        await (await emu.next_call()).wait_ended()
        bad = emu.rest_client(api_key=(key, "nope"))
        with pytest.raises(TwilioRestException) as info:
            await asyncio.to_thread(bad.calls(created.sid).fetch)
        assert info.value.code == 20003


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "5551234"}, 21211),
        ({"to": "+1 555 123 4567"}, 21211),
        ({"from_": "TARS"}, 21212),
        ({"url": None, "twiml": None}, 21205),
        ({"url": "ftp://x/voice"}, 21205),
        ({"status_callback_event": ["answered", "hungup"]}, 21626),
        ({"machine_detection": "Yes"}, 20001),
        ({"send_digits": "12a"}, 20001),
    ],
)
async def test_create_call_rejects_what_twilio_rejects(
    twilio_emu: TwilioEmulator, twilio_client: Client, kwargs: dict[str, Any], code: int
) -> None:
    kwargs = {"url": "http://127.0.0.1:1/voice"} | kwargs
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    with pytest.raises(TwilioRestException) as info:
        await create_call(twilio_client, **kwargs)
    assert info.value.status == 400 and info.value.code == code
    assert twilio_emu.calls == {}


async def test_unknown_call_sid_is_404_20404(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as info:
        await asyncio.to_thread(twilio_client.calls("CA" + "f" * 32).fetch)
    assert info.value.status == 404 and info.value.code == 20404


async def test_plain_client_with_api_base_url(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    """Option 2 from the reference: an untouched Client, only ``api.base_url`` changed."""
    client = Client(twilio_emu.account_sid, twilio_emu.auth_token)
    client.api.base_url = twilio_emu.base_url
    created = await create_call(client, url=twilio_app.base_url + "/voice")
    await (await twilio_emu.next_call()).wait_ended()
    fetched = await asyncio.to_thread(client.calls(created.sid).fetch)
    assert fetched.status == "completed"


@pytest.mark.filterwarnings("ignore:.*(BasicAuth|auth' parameter).*:DeprecationWarning")
async def test_async_twilio_client(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    client = twilio_emu.rest_client(async_http=True)
    try:
        created = await client.calls.create_async(
            to=CALLER,
            from_=TARS_NUMBER,
            url=twilio_app.base_url + "/voice",
            status_callback=twilio_app.base_url + "/status",
            status_callback_event=["ringing", "completed"],
        )
        call = await twilio_emu.next_call()
        await call.wait_ended()
        fetched = await client.calls(created.sid).fetch_async()
    finally:
        await client.http_client.close()
    assert fetched.status == "completed"
    assert [r.params["CallStatus"] for r in twilio_app.seen("/status")] == ["ringing", "completed"]


async def test_messages_are_stored_with_signed_status_callbacks(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    message = await asyncio.to_thread(
        twilio_client.messages.create,
        to=CALLER,
        from_=TARS_NUMBER,
        body="Your table is booked for 7pm.",
        status_callback=twilio_app.base_url + "/sms-status",
    )
    assert message.sid.startswith("SM") and message.status == "queued"
    assert [(m.to, m.from_, m.body) for m in twilio_emu.messages] == [
        (CALLER, TARS_NUMBER, "Your table is booked for 7pm.")
    ]
    await eventually(lambda: len(twilio_app.seen("/sms-status")) == 2, what="both SMS status callbacks")
    callbacks = twilio_app.seen("/sms-status")
    assert [c.params["MessageStatus"] for c in callbacks] == ["sent", "delivered"]
    assert all(c.valid and c.params["MessageSid"] == message.sid for c in callbacks)
    fetched = await asyncio.to_thread(twilio_client.messages(message.sid).fetch)
    assert fetched.body == "Your table is booked for 7pm."

    with pytest.raises(TwilioRestException) as info:
        await asyncio.to_thread(twilio_client.messages.create, to="12", from_=TARS_NUMBER, body="x")
    assert info.value.code == 21211
    with pytest.raises(TwilioRestException) as info:
        await asyncio.to_thread(twilio_client.messages.create, to=CALLER, from_=TARS_NUMBER, body="")
    assert info.value.code == 21602


async def test_unverified_from_number_is_21210(twilio_app: WebhookApp) -> None:
    async with TwilioEmulator(realtime=False, numbers={TARS_NUMBER}) as emu:
        with pytest.raises(TwilioRestException) as info:
            await create_call(emu.rest_client(), from_="+15550000000", url=twilio_app.base_url)
        assert info.value.code == 21210
        await create_call(emu.rest_client(), url=twilio_app.base_url + "/voice")
        await (await emu.next_call()).wait_ended()


@pytest.mark.parametrize("answer", ["busy", "no-answer", "failed"])
async def test_unanswered_outcomes_send_final_status_without_connecting(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client, answer: str
) -> None:
    twilio_emu.set_party(CALLER, Party(answer=answer))
    created = await create_call(
        twilio_client,
        url=twilio_app.base_url + "/voice",
        status_callback=twilio_app.base_url + "/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    call = await twilio_emu.next_call()
    assert await call.wait_ended() == answer
    assert twilio_app.seen("/voice") == []
    assert [r.params["CallStatus"] for r in twilio_app.seen("/status")] == [
        "initiated",
        "ringing",
        answer,
    ]
    assert twilio_app.seen("/status")[-1].params["CallDuration"] == "0"
    fetched = await asyncio.to_thread(twilio_client.calls(created.sid).fetch)
    assert fetched.status == answer and fetched.start_time is None


@pytest.mark.parametrize(
    ("answer", "detection", "answered_by"),
    [
        ("human", "Enable", "human"),
        ("voicemail", "Enable", "machine_start"),
        ("voicemail", "DetectMessageEnd", "machine_end_beep"),
        ("fax", "Enable", "fax"),
    ],
)
async def test_machine_detection_adds_answered_by_to_the_voice_webhook(
    twilio_emu: TwilioEmulator,
    twilio_app: WebhookApp,
    twilio_client: Client,
    answer: str,
    detection: str,
    answered_by: str,
) -> None:
    twilio_emu.set_party(CALLER, Party(answer=answer))
    created = await create_call(twilio_client, url=twilio_app.base_url + "/voice", machine_detection=detection)
    await (await twilio_emu.next_call()).wait_ended()
    assert twilio_app.seen("/voice")[0].params["AnsweredBy"] == answered_by
    fetched = await asyncio.to_thread(twilio_client.calls(created.sid).fetch)
    assert fetched.answered_by == answered_by


async def test_async_amd_posts_the_result_separately(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_emu.set_party(CALLER, Party(answer="voicemail"))
    twilio_app.answers["/voice"] = stream_twiml("ws://127.0.0.1:1/ws")  # nothing listens
    await create_call(
        twilio_client,
        url=twilio_app.base_url + "/voice",
        machine_detection="DetectMessageEnd",
        async_amd="true",
        async_amd_status_callback=twilio_app.base_url + "/amd",
    )
    call = await twilio_emu.next_call()
    await call.wait_ended()
    await eventually(lambda: twilio_app.seen("/amd"), what="the AMD callback")
    assert "AnsweredBy" not in twilio_app.seen("/voice")[0].params
    amd = twilio_app.seen("/amd")[0]
    assert amd.valid and amd.params["AnsweredBy"] == "machine_end_beep"
    assert amd.params["CallSid"] == call.sid
    assert [e.code for e in call.errors] == [31920]  # the refused websocket, loudly


async def test_gather_redirect_and_play_digits(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_emu.set_party(CALLER, Party(gather=["2#"]))
    twilio_app.answers["/voice"] = (
        '<Response><Gather input="dtmf" numDigits="3" action="/menu">'
        "<Say>Press 2 for bookings.</Say></Gather><Say>Nothing pressed</Say></Response>"
    )
    twilio_app.answers["/menu"] = "<Response><Redirect>/next</Redirect></Response>"
    twilio_app.answers["/next"] = (
        '<Response><Play digits="ww12#"/><Pause length="1"/><Hangup/><Say>never</Say></Response>'
    )
    created = await create_call(twilio_client, url=twilio_app.base_url + "/voice", send_digits="w9")
    call = await twilio_emu.next_call()
    await call.wait_ended()
    menu = twilio_app.seen("/menu")[0]
    assert menu.valid and menu.params["Digits"] == "2" and menu.params["FinishedOnKey"] == "#"
    assert menu.params["CallSid"] == created.sid
    assert twilio_app.seen("/next")[0].valid
    assert call.agent_digits == ["9", "12#"]
    assert [u.text for u in call.heard] == ["Press 2 for bookings."]
    assert isinstance(call.verbs[-1], twiml.Hangup)
    twilio_emu.assert_no_errors()


async def test_gather_without_input_falls_through(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_app.answers["/voice"] = (
        '<Response><Gather action="/menu"><Say>Press a key</Say></Gather><Say>Goodbye</Say></Response>'
    )
    await create_call(twilio_client, url=twilio_app.base_url + "/voice")
    call = await twilio_emu.next_call()
    await call.wait_ended()
    assert twilio_app.seen("/menu") == []
    assert [u.text for u in call.heard] == ["Press a key", "Goodbye"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("<Response><Say>unclosed</Response>", "text/xml", 200, 12100),
        ("", "text/xml", 200, 12100),
        ("<Reply><Say>x</Say></Reply>", "text/xml", 200, 12200),
        ("<Response><Speak>x</Speak></Response>", "text/xml", 200, 12200),
        ("<Response><Record/></Response>", "text/xml", 200, 12200),
        ("<Response><Dial><Sip>sip:a@example.com</Sip></Dial></Response>", "text/xml", 200, 12200),
        ('{"say": "hi"}', "application/json", 200, 12300),
        ("oops", "text/plain", 500, 11200),
    ],
)
async def test_bad_twiml_or_webhook_is_recorded_loudly(
    twilio_emu: TwilioEmulator,
    twilio_app: WebhookApp,
    twilio_client: Client,
    body: str,
    content_type: str,
    status: int,
    code: int,
) -> None:
    twilio_app.answers["/voice"] = body
    twilio_app.content_types["/voice"] = content_type
    twilio_app.statuses["/voice"] = status
    await create_call(twilio_client, url=twilio_app.base_url + "/voice")
    call = await twilio_emu.next_call()
    assert await call.wait_ended() == "completed"
    assert [e.code for e in call.errors] == [code]
    with pytest.raises(AssertionError, match=str(code)):
        twilio_emu.assert_no_errors()


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("wss://tars.example.com/ws?from=+1555", 31920),
        ("https://tars.example.com/ws", 31920),
        ("/ws", 31920),
    ],
)
def test_stream_url_must_be_ws_without_query_string(url: str, code: int) -> None:
    with pytest.raises(twiml.TwimlError) as info:
        twiml.parse(stream_twiml(url))
    assert info.value.code == code


def test_twiml_parser_reads_verbs_and_rejects_bidirectional_tracks() -> None:
    verbs = twiml.parse(stream_twiml("wss://tars.example.com/ws", from_number="+1555", playbook="x"))
    stream = verbs[0]
    assert isinstance(stream, twiml.Stream) and stream.secure
    assert stream.parameters == {"from_number": "+1555", "playbook": "x"}
    assert not twiml.parse(stream_twiml("ws://127.0.0.1:9/ws"))[0].secure  # type: ignore[union-attr]
    both = '<Response><Connect><Stream url="wss://a/ws" track="both_tracks"/></Connect></Response>'
    with pytest.raises(twiml.TwimlError) as info:
        twiml.parse(both)
    assert info.value.code == 31941
    with pytest.raises(twiml.TwimlError):
        twiml.parse('<Response><Play digits="12x"/></Response>')


async def test_stream_url_with_query_string_fails_the_call(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_app.answers["/voice"] = stream_twiml("wss://tars.example.com/ws?caller=1")
    await create_call(twilio_client, url=twilio_app.base_url + "/voice")
    call = await twilio_emu.next_call()
    await call.wait_ended()
    assert [e.code for e in call.errors] == [31920]
    assert call.streams == []


async def test_inbound_call_and_reject(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    twilio_app.answers["/voice"] = '<Response><Reject reason="busy"/></Response>'
    call = await twilio_emu.incoming_call(
        from_=CALLER,
        to=TARS_NUMBER,
        voice_url=twilio_app.base_url + "/voice",
        status_callback=twilio_app.base_url + "/status",
    )
    assert await call.wait_ended() == "busy"
    voice = twilio_app.seen("/voice")[0]
    assert voice.valid
    assert voice.params["Direction"] == "inbound" and voice.params["CallStatus"] == "ringing"
    assert voice.params["From"] == CALLER and voice.params["To"] == TARS_NUMBER
    assert [r.params["CallStatus"] for r in twilio_app.seen("/status")] == ["busy"]
    assert call.start_time is None


async def test_unreachable_public_host_is_loud(twilio_emu: TwilioEmulator, twilio_client: Client) -> None:
    await create_call(twilio_client, url="https://tars.example.com/voice")
    call = await twilio_emu.next_call()
    await call.wait_ended()
    assert call.errors[0].code == 11200
    assert "emu.route" in call.errors[0].message


# --- behind a reverse proxy ---------------------------------------------------------------


async def test_signature_is_over_the_public_url_not_request_url(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_emu.route(PUBLIC, twilio_app.base_url)
    twilio_app.answers["/twilio/voice"] = "<Response><Say>Hi</Say></Response>"
    await create_call(twilio_client, url=f"{PUBLIC}/twilio/voice", status_callback=f"{PUBLIC}/twilio/status")
    await (await twilio_emu.next_call()).wait_ended()
    for seen in twilio_app.requests:
        assert seen.headers["X-Forwarded-Proto"] == "https"
        assert seen.headers["X-Forwarded-Host"] == "tars.example.com"
        assert seen.public_url.startswith(PUBLIC + "/twilio/")
        assert seen.valid
        assert not seen.valid_against_request_url  # request.url is http://127.0.0.1:port/…
    assert {r.path for r in twilio_app.requests} == {"/twilio/voice", "/twilio/status"}


async def test_get_webhooks_sign_the_url_with_query(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_emu.route(PUBLIC, twilio_app.base_url)
    await create_call(twilio_client, url=f"{PUBLIC}/voice?x=1", method="GET")
    await (await twilio_emu.next_call()).wait_ended()
    seen = twilio_app.seen("/voice")[0]
    assert seen.method == "GET" and seen.valid and "CallSid=" in seen.public_url


async def test_every_webhook_comes_on_a_connection_of_its_own(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp
) -> None:
    """As Twilio's do: a kept-alive connection would race the app server closing it when idle
    (uvicorn after 5 s), and a webhook written into that close fails ("Can not write
    request body") for no fault of the app."""
    for _ in range(3):
        call = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
        await call.wait_ended()
    peers = [r.peer for r in twilio_app.seen("/voice")]
    assert len(peers) == 3 and len(set(peers)) == 3


# --- media streams ----------------------------------------------------------------------------


async def media_call(emu: TwilioEmulator, app: WebhookApp, server: MediaServer, **params: str) -> Any:
    app.answers["/voice"] = stream_twiml(server.ws_url, **params)
    return await emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=app.base_url + "/voice")


async def test_media_stream_handshake_audio_and_dtmf_reach_pipecat(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp
) -> None:
    from pipecat.audio.dtmf.types import KeypadEntry
    from pipecat.frames.frames import InputAudioRawFrame, InputDTMFFrame, OutputAudioRawFrame

    async def bot(session: MediaSession) -> None:
        await session.receive_until(lambda f: isinstance(f, InputDTMFFrame))
        reply = await session.serializer.serialize(
            OutputAudioRawFrame(speech.encode("Hi there, this is TARS.", 16000), 16000, 1)
        )
        await session.send(reply)
        await asyncio.sleep(1.0)  # let it "play" and the caller's ear hear the end
        await session.websocket.close()

    async with media_server(twilio_emu, bot) as server:
        call = await media_call(twilio_emu, twilio_app, server, from_number=CALLER, playbook="smoke")
        await call.say("Hello, I'd like a table for two.")
        await call.press("5")
        heard = await call.wait_for_agent_utterance(timeout=10)
        assert await call.wait_ended() == "completed"

    assert server.failures == []
    session = server.sessions[0]
    assert session.transport_type == "twilio"
    stream = call.streams[0]
    assert session.call_data["stream_id"] == stream.stream_sid
    assert stream.stream_sid.startswith("MZ") and len(stream.stream_sid) == 34
    assert session.call_data["call_id"] == call.sid
    assert session.call_data["body"] == {"from_number": CALLER, "playbook": "smoke"}
    assert session.call_data.from_number == CALLER
    frames = session.frames
    assert any(isinstance(f, InputAudioRawFrame) and f.sample_rate == 16000 for f in frames)
    dtmf = [f for f in frames if isinstance(f, InputDTMFFrame)]
    assert [f.button for f in dtmf] == [KeypadEntry.FIVE]

    assert heard.text == "Hi there, this is TARS."
    assert call.said == ["Hello, I'd like a table for two."] and call.party_digits == ["5"]
    assert stream.agent_frames and len(stream.agent_pcm16()) == 2 * len(stream.agent_audio)
    assert stream.closed_by == "server" and call.ended_by == "app"
    assert call.rest_updates == []
    twilio_emu.assert_no_errors()


async def test_wire_frames_follow_twilio_exactly(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    """Regression for B1: strings for numbers, inbound track only, stop before close."""

    async def bot(session: MediaSession) -> None:
        await session.drain(timeout=10)

    async with media_server(twilio_emu, bot) as server:
        call = await media_call(twilio_emu, twilio_app, server, from_number=CALLER)
        await call.say("One two three.")
        await call.press("12")
        await call.hang_up()
        await eventually(
            lambda: server.sessions and server.sessions[0].raw and "stop" in server.sessions[0].raw[-1],
            what="the stop frame at the server",
        )

    stream = call.streams[0]
    sent = stream.sent
    assert sent[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = sent[1]
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert start["start"]["tracks"] == ["inbound"]
    assert start["start"]["mediaFormat"] == {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,
        "channels": 1,
    }
    assert start["start"]["customParameters"] == {"from_number": CALLER}
    assert start["streamSid"] == start["start"]["streamSid"] == stream.stream_sid
    media = [f for f in sent if f["event"] == "media"]
    assert media
    for number, frame in enumerate(media, 1):
        assert frame["media"]["track"] == "inbound"
        assert frame["media"]["chunk"] == str(number)
        assert frame["media"]["timestamp"] == str((number - 1) * 20)
        assert len(base64.b64decode(frame["media"]["payload"])) == 160
    seqs = [f["sequenceNumber"] for f in sent[1:]]
    assert all(isinstance(s, str) for s in seqs)
    assert [int(s) for s in seqs] == list(range(1, len(seqs) + 1))
    dtmf = [f for f in sent if f["event"] == "dtmf"]
    assert [f["dtmf"] for f in dtmf] == [
        {"track": "inbound_track", "digit": "1"},
        {"track": "inbound_track", "digit": "2"},
    ]
    assert sent[-1]["event"] == "stop"
    assert sent[-1]["stop"] == {"accountSid": twilio_emu.account_sid, "callSid": call.sid}
    # the server saw exactly what was sent (after the two handshake frames pipecat read)
    assert [json.loads(r) for r in server.sessions[0].raw] == sent[2:]
    assert call.ended_by == "caller" and call.status == "completed"
    assert stream.closed_by == "twilio"


async def test_clear_drops_unplayed_audio_and_marks_echo(twilio_app: WebhookApp) -> None:
    received: list[dict[str, Any]] = []

    async def bot(session: MediaSession) -> None:
        sid = session.call_data["stream_id"]
        two_seconds = base64.b64encode(b"\x00" * 16000).decode()
        await session.send({"event": "media", "streamSid": sid, "media": {"payload": two_seconds}})
        await session.send({"event": "mark", "streamSid": sid, "mark": {"name": "greeting"}})
        await session.send({"event": "clear", "streamSid": sid})
        short = base64.b64encode(b"\x00" * 800).decode()  # 100 ms
        await session.send({"event": "media", "streamSid": sid, "media": {"payload": short}})
        await session.send({"event": "mark", "streamSid": sid, "mark": {"name": "short"}})
        while len([r for r in received if r["event"] == "mark"]) < 2:
            text = await asyncio.wait_for(session.websocket.receive_text(), 5)
            received.append(json.loads(text))
        await session.websocket.close()

    async with TwilioEmulator(realtime=False, realtime_playback=True) as emu:
        async with media_server(emu, bot) as server:
            call = await media_call(emu, twilio_app, server)
            await call.wait_ended()
        assert server.failures == []
        stream = call.streams[0]
        assert stream.clears == 1 and stream.dropped_bytes > 0
        first, second = stream.marks
        assert (first.name, first.cleared) == ("greeting", True)
        assert (second.name, second.cleared) == ("short", False)
        assert second.echoed_at is not None
        echoes = [r for r in received if r["event"] == "mark"]
        assert [e["mark"]["name"] for e in echoes] == ["greeting", "short"]
        assert all(e["streamSid"] == stream.stream_sid for e in echoes)
        emu.assert_no_errors()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"event": "transcript", "text": "hi"}, 31924),
        ({"event": "media", "streamSid": "MZwrong", "media": {"payload": "AAAA"}}, 31951),
        ({"event": "media", "media": {"payload": "-_-_"}}, 31951),
        (
            {"event": "media", "media": {"payload": base64.b64encode(b"RIFF....WAVE").decode()}},
            31951,
        ),
        ({"event": "mark", "mark": {}}, 31951),
        ("not json", 31924),
        (b"\x00\x01", 31924),
    ],
)
async def test_bogus_server_frames_are_flagged_and_close_the_stream(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, message: Any, code: int
) -> None:
    async def bot(session: MediaSession) -> None:
        if isinstance(message, bytes):
            await session.websocket.send_bytes(message)
        elif isinstance(message, dict):
            await session.send({"streamSid": session.call_data["stream_id"]} | message)
        else:
            await session.send(message)
        await session.drain()

    async with media_server(twilio_emu, bot) as server:
        call = await media_call(twilio_emu, twilio_app, server)
        await call.wait_ended()
    assert [e.code for e in call.errors] == [code]
    assert call.streams[0].closed_by == "error"


async def test_rest_update_completed_ends_a_live_call(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    async def bot(session: MediaSession) -> None:
        await session.drain(timeout=10)

    async with media_server(twilio_emu, bot) as server:
        twilio_app.answers["/voice"] = stream_twiml(server.ws_url)
        created = await create_call(
            twilio_client,
            url=twilio_app.base_url + "/voice",
            status_callback=twilio_app.base_url + "/status",
        )
        call = await twilio_emu.next_call()
        await call.wait_for_stream()
        updated = await asyncio.to_thread(twilio_client.calls(created.sid).update, status="completed")
        assert updated.status == "completed"
        await call.wait_ended()
        with pytest.raises(TwilioRestException) as info:  # real Twilio: 404 once ended
            await asyncio.to_thread(twilio_client.calls(created.sid).update, status="completed")
        assert info.value.code == 20404
    assert call.ended_by == "rest"
    assert call.streams[0].sent[-1]["event"] == "stop"
    assert call.rest_hangups[0]["auth_user"] == twilio_emu.account_sid
    assert [h["response"] for h in call.rest_hangups] == [200, 404]
    assert [r.params["CallStatus"] for r in twilio_app.seen("/status")] == ["completed"]


async def test_rest_redirect_plays_digits_then_reconnects(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    """DESIGN: menu digits go through Twilio: update with <Play digits> + a fresh <Stream>."""

    async def bot(session: MediaSession) -> None:
        await session.drain(timeout=10)

    async with media_server(twilio_emu, bot) as server:
        twilio_app.answers["/voice"] = stream_twiml(server.ws_url)
        created = await create_call(twilio_client, url=twilio_app.base_url + "/voice")
        call = await twilio_emu.next_call()
        await call.wait_for_stream()
        again = stream_twiml(server.ws_url, resume="1").replace("<Response>", '<Response><Play digits="w3"/>')
        await asyncio.to_thread(twilio_client.calls(created.sid).update, twiml=again)
        await eventually(lambda: len(server.sessions) == 2, what="the second stream")
        await call.hang_up()
    assert call.agent_digits == ["3"]
    assert [s.closed_by for s in call.streams] == ["twilio", "twilio"]
    assert server.sessions[1].call_data["body"] == {"resume": "1"}
    assert call.streams[0].sent[-1]["event"] == "stop"


async def test_websocket_handshake_is_signed_and_proxied(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    async def bot(session: MediaSession) -> None:
        await session.websocket.close()

    async with media_server(twilio_emu, bot) as server:
        twilio_emu.route(PUBLIC, twilio_app.base_url)
        twilio_emu.route("wss://media.example.com", f"http://127.0.0.1:{server.port}")
        twilio_app.answers["/voice"] = stream_twiml("wss://media.example.com/ws")
        call = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=PUBLIC + "/voice")
        await call.wait_ended()
    stream = call.streams[0]
    assert stream.secure and stream.local_url == server.ws_url
    headers = server.sessions[0].headers
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == "media.example.com"
    validator = RequestValidator(twilio_emu.auth_token)
    assert validator.validate("wss://media.example.com/ws", {}, headers["x-twilio-signature"])
    twilio_emu.assert_no_errors()


async def test_marks_echo_at_once_without_realtime_playback(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    async def bot(session: MediaSession) -> None:
        sid = session.call_data["stream_id"]
        payload = base64.b64encode(b"\x00" * 16000).decode()
        await session.send({"event": "media", "streamSid": sid, "media": {"payload": payload}})
        await session.send({"event": "mark", "streamSid": sid, "mark": {"name": "end"}})
        echo = json.loads(await asyncio.wait_for(session.websocket.receive_text(), 5))
        assert echo["event"] == "mark" and echo["mark"] == {"name": "end"}
        await session.websocket.close()

    async with media_server(twilio_emu, bot) as server:
        call = await media_call(twilio_emu, twilio_app, server)
        await call.wait_ended()
    assert server.failures == []
    [mark] = call.marks
    assert not mark.cleared and mark.echoed_at is not None


async def test_stream_status_callbacks_and_live_gather(twilio_app: WebhookApp) -> None:
    async def bot(session: MediaSession) -> None:
        await session.websocket.close()

    async with TwilioEmulator(realtime=True) as emu, media_server(emu, bot) as server:
        from twilio.twiml.voice_response import Connect, Gather, VoiceResponse

        response = VoiceResponse()
        connect = Connect()
        connect.stream(url=server.ws_url, name="agent", status_callback="/stream-status")
        response.append(connect)
        response.append(Gather(num_digits=1, action="/menu", timeout=5))
        twilio_app.answers["/voice"] = str(response)
        call = await emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
        stream = await call.wait_for_stream()
        await stream.finished.wait()
        await call.press("7")  # waits for the <Gather> to start listening
        await call.wait_ended()
    events = [r.params for r in twilio_app.seen("/stream-status")]
    assert [e["StreamEvent"] for e in events] == ["stream-started", "stream-stopped"]
    assert all(e["StreamName"] == "agent" and e["StreamSid"].startswith("MZ") for e in events)
    assert twilio_app.seen("/menu")[0].params["Digits"] == "7"
    assert all(r.valid for r in twilio_app.requests)
    emu.assert_no_errors()


async def test_realtime_streams_paced_silence_while_the_caller_is_quiet(
    twilio_app: WebhookApp,
) -> None:
    async def bot(session: MediaSession) -> None:
        await session.receive_until(lambda f: len(session.frames) >= 5, timeout=5)
        await session.websocket.close()

    async with TwilioEmulator(realtime=True) as emu, media_server(emu, bot) as server:
        call = await media_call(emu, twilio_app, server)
        await call.wait_ended()
    assert server.failures == []
    media = [f for f in call.streams[0].sent if f["event"] == "media"]
    assert len(media) >= 5
    assert {base64.b64decode(f["media"]["payload"]) for f in media[:5]} == {b"\xff" * 160}


# --- pipecat end to end -----------------------------------------------------------------------


def pipecat_bot(emu: TwilioEmulator, *, end_on: str | None, **serializer_auth: str) -> tuple[Any, dict[str, Any]]:
    """A real pipecat pipeline: FastAPI transport + TwilioFrameSerializer + a tiny bot.

    The bot greets on DTMF ``5`` and ends the pipeline (EndFrame → REST hang-up)
    on ``end_on``; a disconnect cancels the worker, as in pipecat's examples.
    """
    from pipecat.frames.frames import (
        EndWorkerFrame,
        Frame,
        InputDTMFFrame,
        OutputAudioRawFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.transports.websocket.fastapi import (
        FastAPIWebsocketParams,
        FastAPIWebsocketTransport,
    )
    from pipecat.workers.runner import WorkerRunner

    state: dict[str, Any] = {"done": asyncio.Event()}

    class Bot(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, InputDTMFFrame):
                if frame.button.value == "5":
                    audio = speech.encode("Welcome.", 16000) + speech.silence(200, 16000)
                    await self.push_frame(OutputAudioRawFrame(audio, 16000, 1))
                elif frame.button.value == end_on:
                    await self.push_frame(EndWorkerFrame(), FrameDirection.UPSTREAM)
            await self.push_frame(frame, direction)

    async def run(session: MediaSession) -> None:
        auth = serializer_auth or {"auth_token": emu.auth_token}
        serializer = TwilioFrameSerializer(
            stream_sid=session.call_data["stream_id"],
            call_sid=session.call_data["call_id"],
            account_sid=emu.account_sid,
            base_url=emu.base_url,
            **auth,
        )
        transport = FastAPIWebsocketTransport(
            websocket=session.websocket,
            params=FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True, serializer=serializer),
        )
        pipeline = Pipeline([transport.input(), Bot(), transport.output()])
        worker = PipelineWorker(
            pipeline, params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
        )

        @transport.event_handler("on_client_disconnected")
        async def on_disconnected(transport: Any, websocket: Any) -> None:
            state["disconnected"] = True
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
        state["done"].set()

    return run, state


async def test_pipecat_endframe_hangs_up_over_rest(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    bot, state = pipecat_bot(twilio_emu, end_on="9")
    async with media_server(twilio_emu, bot) as server:
        call = await media_call(twilio_emu, twilio_app, server)
        await call.press("5")
        heard = await call.wait_for_agent_utterance(timeout=10)
        await call.press("9")
        await call.wait_ended(timeout=15)
        await asyncio.wait_for(state["done"].wait(), 15)
    assert server.failures == []
    assert heard.text == "Welcome."
    assert call.ended_by == "rest"
    [hangup] = call.rest_hangups
    assert hangup["response"] == 200
    assert hangup["params"] == {"Status": "completed"}
    assert hangup["auth_user"] == twilio_emu.account_sid  # valid Basic auth (trap B3)
    assert call.streams[0].sent[-1]["event"] == "stop"
    twilio_emu.assert_no_errors()


async def test_pipecat_hang_up_with_api_key(twilio_app: WebhookApp) -> None:
    key, secret = "SK" + "2" * 32, "key-secret"
    async with TwilioEmulator(realtime=False, api_keys={key: secret}) as emu:
        bot, state = pipecat_bot(emu, end_on="9", api_key_sid=key, api_key_secret=secret)
        async with media_server(emu, bot) as server:
            call = await media_call(emu, twilio_app, server)
            await call.press("9")
            await call.wait_ended(timeout=15)
            await asyncio.wait_for(state["done"].wait(), 15)
        assert call.rest_hangups[0]["auth_user"] == key
        emu.assert_no_errors()


async def test_pipecat_hang_up_with_wrong_token_is_loud(twilio_app: WebhookApp) -> None:
    async with TwilioEmulator(realtime=False) as emu:
        bot, state = pipecat_bot(emu, end_on="9", auth_token="stale-token")
        async with media_server(emu, bot) as server:
            call = await media_call(emu, twilio_app, server)
            await call.press("9")
            await asyncio.wait_for(state["done"].wait(), 15)
            await call.wait_ended(timeout=15)
        assert call.rest_hangups == []  # rejected before it counted
        assert [e.code for e in emu.errors] == [20003]


async def test_caller_hangs_up_first_no_rest_call(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    bot, state = pipecat_bot(twilio_emu, end_on=None)
    async with media_server(twilio_emu, bot) as server:
        call = await media_call(twilio_emu, twilio_app, server)
        await call.press("5")
        await call.wait_for_agent_utterance(timeout=10)
        await call.hang_up()
        await asyncio.wait_for(state["done"].wait(), 15)
    assert state.get("disconnected")
    assert call.ended_by == "caller"
    assert call.rest_updates == []
    twilio_emu.assert_no_errors()


async def test_party_script_mode(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    bot, state = pipecat_bot(twilio_emu, end_on="9")
    party = Party(script=[{"press": "5"}, {"expect": "welcome", "timeout": 10}, {"press": "9"}])
    async with media_server(twilio_emu, bot) as server:
        twilio_app.answers["/voice"] = stream_twiml(server.ws_url)
        call = await twilio_emu.incoming_call(
            from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice", party=party
        )
        await call.wait_ended(timeout=15)
        await asyncio.wait_for(state["done"].wait(), 15)
    assert call.script_errors == []
    assert [u.text for u in call.heard] == ["Welcome."]
    assert call.ended_by == "rest"


async def test_party_script_failure_is_recorded(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    bot, _ = pipecat_bot(twilio_emu, end_on=None)
    party = Party(script=[{"press": "5"}, {"expect": "goodbye", "timeout": 10}])
    async with media_server(twilio_emu, bot) as server:
        twilio_app.answers["/voice"] = stream_twiml(server.ws_url)
        call = await twilio_emu.incoming_call(
            from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice", party=party
        )
        await eventually(lambda: call.script_errors, what="a script error")
        await call.hang_up()
    assert "Welcome." in call.script_errors[0]
    with pytest.raises(AssertionError, match="goodbye"):
        twilio_emu.assert_no_errors()


# --- lifecycle -------------------------------------------------------------------------------


def test_running_in_thread_with_the_blocking_client() -> None:
    before = threading.active_count()
    emu = TwilioEmulator(realtime=False)
    with emu.running_in_thread():
        client = emu.rest_client()
        created = client.calls.create(to=CALLER, from_=TARS_NUMBER, twiml="<Response><Say>Hello</Say></Response>")
        call = emu.calls[created.sid]
        assert emu.run_sync(call.wait_ended()) == "completed"
        assert client.calls(created.sid).fetch().status == "completed"
    assert threading.active_count() <= before + 1  # requests' pool may linger; no emulator thread
    assert not any(t.name == "twilio-emulator" for t in threading.enumerate())


def emulator_tasks() -> list[asyncio.Task[Any]]:
    """Tasks still running code from tars/sim (the emulator's own work)."""
    current = asyncio.current_task()
    return [
        t
        for t in asyncio.all_tasks()
        if t is not current and "tars/sim" in t.get_coro().cr_code.co_filename  # type: ignore[union-attr]
    ]


async def test_stopping_the_emulator_ends_live_calls_cleanly(twilio_app: WebhookApp) -> None:
    async def bot(session: MediaSession) -> None:
        await session.drain(timeout=10)

    emu = TwilioEmulator(realtime=True)
    server = MediaServer(
        bot,
        account_sid=emu.account_sid,
        auth_token=emu.auth_token,
        rest_base_url="http://127.0.0.1:1",
    )
    async with server:
        async with emu:
            call = await media_call(emu, twilio_app, server)
            await call.wait_for_stream()
        assert call.status == "completed" and call.ended_by == "emulator"
        assert call.streams[0].sent[-1]["event"] == "stop"
        assert emulator_tasks() == []


async def test_parallel_emulators_and_clean_shutdown() -> None:
    async with TwilioEmulator(realtime=False) as a, TwilioEmulator(realtime=False) as b:
        assert a.base_url != b.base_url
        assert a.base_url.startswith("http://127.0.0.1:")
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []
    with pytest.raises(RuntimeError):
        _ = a.base_url


@pytest.mark.parametrize("gap", ["host stall", "pause on the line"])
async def test_a_host_stall_mid_sentence_is_not_heard_as_a_pause(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, gap: str
) -> None:
    """Instant playback shares its process with the server: a stall of the host (the event loop
    blocked, a busy machine) must not cut the speech the caller's ear decodes, while a real
    pause (the server sending nothing while the loop runs) still ends the utterance."""
    import time

    from pipecat.frames.frames import OutputAudioRawFrame

    from tars.sim.twilio_media import INSTANT_JITTER_SECONDS

    sentence = "Booked for seven."

    async def bot(session: MediaSession) -> None:
        audio = speech.encode(sentence, 16000)
        half = len(audio) // 4 * 2
        # Longer than the audio already sent plus the ear's buffer: the ear would run dry.
        seconds = half / 2 / 16000 + INSTANT_JITTER_SECONDS + 0.7
        await session.send(await session.serializer.serialize(OutputAudioRawFrame(audio[:half], 16000, 1)))
        [placed] = twilio_emu.calls.values()
        await eventually(lambda: placed.streams[0].agent_frames, what="the first half at the caller")
        if gap == "host stall":
            time.sleep(seconds)  # blocks every task in the process, the emulator's included
        else:
            await asyncio.sleep(seconds)  # the loop runs on: the caller hears silence
        await session.send(await session.serializer.serialize(OutputAudioRawFrame(audio[half:], 16000, 1)))
        await session.drain(timeout=10)

    async with media_server(twilio_emu, bot) as server:
        call = await media_call(twilio_emu, twilio_app, server)
        await call.wait_for_agent_utterance(timeout=10)
        if gap == "pause on the line":
            await call.wait_for_agent_utterance(timeout=10)  # the rest of the sentence
        await call.hang_up()
    assert server.failures == []
    heard = [u.text for u in call.heard]
    if gap == "host stall":
        assert heard == [sentence]
    else:
        assert heard[0] == sentence and len(heard) == 2 and heard[1].startswith("[speech ")
