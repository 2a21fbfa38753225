"""The TwiML documents TARS answers Twilio with, built with the twilio SDK's ``VoiceResponse``
(so every attribute and text is escaped by the library, never by string concatenation).

    connect_stream(url, params)        <Connect><Stream> with signed <Parameter>s
    gather_pin(action, digits, prompt) <Gather dtmf> the PIN, then <Redirect> to the same action
    say_and_hang_up(text)              a sentence, then <Hangup>
    reject()                           <Reject reason="busy"> (a blocked number)
    play_digits_then(digits, url, params)  keypad tones, then a fresh <Connect><Stream>
    spoken(text)                       <Pause> then <Say> (a call that only speaks a notice)
    dial_number(number, …)             a cold transfer: <Dial callerId timeout action><Number>
    hold_in_conference(room, …)        a warm transfer's caller: <Dial action><Conference waitUrl …>
    hold_music(text)                   what the waitUrl plays while they hold
    whisper(text, action)              the brief to the target, <Gather> a yes (1 or "yes")
    join_conference(room)              the target taking the call: the conference starts
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _response() -> Any:
    from twilio.twiml.voice_response import VoiceResponse

    return VoiceResponse()


def _stream_into(response: Any, url: str, params: Mapping[str, str]) -> None:
    from twilio.twiml.voice_response import Connect

    connect = Connect()
    stream = connect.stream(url=url)
    for name, value in params.items():
        stream.parameter(name=name, value=value)
    response.append(connect)


def empty() -> str:
    return str(_response())


def connect_stream(url: str, params: Mapping[str, str]) -> str:
    response = _response()
    _stream_into(response, url, params)
    return str(response)


def gather_pin(action: str, digits: int, prompt: str) -> str:
    """Ask for the PIN; no keys within the timeout → Twilio follows the ``<Redirect>``."""
    response = _response()
    gather = response.gather(
        input="dtmf", finish_on_key="#", timeout=4, num_digits=str(digits), action=action, method="POST"
    )
    gather.say(prompt)
    response.redirect(action, method="POST")
    return str(response)


def say_and_hang_up(text: str) -> str:
    response = _response()
    response.say(text)
    response.hangup()
    return str(response)


def hang_up() -> str:
    response = _response()
    response.hangup()
    return str(response)


def reject() -> str:
    response = _response()
    response.reject(reason="busy")
    return str(response)


def spoken(text: str, *, then_hang_up: bool = False) -> str:
    """A second's pause (the callee lifting the phone), then ``text``."""
    response = _response()
    response.pause(length=1)
    response.say(text)
    if then_hang_up:
        response.hangup()
    return str(response)


def play_digits_then(digits: str, url: str, params: Mapping[str, str]) -> str:
    """Keypad tones through Twilio (``<Play digits>``), then the call back on a fresh stream."""
    response = _response()
    response.play(digits=digits)
    _stream_into(response, url, params)
    return str(response)


def message(text: str) -> str:
    """A text back to whoever texted (the answer to an SMS webhook)."""
    from twilio.twiml.messaging_response import MessagingResponse

    response = MessagingResponse()
    response.message(text)
    return str(response)


def dial_number(number: str, *, caller_id: str, timeout: int, action: str) -> str:
    """Put the caller straight through to ``number``; Twilio posts ``DialCallStatus`` to
    ``action`` when the dialled leg ends (or never answered) and follows the TwiML it gets back.
    ``callerId`` must be the calling number, the called number or a verified one (Twilio error
    13214, https://www.twilio.com/docs/errors/13214): TARS passes the caller's own number.
    https://www.twilio.com/docs/voice/twiml/dial#action"""
    response = _response()
    dial = response.dial(caller_id=caller_id, timeout=timeout, action=action, method="POST")
    dial.number(number)
    return str(response)


def hold_in_conference(room: str, *, wait_url: str, action: str) -> str:
    """The caller waits in conference ``room``, hearing ``wait_url``'s TwiML, until someone who
    starts it (the target) joins; when the conference ends, ``action`` is asked what next.
    https://www.twilio.com/docs/voice/twiml/conference#startconferenceonenter"""
    response = _response()
    dial = response.dial(action=action, method="POST")
    dial.conference(
        room, start_conference_on_enter=False, end_conference_on_exit=True, wait_url=wait_url, wait_method="POST",
        beep=False,
    )  # fmt: skip
    return str(response)


def hold_music(text: str) -> str:
    """A waitUrl's TwiML: Twilio plays it, looping, while the caller holds (``<Say>``,
    ``<Play>``, ``<Pause>`` and ``<Redirect>`` only). https://www.twilio.com/docs/voice/twiml/conference#waiturl"""
    response = _response()
    response.say(text)
    response.pause(length=5)
    return str(response)


def whisper(text: str, action: str) -> str:
    """The brief, and a ``<Gather>`` for a keypress or a spoken yes; no answer → ``action``
    gets nothing (declined)."""
    response = _response()
    gather = response.gather(
        input="dtmf speech", num_digits=1, timeout=6, action=action, method="POST", hints="yes, no"
    )
    gather.say(text)
    response.redirect(action, method="POST")
    return str(response)


def join_conference(room: str, action: str | None = None) -> str:
    """The target joins ``room`` and the conference starts; it ends when they leave (then
    ``action``, if given, says what next)."""
    response = _response()
    dial = response.dial(action=action, method="POST") if action else response.dial()
    dial.conference(room, start_conference_on_enter=True, end_conference_on_exit=True, beep=False)
    return str(response)
