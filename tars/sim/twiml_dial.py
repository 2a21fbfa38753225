"""``<Dial>`` as the Twilio emulator reads it: the verb, its ``<Number>`` and ``<Conference>`` nouns.

What Twilio documents, and this parser enforces:

* ``<Dial>`` (https://www.twilio.com/docs/voice/twiml/dial) holds a bare number as
  text, or nouns: up to ten ``<Number>`` (rung at once, the first to answer wins),
  or one ``<Conference>``; ``<Client>``, ``<Sip>``, ``<Queue>``, ``<Sim>``,
  ``<Application>`` and ``<WhatsApp>`` are valid but not emulated. Attributes:
  ``action`` (requested when the dialed call ends), ``method`` (POST), ``timeout``
  (seconds to ring, default **30**), ``callerId`` (default: the caller's number),
  ``answerOnBridge`` (false), ``record`` (``do-not-record``; recording is not
  emulated), ``timeLimit`` (14400 s), ``hangupOnStar``.
* ``<Number>`` (https://www.twilio.com/docs/voice/twiml/number) takes E.164, or an
  unformatted US number (``415-123-4567``); ``url``/``method`` name TwiML run on the
  called party's end after they answer and before the parties are connected (the
  whisper; it may not contain ``<Dial>``); ``sendDigits``; ``statusCallback``,
  ``statusCallbackEvent`` (initiated ringing answered completed; default
  completed), ``statusCallbackMethod``.
* ``<Conference>`` (https://www.twilio.com/docs/voice/twiml/conference) names a room;
  ``muted``, ``beep`` (true, false, onEnter, onExit), ``startConferenceOnEnter``
  (true), ``endConferenceOnExit`` (false), ``waitUrl`` (default hold music; an
  empty value means silence) and ``waitMethod`` (POST), ``maxParticipants``
  (2 to 250), ``participantLabel``, ``statusCallback``/``statusCallbackEvent`` (start
  end join leave mute hold modify speaker announcement)/``statusCallbackMethod``.

Error codes (https://www.twilio.com/docs/api/errors): 12200 schema, **13214** invalid
``callerId``, **13223** invalid phone number format.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from tars.sim.twiml_attrs import TwimlError, attr_bool, attr_method, attr_number

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
NOT_EMULATED_NOUNS = frozenset({"Client", "Sip", "Queue", "Sim", "Application", "WhatsApp"})
NUMBER_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
CONFERENCE_EVENTS = frozenset({"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"})
RECORD_OFF = frozenset({"do-not-record", "false"})
BEEPS = frozenset({"true", "false", "onEnter", "onExit"})
DEFAULT_TIMEOUT = 30.0  # seconds; Twilio's documented default for <Dial timeout>
#: Twilio's default ``waitUrl`` (its classical hold music twimlet).
DEFAULT_WAIT_URL = "http://twimlets.com/holdmusic?Bucket=com.twilio.music.classical"


@dataclass(frozen=True)
class Number:
    """``<Number>``: one phone number to ring, and what to run on its end once answered."""

    number: str
    url: str | None = None
    method: str = "POST"
    send_digits: str | None = None
    status_callback: str | None = None
    status_callback_events: tuple[str, ...] = ("completed",)
    status_callback_method: str = "POST"


@dataclass(frozen=True)
class Conference:
    """``<Conference>``: a named room the call joins."""

    name: str
    muted: bool = False
    beep: str = "true"
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    wait_url: str | None = None  # None: Twilio's hold music; "": silence
    wait_method: str = "POST"
    max_participants: int = 250
    label: str | None = None
    status_callback: str | None = None
    status_callback_events: tuple[str, ...] = ()
    status_callback_method: str = "POST"


@dataclass(frozen=True)
class Dial:
    """``<Dial>``: connect the call to numbers or a conference, then ``action``."""

    numbers: tuple[Number, ...] = ()
    conference: Conference | None = None
    action: str | None = None
    method: str = "POST"
    timeout: float = DEFAULT_TIMEOUT
    caller_id: str | None = None
    answer_on_bridge: bool = False
    time_limit: float = 14400.0
    hangup_on_star: bool = False
    unsupported: str | None = None  # a valid noun or option this emulator does not implement


def normalize_number(raw: str) -> str:
    """E.164 as given, or an unformatted US number made E.164; else error 13223."""
    text = raw.strip()
    if E164.match(text):
        return text
    digits = re.sub(r"[\s().-]", "", text)
    if digits.isdigit() and len(digits) == 10:
        return "+1" + digits
    if digits.isdigit() and len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    raise TwimlError(13223, f"Dial: invalid phone number format {raw.strip()!r} (use E.164, e.g. +14155551212)")


def _events(el: ET.Element, allowed: frozenset[str], default: tuple[str, ...]) -> tuple[str, ...]:
    raw = el.get("statusCallbackEvent")
    if raw is None:
        return default
    events = tuple(raw.replace(",", " ").split())
    bad = [e for e in events if e not in allowed]
    if bad:
        raise TwimlError(12200, f"<{el.tag} statusCallbackEvent> has {bad}; allowed: {sorted(allowed)}")
    return events


def _number(el: ET.Element) -> Number:
    if len(el):
        raise TwimlError(12200, "<Number> holds only the phone number, no nested elements")
    return Number(
        number=normalize_number(el.text or ""),
        url=el.get("url") or None,
        method=attr_method(el),
        send_digits=el.get("sendDigits"),
        status_callback=el.get("statusCallback"),
        status_callback_events=_events(el, NUMBER_EVENTS, ("completed",)),
        status_callback_method=attr_method(el, "statusCallbackMethod"),
    )


def _conference(el: ET.Element) -> Conference:
    name = (el.text or "").strip()
    if not name:
        raise TwimlError(12200, "<Conference> needs a room name as its text, e.g. <Conference>room-1</Conference>")
    beep = el.get("beep", "true")
    if beep not in BEEPS:
        raise TwimlError(12200, f"<Conference beep={beep!r}> must be one of {sorted(BEEPS)}")
    most = int(attr_number(el, "maxParticipants", 250))
    if not 2 <= most <= 250:
        raise TwimlError(12200, f"<Conference maxParticipants={most}> must be between 2 and 250")
    return Conference(
        name=name,
        muted=attr_bool(el, "muted", False),
        beep=beep,
        start_conference_on_enter=attr_bool(el, "startConferenceOnEnter", True),
        end_conference_on_exit=attr_bool(el, "endConferenceOnExit", False),
        wait_url=el.get("waitUrl"),
        wait_method=attr_method(el, "waitMethod"),
        max_participants=most,
        label=el.get("participantLabel"),
        status_callback=el.get("statusCallback"),
        status_callback_events=_events(el, CONFERENCE_EVENTS, ()),
        status_callback_method=attr_method(el, "statusCallbackMethod"),
    )


def parse_dial(el: ET.Element) -> Dial:
    """Read one ``<Dial>`` element; raise :class:`TwimlError` where Twilio would."""
    text = (el.text or "").strip()
    nouns = list(el)
    if text and nouns:
        raise TwimlError(12200, "<Dial> holds either a bare number or nouns, not both")
    if not text and not nouns:
        raise TwimlError(12200, "<Dial> needs a number (text) or a noun such as <Number> or <Conference>")
    unsupported: str | None = None
    numbers: list[Number] = []
    conference: Conference | None = None
    for noun in nouns:
        if (noun.tail or "").strip():
            raise TwimlError(12200, "<Dial> holds either a bare number or nouns, not both")
        if noun.tag == "Number":
            numbers.append(_number(noun))
        elif noun.tag == "Conference":
            conference = _conference(noun)
        elif noun.tag in NOT_EMULATED_NOUNS:
            unsupported = f"Dial/{noun.tag}"
        else:
            raise TwimlError(12200, f"<{noun.tag}> is not a <Dial> noun (use <Number> or <Conference>)")
    if conference is not None and len(nouns) > 1:
        raise TwimlError(12200, "<Conference> must be the only noun in its <Dial>")
    if len(numbers) > 10:
        raise TwimlError(12200, f"<Dial> may ring at most ten <Number>s at once, not {len(numbers)}")
    if text:
        numbers.append(Number(normalize_number(text)))
    caller_id = el.get("callerId")
    if caller_id is not None and not E164.match(caller_id):
        raise TwimlError(13214, f"Dial: invalid callerId value {caller_id!r} (use an E.164 number you own)")
    record = el.get("record", "do-not-record")
    if record not in RECORD_OFF:
        unsupported = unsupported or f"Dial record={record!r}"
    return Dial(
        numbers=tuple(numbers),
        conference=conference,
        action=el.get("action") or None,
        method=attr_method(el),
        timeout=attr_number(el, "timeout", DEFAULT_TIMEOUT),
        caller_id=caller_id,
        answer_on_bridge=attr_bool(el, "answerOnBridge", False),
        time_limit=attr_number(el, "timeLimit", 14400.0),
        hangup_on_star=attr_bool(el, "hangupOnStar", False),
        unsupported=unsupported,
    )
