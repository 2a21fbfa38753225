"""Conferences in the Twilio emulator: a warm transfer as TARS would do it, through the real SDK.

The caller is on a media stream with "TARS"; TARS moves them into a room with a REST call
update (the stream stops with ``stop``), rings the owner into the same room with
``participants.create``, and the emulator shows the two in one conference with TARS gone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse
from twilio_helpers import CALLER, TARS_NUMBER, MediaSession, WebhookApp, create_call, media_server, stream_twiml

from tars.sim.twilio import Party, TwilioEmulator
from tars.sim.twilio_call import BEEP
from tars.sim.twilio_conference import SILENCE, TWILIO_HOLD_MUSIC
from tests.waiting import eventually

OWNER = "+15551239999"
ROOM = "transfer-CA1"


def conference_twiml(room: str = ROOM, **attrs: Any) -> str:
    response = VoiceResponse()
    dial = Dial()
    dial.conference(room, **attrs)
    response.append(dial)
    response.say("The conference is over.")
    return str(response)


async def drain(session: MediaSession) -> None:
    await session.drain(timeout=30)


async def test_warm_transfer_leaves_caller_and_owner_in_one_room_without_tars(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    async with media_server(twilio_emu, drain) as server:
        twilio_app.answers["/voice"] = stream_twiml(server.ws_url)
        twilio_app.answers["/hold"] = "<Response><Say>Please hold.</Say></Response>"
        twilio_app.answers["/conference-status"] = "<Response/>"
        caller = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
        await caller.wait_for_stream()
        move = conference_twiml(
            wait_url=twilio_app.base_url + "/hold",
            status_callback=twilio_app.base_url + "/conference-status",
            status_callback_event="start end join leave",
        )
        await asyncio.to_thread(twilio_client.calls(caller.sid).update, twiml=move)
        await eventually(lambda: caller.hold_audio, what="the caller waiting in the room")
        assert caller.conference == ROOM
        assert caller.streams[0].sent[-1]["event"] == "stop"  # TARS's stream ended, as on Twilio
        assert caller.hold_audio == ["say: Please hold."]
        [room] = await asyncio.to_thread(twilio_client.conferences.list, friendly_name=ROOM, status="init")

        created = await asyncio.to_thread(
            twilio_client.conferences(room.sid).participants.create,
            from_=TARS_NUMBER, to=OWNER, label="owner", end_conference_on_exit=True,
        )  # fmt: skip
        owner = twilio_emu.calls[created.call_sid]
        await eventually(lambda: twilio_emu.conferences.view()[0]["status"] == "in-progress", what="the start")
        [view] = twilio_emu.conferences.view()
        assert sorted(p["number"] for p in view["participants"]) == sorted([CALLER, OWNER])
        assert caller.stream is None and owner.direction == "outbound-api"
        listed = await asyncio.to_thread(twilio_client.conferences(room.sid).participants.list)
        assert {p.call_sid for p in listed} == {caller.sid, owner.sid}
        assert BEEP in [u.text for u in caller.heard]  # the owner joining beeps

        await asyncio.to_thread(twilio_client.conferences(room.sid).participants("owner").update, muted=False)
        await owner.say("Hello Helen.")
        assert "Hello Helen." in [u.text for u in caller.heard]
        await owner.hang_up()  # endConferenceOnExit: the room ends with the owner
        await caller.wait_ended()
    assert "The conference is over." in [u.text for u in caller.heard]
    [view] = twilio_emu.conferences.view()
    assert view["status"] == "completed" and view["participants"] == []
    assert view["reason_ended"] == "participant-with-end-conference-on-exit-left"
    events = [r.params["StatusCallbackEvent"] for r in twilio_app.seen("/conference-status")]
    assert events == ["participant-join", "participant-join", "conference-start", "participant-leave", "conference-end"]
    assert all(r.valid for r in twilio_app.seen("/conference-status"))
    fetched = await asyncio.to_thread(twilio_client.conferences(room.sid).fetch)
    assert fetched.status == "completed"


async def test_waiting_alone_hears_the_wait_url(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    calls = []
    for wait_url in (None, "", "https://example.com/music.mp3"):
        attrs = {} if wait_url is None else {"wait_url": wait_url}
        twilio_app.answers["/voice"] = conference_twiml(f"room-{len(calls)}", **attrs)
        call = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
        await eventually(lambda call=call: call.hold_audio, what="hold audio")
        calls.append(call)
    assert [c.hold_audio for c in calls] == [[TWILIO_HOLD_MUSIC], [SILENCE], ["https://example.com/music.mp3"]]
    assert [r["status"] for r in twilio_emu.conferences.view()] == ["init"] * 3


async def test_kick_hold_and_end_over_rest(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_app.answers["/voice"] = conference_twiml()
    first = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
    await eventually(lambda: first.hold_audio, what="the first call waiting alone")
    created = await asyncio.to_thread(
        twilio_client.conferences(ROOM).participants.create, from_=TARS_NUMBER, to=OWNER
    )  # by friendly name: the same room
    owner = twilio_emu.calls[created.call_sid]
    await eventually(lambda: owner.conference == ROOM and first.conference == ROOM, what="both in the room")
    [room] = await asyncio.to_thread(twilio_client.conferences.list, status="in-progress")
    held = await asyncio.to_thread(twilio_client.conferences(room.sid).participants(first.sid).update, hold=True)
    assert held.hold is True and first.hold_audio == [TWILIO_HOLD_MUSIC, TWILIO_HOLD_MUSIC]  # waiting, held
    await asyncio.to_thread(twilio_client.conferences(room.sid).participants(first.sid).delete)
    await first.wait_ended()  # kicked: its TwiML goes on after <Dial>, then ends
    assert "The conference is over." in [u.text for u in first.heard]
    assert [p["call_sid"] for p in twilio_emu.conferences.view()[0]["participants"]] == [owner.sid]
    ended = await asyncio.to_thread(twilio_client.conferences(room.sid).update, status="completed")
    assert ended.status == "completed"
    await owner.wait_ended()
    assert twilio_emu.conferences.view()[0]["reason_ended"] == "conference-ended-via-api"


async def test_dial_conference_action_reports_answered(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    response = VoiceResponse()
    dial = Dial(action=twilio_app.base_url + "/after")
    dial.conference(ROOM)
    response.append(dial)
    twilio_app.answers["/voice"] = str(response)
    twilio_app.answers["/after"] = "<Response/>"
    twilio_emu.set_party(OWNER, Party(script=[{"hang_up": True}]))
    await create_call(twilio_client, url=twilio_app.base_url + "/voice")
    tars_call = await twilio_emu.next_call()
    await eventually(lambda: tars_call.conference == ROOM, what="the call in the room")
    create = twilio_client.conferences(ROOM).participants.create
    await asyncio.to_thread(create, from_=TARS_NUMBER, to=OWNER, end_conference_on_exit=True)
    await tars_call.wait_ended()  # the owner's hang-up ends the room; the action says how it went
    [after] = twilio_app.seen("/after")
    assert after.params["DialCallStatus"] == "answered" and "DialCallSid" not in after.params


async def test_a_dialed_leg_redirected_into_a_room_leaves_the_bridge(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    response = VoiceResponse()
    response.dial(OWNER, action=twilio_app.base_url + "/after")
    twilio_app.answers["/voice"] = str(response)
    twilio_app.answers["/after"] = conference_twiml()  # the caller follows into the same room
    caller = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
    await eventually(lambda: caller.bridged_with, what="the bridge")
    [leg] = caller.legs
    await asyncio.to_thread(twilio_client.calls(leg.sid).update, twiml=conference_twiml())
    await eventually(lambda: caller.conference == ROOM and leg.conference == ROOM, what="both in the room")
    [after] = twilio_app.seen("/after")
    assert after.params["DialCallStatus"] == "completed" and after.params["DialCallSid"] == leg.sid
    [view] = twilio_emu.conferences.view()
    assert {p["call_sid"] for p in view["participants"]} == {caller.sid, leg.sid}
    assert leg.parent_call_sid == caller.sid and leg.status == "in-progress"


async def test_a_dialed_out_participant_who_is_busy_never_joins(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_emu.set_party(OWNER, Party(answer="busy"))
    twilio_app.answers["/voice"] = conference_twiml()
    caller = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
    await eventually(lambda: caller.hold_audio, what="the caller waiting")
    created = await asyncio.to_thread(
        twilio_client.conferences(ROOM).participants.create, from_=TARS_NUMBER, to=OWNER, label="owner"
    )
    assert created.status == "queued" and created.label == "owner"
    owner = twilio_emu.calls[created.call_sid]
    assert await owner.wait_ended() == "busy"
    await eventually(lambda: len(twilio_emu.conferences.view()[0]["participants"]) == 1, what="the owner dropped")
    [view] = twilio_emu.conferences.view()
    assert view["status"] == "init" and view["participants"][0]["call_sid"] == caller.sid


async def test_wait_url_twiml_may_only_play_say_pause_redirect(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp
) -> None:
    twilio_app.answers["/voice"] = conference_twiml(wait_url="/hold")
    twilio_app.answers["/hold"] = "<Response><Gather><Say>Press 1.</Say></Gather></Response>"
    caller = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
    await eventually(lambda: caller.errors, what="the error")
    assert [e.code for e in caller.errors] == [13238]  # Twilio: "Invalid Verb used in waitUrl"
    [hold] = twilio_app.seen("/hold")  # resolved against the document, signed like every webhook
    assert hold.valid and hold.method == "POST"
