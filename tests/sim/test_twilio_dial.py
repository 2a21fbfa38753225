"""``<Dial>`` in the Twilio emulator, driven with TwiML built by the real twilio SDK's VoiceResponse.

Each test is a call TARS would make: put the caller through to a number, and see how the
dialed party's answer comes back to the ``action`` URL (signed, checked with twilio's
own RequestValidator by the WebhookApp). Pacing is off; nothing here waits on the clock.
"""

from __future__ import annotations

import asyncio

import pytest
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse
from twilio_helpers import CALLER, TARS_NUMBER, WebhookApp, create_call

from tars.sim import twiml
from tars.sim.twilio import Party, TwilioEmulator
from tars.sim.twilio_call import BEEP
from tests.waiting import eventually

OWNER = "+15551239999"


def dial_twiml(app: WebhookApp, number: str = OWNER, *, whisper: str | None = None, **attrs: object) -> str:
    response = VoiceResponse()
    dial = Dial(action=app.base_url + "/dial-done", **attrs)
    if whisper is None:
        dial.number(number)
    else:
        dial.number(number, url=app.base_url + whisper)
    response.append(dial)
    response.say("This is never said: the action decides what comes next.")
    return str(response)


async def dial_and_wait(emu: TwilioEmulator, app: WebhookApp, client: Client, twiml_doc: str) -> dict[str, str]:
    """TARS's call dials; return the ``action`` request's parameters once the call is over."""
    app.answers["/voice"] = twiml_doc
    app.answers["/dial-done"] = "<Response><Say>Back with TARS.</Say></Response>"
    await create_call(client, url=app.base_url + "/voice")
    call = await emu.next_call()
    await call.wait_ended()
    [done] = app.seen("/dial-done")
    assert done.valid
    assert call.heard[-1].text == "Back with TARS."
    return done.params


@pytest.mark.parametrize(
    ("party", "status"),
    [
        (Party(answer="busy"), "busy"),
        (Party(answer="no-answer"), "no-answer"),
        (Party(answer="decline"), "busy"),
        (Party(answer="failed"), "failed"),
        (Party(ring_ms=45_000), "no-answer"),  # rings past the default 30 s timeout
    ],
)
async def test_unanswered_dial_reports_its_status_to_the_action(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client, party: Party, status: str
) -> None:
    twilio_emu.set_party(OWNER, party)
    params = await dial_and_wait(twilio_emu, twilio_app, twilio_client, dial_twiml(twilio_app))
    assert params["DialCallStatus"] == status
    assert params["DialBridged"] == "false"
    leg = twilio_emu.calls[params["DialCallSid"]]
    assert leg.direction == "outbound-dial" and leg.to == OWNER and leg.status == status
    assert leg.parent_call_sid == params["CallSid"]


async def test_answered_dial_bridges_until_the_called_party_hangs_up(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    script = [{"say": "Hi Mum, it's me."}, {"hang_up": True}]
    twilio_emu.set_party(OWNER, Party(script=script))
    doc = dial_twiml(twilio_app, caller_id=TARS_NUMBER, timeout=20)
    params = await dial_and_wait(twilio_emu, twilio_app, twilio_client, doc)
    assert params["DialCallStatus"] == "completed" and params["DialBridged"] == "true"
    leg = twilio_emu.calls[params["DialCallSid"]]
    call = twilio_emu.calls[params["CallSid"]]
    assert leg.from_ == TARS_NUMBER and leg.ended_by == "caller"
    assert [u.text for u in call.heard][:1] == ["Hi Mum, it's me."]
    assert call.legs == [leg] and [o.status for o in call.dials] == ["completed"]
    fetched = await asyncio.to_thread(twilio_client.calls(leg.sid).fetch)
    assert fetched.parent_call_sid == call.sid and fetched.status == "completed"
    legs = await asyncio.to_thread(twilio_client.calls.list, parent_call_sid=call.sid)
    assert [c.sid for c in legs] == [leg.sid]


async def test_voicemail_answers_with_a_greeting_and_the_tone(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_emu.set_party(OWNER, Party(answer="voicemail", greeting="Leave it after the beep."))
    twilio_app.answers["/voice"] = dial_twiml(twilio_app)
    await create_call(twilio_client, url=twilio_app.base_url + "/voice")
    call = await twilio_emu.next_call()
    leg = await twilio_emu.next_call()
    assert (await call.wait_for_agent_utterance()).text == "Leave it after the beep."
    assert (await call.wait_for_agent_utterance()).text == BEEP
    await call.hang_up()  # the caller leaves after the message
    await leg.wait_ended()
    assert leg.status == "completed" and leg.bridged_with is None


async def test_without_action_the_call_goes_on_with_the_next_verb(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_emu.set_party(OWNER, Party(answer="busy"))
    response = VoiceResponse()
    response.dial(OWNER)  # a bare number, no action
    response.say("Nobody picked up.")
    twilio_app.answers["/voice"] = str(response)
    await create_call(twilio_client, url=twilio_app.base_url + "/voice")
    call = await twilio_emu.next_call()
    assert await call.wait_ended() == "completed"
    assert [u.text for u in call.heard] == ["Nobody picked up."]
    assert call.dials[0].status == "busy"


@pytest.mark.parametrize(
    ("party", "accepted"),
    [
        (Party(gather=["1"]), True),
        (Party(gather_speech=["yes"]), True),
        (Party(), False),  # says nothing: the whisper's <Gather> times out into <Hangup/>
        (Party(gather=["2"]), False),
        (Party(whisper="hang_up"), False),
    ],
)
async def test_whisper_lets_the_called_party_accept_or_decline(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client, party: Party, accepted: bool
) -> None:
    party.script = [{"say": "Put her through."}, {"hang_up": True}]
    twilio_emu.set_party(OWNER, party)
    whisper = VoiceResponse()
    gather = Gather(input="dtmf speech", num_digits=1, action=twilio_app.base_url + "/screened")
    gather.say("Helen is on the line about dinner. Press 1 or say yes to take it.")
    whisper.append(gather)
    whisper.hangup()
    twilio_app.answers["/whisper"] = str(whisper)

    def screened(params: dict[str, str]) -> str:
        yes = params.get("Digits") == "1" or params.get("SpeechResult", "").lower().startswith("yes")
        return "<Response/>" if yes else "<Response><Hangup/></Response>"

    twilio_app.answers["/screened"] = screened
    params = await dial_and_wait(twilio_emu, twilio_app, twilio_client, dial_twiml(twilio_app, whisper="/whisper"))
    leg = twilio_emu.calls[params["DialCallSid"]]
    assert [u.text for u in leg.heard][:1] == ["Helen is on the line about dinner. Press 1 or say yes to take it."]
    assert params["DialCallStatus"] == "completed"  # answered either way; DialBridged tells them apart
    assert params["DialBridged"] == ("true" if accepted else "false")
    [whisper_request] = twilio_app.seen("/whisper")
    assert whisper_request.valid and whisper_request.params["ParentCallSid"] == params["CallSid"]
    assert whisper_request.params["Direction"] == "outbound-dial"
    caller = twilio_emu.calls[params["CallSid"]]
    assert ("Put her through." in [u.text for u in caller.heard]) is accepted


async def test_a_whisper_may_not_dial(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_app.answers["/whisper"] = "<Response><Dial>+15557770000</Dial></Response>"
    params = await dial_and_wait(twilio_emu, twilio_app, twilio_client, dial_twiml(twilio_app, whisper="/whisper"))
    assert params["DialBridged"] == "false"
    assert [e.code for e in twilio_emu.errors] == [13201]


async def test_dialing_a_served_number_rings_its_own_webhook(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    """Twilio has no loop guard: <Dial> to your own number is a new inbound call to it."""
    twilio_emu.serve_number(TARS_NUMBER, twilio_app.base_url + "/inbound")
    twilio_app.answers["/inbound"] = "<Response><Reject/></Response>"
    params = await dial_and_wait(twilio_emu, twilio_app, twilio_client, dial_twiml(twilio_app, TARS_NUMBER))
    [loop] = twilio_emu.loops
    assert loop.leg_sid == params["DialCallSid"] and loop.number == TARS_NUMBER
    [inbound] = twilio_app.seen("/inbound")
    assert inbound.params["To"] == TARS_NUMBER and inbound.params["Direction"] == "inbound"
    assert inbound.params["From"] == TARS_NUMBER  # no callerId: the dialing call's From
    assert params["DialCallStatus"] == "busy"


async def test_answer_on_bridge_keeps_an_inbound_caller_ringing(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp
) -> None:
    twilio_emu.set_party(OWNER, Party(script=[{"hang_up": True}]))
    twilio_app.answers["/voice"] = dial_twiml(twilio_app, answer_on_bridge=True)
    twilio_app.answers["/dial-done"] = "<Response/>"
    call = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
    await call.wait_ended()
    [leg] = call.legs
    assert call.statuses == ["ringing", "in-progress", "completed"]
    [answered_at] = [t for s, t in call.status_history if s == "in-progress"]
    [leg_answered_at] = [t for s, t in leg.status_history if s == "in-progress"]
    assert answered_at >= leg_answered_at  # the caller was answered with the bridge, not before


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("<Response><Dial><Fax>+15550001111</Fax></Dial></Response>", 12200),
        ("<Response><Dial><Conference></Conference></Dial></Response>", 12200),
        ("<Response><Dial>call my mum</Dial></Response>", 13223),
        ('<Response><Dial callerId="TARS">+15550001111</Dial></Response>', 13214),
        ("<Response><Dial/></Response>", 12200),
        ("<Response><Dial><Number>+15550001111</Number><Conference>r</Conference></Dial></Response>", 12200),
        ('<Response><Dial timeout="soon">+15550001111</Dial></Response>', 12200),
    ],
)
def test_invalid_dial_twiml_is_rejected_with_twilios_code(document: str, code: int) -> None:
    with pytest.raises(twiml.TwimlError) as info:
        twiml.parse(document)
    assert info.value.code == code


async def test_invalid_dial_twiml_fails_the_call_loudly(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    twilio_app.answers["/voice"] = "<Response><Dial><Fax>+15550001111</Fax></Dial></Response>"
    await create_call(twilio_client, url=twilio_app.base_url + "/voice")
    call = await twilio_emu.next_call()
    assert await call.wait_ended() == "completed"
    assert [e.code for e in call.errors] == [12200]
    assert call.legs == []


async def test_the_caller_hanging_up_ends_the_bridged_leg(twilio_emu: TwilioEmulator, twilio_app: WebhookApp) -> None:
    response = VoiceResponse()
    response.dial(OWNER, action=twilio_app.base_url + "/dial-done")
    twilio_app.answers["/voice"] = str(response)
    twilio_app.answers["/leg-status"] = "<Response/>"
    caller = await twilio_emu.incoming_call(from_=CALLER, to=TARS_NUMBER, voice_url=twilio_app.base_url + "/voice")
    await eventually(lambda: caller.bridged_with, what="the bridge")
    [leg] = caller.legs
    await caller.hang_up()
    assert await leg.wait_ended() == "completed"
    assert leg.bridged_with is None and caller.bridged_with is None


async def test_a_screened_outbound_call_can_be_hung_up_on(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    """The same party behaviour when TARS screens with calls.create instead of <Number url>."""
    twilio_emu.set_party(OWNER, Party(whisper="hang_up"))
    screen = VoiceResponse()
    gather = Gather(num_digits=1, action=twilio_app.base_url + "/screened")
    gather.say("Helen is on the line. Press 1 to take it.")
    screen.append(gather)
    twilio_app.answers["/screen"] = str(screen)
    await create_call(twilio_client, to=OWNER, url=twilio_app.base_url + "/screen")
    owner = await twilio_emu.next_call()
    assert await owner.wait_ended() == "completed"
    assert owner.ended_by == "caller" and twilio_app.seen("/screened") == []


async def test_several_numbers_ring_at_once_and_the_first_to_answer_wins(
    twilio_emu: TwilioEmulator, twilio_app: WebhookApp, twilio_client: Client
) -> None:
    slow, fast, busy = "+15551230101", "+15551230102", "+15551230103"
    twilio_emu.set_party(slow, Party(ring_ms=9000))
    twilio_emu.set_party(fast, Party(ring_ms=1000, script=[{"hang_up": True}]))
    twilio_emu.set_party(busy, Party(answer="busy"))
    dial = Dial(action=twilio_app.base_url + "/dial-done")
    for number in (slow, fast, busy):
        dial.number(number)
    params = await dial_and_wait(twilio_emu, twilio_app, twilio_client, str(VoiceResponse().append(dial)))
    call = twilio_emu.calls[params["CallSid"]]
    assert {leg.to: leg.status for leg in call.legs} == {slow: "canceled", fast: "completed", busy: "busy"}
    assert params["DialCallSid"] == next(leg.sid for leg in call.legs if leg.to == fast)


async def test_a_ringing_leg_canceled_over_rest_is_canceled(twilio_app: WebhookApp) -> None:
    # Ringing takes time here, so there is a moment to cancel; same auth token as the app's.
    async with TwilioEmulator(realtime=True) as emu:
        client = emu.rest_client()
        emu.set_party(OWNER, Party(ring_ms=20_000))
        params_seen: list[dict[str, str]] = []
        twilio_app.answers["/voice"] = dial_twiml(twilio_app)
        twilio_app.answers["/dial-done"] = lambda params: params_seen.append(params) or "<Response/>"
        await create_call(client, url=twilio_app.base_url + "/voice")
        call = await emu.next_call()
        await eventually(lambda: call.legs and call.legs[0].status == "ringing", what="the leg ringing")
        await asyncio.to_thread(client.calls(call.legs[0].sid).update, status="canceled")
        await call.wait_ended()
    assert [p["DialCallStatus"] for p in params_seen] == ["canceled"]
