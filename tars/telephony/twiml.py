"""The TwiML documents TARS answers Twilio with, built with the twilio SDK's ``VoiceResponse``
(so every attribute and text is escaped by the library, never by string concatenation).

    connect_stream(url, params)        <Connect><Stream> with signed <Parameter>s
    gather_pin(action, digits, prompt) <Gather dtmf> the PIN, then <Redirect> to the same action
    say_and_hang_up(text)              a sentence, then <Hangup>
    reject()                           <Reject reason="busy"> (a blocked number)
    play_digits_then(digits, url, params)  keypad tones, then a fresh <Connect><Stream>
    spoken(text)                       <Pause> then <Say> (a call that only speaks a notice)
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
