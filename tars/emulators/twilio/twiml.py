"""TwiML as the Twilio emulator reads it: parse a document into verbs, loudly, and run it.

Twilio fetches TwiML from the voice webhook and executes it verb by verb. Real
Twilio is unforgiving, and so is this parser, because TARS only learns about a
broken document when a real call fails:

* a body that is not well-formed XML is **error 12100** (document parse failure);
* a root other than ``<Response>``, an unknown or misplaced verb, or a bad
  attribute is **error 12200** (schema validation);
* ``<Connect><Stream url>`` must be an absolute ``wss://`` URL **without a query
  string** (Twilio drops query strings; data goes in ``<Parameter>``), else
  **error 31920**. ``ws://`` is accepted because the server under test runs
  plain HTTP on loopback, but the verb remembers that it was not ``wss``;
* ``<Connect><Stream>`` carries only the inbound track (``track`` other than
  ``inbound_track`` is error 31941 in this emulator).

``<Dial>`` and its nouns are read by ``twiml_dial`` and run by ``dial``.
Verbs that are valid TwiML but not emulated (``<Record>``, ``<Enqueue>`` …) come out
as :class:`Unsupported`, so the interpreter can fail the call with a clear message
instead of pretending. :class:`Interpreter` executes the verbs for the emulator.
"""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import websockets

from tars.emulators.speech import Utterance
from tars.emulators.twilio.media import MediaStream
from tars.emulators.twilio.rest import Webhooks, rfc2822
from tars.emulators.twilio.twiml_attrs import TwimlError
from tars.emulators.twilio.twiml_attrs import attr_method as _method
from tars.emulators.twilio.twiml_attrs import attr_number as _number
from tars.emulators.twilio.twiml_dial import Dial, parse_dial


class Call(Protocol):
    """A call as its TwiML runs on it (``call.Call`` is the one there is; it records this
    module's verbs, so the interpreter names it by what it uses rather than importing it)."""

    sid: str
    account_sid: str
    direction: str
    status: str
    answered_by: str | None
    params: dict[str, str]
    documents: list[str]
    verbs: list[Verb]
    webhooks: list[dict[str, Any]]
    streams: list[MediaStream]
    gathers: list[dict[str, str]]
    played_urls: list[str]
    agent_digits: list[str]

    def webhook_params(self) -> dict[str, str]: ...

    def hear(self, utterance: Utterance) -> None: ...

    def hear_say(self, text: str) -> None: ...

    def changed(self) -> None: ...

    def finish(self, status: str) -> None: ...

    def start_script(self) -> None: ...

    async def next_gather_input(
        self, wait: float, finish_on_key: str = "#", num_digits: int | None = None
    ) -> tuple[str | None, str | None]: ...


class Emulator(Protocol):
    """The Twilio emulator as the TwiML interpreter uses it (``emulator.TwilioEmulator``)."""

    realtime: bool
    realtime_playback: bool
    webhooks: Webhooks

    def _answer(self, call: Call) -> None: ...

    def _call_error(self, call: Call, code: int, message: str, where: str) -> None: ...

    async def _pace(self, seconds: float) -> None: ...

    async def _post(
        self, call: Call | None, kind: str, url: str, params: dict[str, str], method: str = "POST"
    ) -> str | None: ...


PLAY_DIGITS = re.compile(r"^[0-9*#wW]+$")
KNOWN_BUT_NOT_EMULATED = frozenset({"Record", "Enqueue", "Leave", "Pay", "Refer", "Sms", "Message", "Start", "Stop"})


@dataclass(frozen=True)
class Say:
    """``<Say>``: text the other party hears (``loop`` 0 means "many"; we play once)."""

    text: str
    voice: str | None = None
    language: str | None = None
    loop: int = 1


@dataclass(frozen=True)
class Play:
    """``<Play>``: a media URL, or ``digits`` (DTMF; ``w`` is a 0.5 s wait)."""

    url: str | None = None
    digits: str | None = None
    loop: int = 1


@dataclass(frozen=True)
class Pause:
    """``<Pause length>`` in seconds (default 1)."""

    length: float = 1.0


@dataclass(frozen=True)
class Hangup:
    """``<Hangup/>``: end the call."""


@dataclass(frozen=True)
class Reject:
    """``<Reject reason>`` (inbound only): ``rejected`` → busy, ``busy`` → busy."""

    reason: str = "rejected"


@dataclass(frozen=True)
class Redirect:
    """``<Redirect method>url</Redirect>``: fetch new TwiML from ``url``."""

    url: str
    method: str = "POST"


@dataclass(frozen=True)
class Gather:
    """``<Gather>``: collect keypad (and/or speech) input, then call ``action``."""

    input: tuple[str, ...] = ("dtmf",)
    num_digits: int | None = None
    finish_on_key: str = "#"
    timeout: float = 5.0
    action: str | None = None
    method: str = "POST"
    action_on_empty_result: bool = False
    children: tuple[Say | Play | Pause, ...] = ()


@dataclass(frozen=True)
class Stream:
    """``<Connect><Stream>``: a bidirectional media stream to ``url``."""

    url: str
    parameters: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    track: str = "inbound_track"
    status_callback: str | None = None
    status_callback_method: str = "POST"

    @property
    def secure(self) -> bool:
        """True for ``wss://`` (what Twilio requires in production)."""
        return self.url.lower().startswith("wss://")


@dataclass(frozen=True)
class Unsupported:
    """A real TwiML verb this emulator does not implement."""

    name: str


Verb = Say | Play | Pause | Hangup | Reject | Redirect | Gather | Stream | Dial | Unsupported


def check_stream_url(url: str) -> None:
    """Raise error 31920 unless ``url`` is an absolute ws(s) URL with no query string."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"ws", "wss"} or not parts.netloc:
        raise TwimlError(31920, f"Stream url must be an absolute wss:// URL, got {url!r}")
    if parts.query:
        raise TwimlError(
            31920,
            f"Stream url {url!r} has a query string; Twilio does not support query "
            "strings on Stream URLs (pass data with <Parameter>)",
        )


def _say(el: ET.Element) -> Say:
    text = " ".join("".join(el.itertext()).split())
    return Say(text, el.get("voice"), el.get("language"), int(_number(el, "loop", 1)))


def _play(el: ET.Element) -> Play:
    digits = el.get("digits")
    url = (el.text or "").strip() or None
    if digits is not None and not PLAY_DIGITS.match(digits):
        raise TwimlError(12200, f"<Play digits={digits!r}> may only hold 0-9 * # w")
    if digits is None and url is None:
        raise TwimlError(12200, "<Play> needs a URL or a digits attribute")
    return Play(url=url, digits=digits, loop=int(_number(el, "loop", 1)))


def _pause(el: ET.Element) -> Pause:
    return Pause(_number(el, "length", 1.0))


def _gather(el: ET.Element) -> Gather:
    inputs = tuple((el.get("input") or "dtmf").split())
    if not inputs or any(i not in {"dtmf", "speech"} for i in inputs):
        raise TwimlError(12200, f"<Gather input={el.get('input')!r}> must be dtmf and/or speech")
    children: list[Say | Play | Pause] = []
    nested: dict[str, Callable[[ET.Element], Say | Play | Pause]] = {
        "Say": _say,
        "Play": _play,
        "Pause": _pause,
    }
    for child in el:
        if child.tag not in nested:
            raise TwimlError(12200, f"<{child.tag}> is not allowed inside <Gather>")
        children.append(nested[child.tag](child))
    num = el.get("numDigits")
    if num is not None and (not num.isdigit() or int(num) < 1):
        raise TwimlError(12200, f"<Gather numDigits={num!r}> must be a positive integer")
    return Gather(
        input=inputs,
        num_digits=int(num) if num is not None else None,
        finish_on_key=el.get("finishOnKey", "#"),
        timeout=_number(el, "timeout", 5.0),
        action=el.get("action"),
        method=_method(el),
        action_on_empty_result=(el.get("actionOnEmptyResult") or "false").lower() == "true",
        children=tuple(children),
    )


def _connect(el: ET.Element) -> Stream | Unsupported:
    children = list(el)
    if len(children) != 1:
        raise TwimlError(12200, "<Connect> must contain exactly one noun (<Stream>)")
    stream = children[0]
    if stream.tag != "Stream":
        return Unsupported(f"Connect/{stream.tag}")
    url = stream.get("url")
    if not url:
        raise TwimlError(12200, "<Stream> needs a url attribute")
    check_stream_url(url)
    params: dict[str, str] = {}
    for p in stream:
        if p.tag != "Parameter":
            raise TwimlError(12200, f"<{p.tag}> is not allowed inside <Stream>")
        name, value = p.get("name"), p.get("value")
        if not name or value is None:
            raise TwimlError(12200, "<Parameter> needs name and value attributes")
        params[name] = value
    track = stream.get("track", "inbound_track")
    if track != "inbound_track":
        raise TwimlError(31941, f"<Connect><Stream track={track!r}>: a bidirectional stream is inbound only")
    return Stream(
        url=url,
        parameters=params,
        name=stream.get("name"),
        track=track,
        status_callback=stream.get("statusCallback"),
        status_callback_method=_method(stream, "statusCallbackMethod"),
    )


def _redirect(el: ET.Element) -> Redirect:
    url = (el.text or "").strip()
    if not url:
        raise TwimlError(12200, "<Redirect> needs a URL")
    return Redirect(url, _method(el))


def _reject(el: ET.Element) -> Reject:
    reason = el.get("reason", "rejected")
    if reason not in {"rejected", "busy"}:
        raise TwimlError(12200, f"<Reject reason={reason!r}> must be rejected or busy")
    return Reject(reason)


_PARSERS: dict[str, Callable[[ET.Element], Verb]] = {
    "Say": _say,
    "Play": _play,
    "Pause": _pause,
    "Gather": _gather,
    "Connect": _connect,
    "Redirect": _redirect,
    "Reject": _reject,
    "Hangup": lambda el: Hangup(),
    "Dial": parse_dial,
}


def parse(document: str | bytes) -> list[Verb]:
    """Parse a TwiML document into verbs; raise :class:`TwimlError` like Twilio would."""
    if isinstance(document, bytes):
        document = document.decode("utf-8", errors="replace")
    if not document.strip():
        raise TwimlError(12100, "empty TwiML document")
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise TwimlError(12100, f"TwiML is not well-formed XML: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(12200, f"TwiML root must be <Response>, not <{root.tag}>")
    verbs: list[Verb] = []
    for el in root:
        parser = _PARSERS.get(el.tag)
        if parser is not None:
            verbs.append(parser(el))
        elif el.tag in KNOWN_BUT_NOT_EMULATED:
            verbs.append(Unsupported(el.tag))
        else:
            raise TwimlError(12200, f"<{el.tag}> is not a TwiML voice verb")
    return verbs


# --- the interpreter -----------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where the next TwiML document comes from (a webhook URL or inline ``Twiml``)."""

    url: str | None = None
    twiml: str | None = None
    method: str = "POST"
    extra: tuple[tuple[str, str], ...] = ()


class CallOver(Exception):
    """The call's TwiML is over (``<Hangup/>``, ``<Reject>``, or a recorded error)."""


XML_TYPES = ("text/xml", "application/xml", "text/html", "")


def _keeps_ringing(verb: Verb) -> bool:
    """``<Reject>``, and ``<Dial answerOnBridge="true">``, leave a ringing inbound call ringing.

    https://www.twilio.com/docs/voice/twiml/dial#answeronbridge: the inbound call
    rings until the dialed party answers, and is then answered with them.
    """
    return isinstance(verb, Reject) or (isinstance(verb, Dial) and verb.answer_on_bridge)


class Interpreter:
    """Executes TwiML for one emulator the way Twilio does, verb by verb.

    Twilio fetches the document (signed POST/GET), answers an inbound call when
    the first verb other than ``<Reject>`` runs, follows ``<Gather action>`` and
    ``<Redirect>`` (relative URLs resolve against the current document), and
    hangs up when the document runs out. Errors are recorded and end the call.
    """

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    async def run(self, call: Call, source: Source) -> bool:
        """Run documents until one ends (cancelled on hang-up or REST redirect).

        True when the last document ran out of verbs, False when ``<Hangup/>``,
        ``<Reject>`` or an error ended it (a whisper tells accept from decline so).
        """
        current: Source | None = source
        try:
            while current is not None:
                verbs, url = await self._load(call, current)
                current = None
                for verb in verbs:
                    if call.ended:  # hung up meanwhile: Twilio runs no more of its TwiML
                        return False
                    call.verbs.append(verb)
                    if call.status == "ringing" and not _keeps_ringing(verb):
                        self.emu._answer(call)
                    current = await self._do(call, verb, url)
                    if current is not None:
                        break
        except CallOver:
            return False
        return True

    def _error(self, call: Call, code: int, message: str, where: str) -> CallOver:
        self.emu._call_error(call, code, message, where)
        return CallOver(message)

    async def _load(self, call: Call, source: Source) -> tuple[list[Verb], str | None]:
        if source.twiml is not None:
            document, url = source.twiml, None
        else:
            assert source.url is not None
            url = source.url
            params = call.webhook_params() | dict(source.extra)
            if call.answered_by and call.params.get("AsyncAmd") != "true":
                params["AnsweredBy"] = call.answered_by
            body = await self.emu._post(call, "voice", url, params, source.method)
            if body is None:
                raise CallOver("webhook failed")
            ctype = call.webhooks[-1].get("content_type", "").split(";")[0].strip().lower()
            if ctype not in XML_TYPES:
                raise self._error(call, 12300, f"Invalid Content-Type {ctype!r} for TwiML", url)
            document = body
        call.documents.append(document)
        try:
            return parse(document), url
        except TwimlError as exc:
            raise self._error(call, exc.code, exc.message, url or "inline Twiml") from None

    def _resolve(self, call: Call, target: str | None, doc_url: str | None) -> str:
        if doc_url is None and (target is None or not urlsplit(target).scheme):
            raise self._error(call, 11200, f"relative URL {target!r} in inline Twiml", "TwiML")
        return urljoin(doc_url or "", target or doc_url or "")

    async def _do(self, call: Call, verb: Verb, url: str | None) -> Source | None:
        pace = self.emu._pace
        if isinstance(verb, Say):
            call.hear_say(verb.text)
            call.prompted()
            await pace(len(verb.text) / 12)
        elif isinstance(verb, Play):
            if verb.digits is not None:
                call.agent_digits.append(verb.digits.replace("w", "").replace("W", ""))
                await pace(0.5 * verb.digits.lower().count("w") + 0.1 * len(verb.digits))
            else:
                call.played_urls.append(verb.url or "")
        elif isinstance(verb, Pause):
            await pace(verb.length)
        elif isinstance(verb, Hangup):
            raise CallOver("<Hangup/>")
        elif isinstance(verb, Reject):
            if call.direction != "inbound" or call.status != "ringing":
                raise self._error(call, 12200, "<Reject> only works on a ringing inbound call", "")
            call.finish("busy")
            raise CallOver("<Reject>")
        elif isinstance(verb, Redirect):
            return Source(url=self._resolve(call, verb.url, url), method=verb.method)
        elif isinstance(verb, Gather):
            return await self._gather(call, verb, url)
        elif isinstance(verb, Stream):
            await self._stream(call, verb, url)
        elif isinstance(verb, Dial) and verb.unsupported is None:
            return await self.emu._dial(call, verb, url)
        elif isinstance(verb, Dial):
            raise self._error(call, 12200, f"<{verb.unsupported}> is valid TwiML but not emulated", "")
        else:
            raise self._error(call, 12200, f"<{verb.name}> is valid TwiML but not emulated", "")
        return None

    async def _gather(self, call: Call, verb: Gather, url: str | None) -> Source | None:
        for child in verb.children:
            await self._do(call, child, url)
        wait = verb.timeout if self.emu.realtime else 0
        keys, speech_result = await call.next_gather_input(wait, verb.finish_on_key, verb.num_digits)
        extra: dict[str, str] = {}
        if keys is not None and "dtmf" in verb.input:
            finished = ""
            if verb.finish_on_key and verb.finish_on_key in keys:
                keys, finished = keys.split(verb.finish_on_key, 1)[0], verb.finish_on_key
            if verb.num_digits is not None:
                keys = keys[: verb.num_digits]
            extra = {"Digits": keys, "FinishedOnKey": finished, "msg": "Gather End"}
        elif speech_result is not None and "speech" in verb.input:
            extra = {"SpeechResult": speech_result, "Confidence": "0.9", "msg": "Gather End"}
        elif not verb.action_on_empty_result:
            return None  # timeout with no input: fall through to the next verb
        call.gathers.append(extra)
        target = self._resolve(call, verb.action, url)
        return Source(url=target, method=verb.method, extra=tuple(extra.items()))

    async def _stream(self, call: Call, verb: Stream, doc_url: str | None) -> None:
        emu = self.emu
        try:
            local, headers = emu.webhooks.resolve(verb.url)
        except LookupError as exc:
            emu._call_error(call, 31920, str(exc), f"Stream {verb.url}")
            return
        headers["X-Twilio-Signature"] = emu.webhooks.sign(verb.url, {})
        stream = MediaStream(
            call_sid=call.sid, account_sid=call.account_sid, url=verb.url, local_url=local,
            parameters=dict(verb.parameters), name=verb.name, realtime=emu.realtime,
            realtime_playback=emu.realtime_playback,
            on_error=lambda code, msg: emu._call_error(call, code, msg, f"Stream {verb.url}"),
            on_utterance=call.hear,
        )  # fmt: skip
        call.streams.append(stream)
        try:
            await stream.connect(headers)
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            emu._call_error(call, 31920, f"websocket handshake failed: {exc!r}", verb.url)
            return
        run = asyncio.create_task(stream.run(), name=f"twilio-media-{stream.stream_sid}")
        call.changed()
        try:
            await self._stream_event(call, verb, stream, "stream-started", doc_url)
            call.start_script()
            await asyncio.wait({run})  # until the server, the caller or a REST update ends it
        finally:
            if not run.done():
                await stream.stop()
            await asyncio.gather(run, return_exceptions=True)
            call.changed()
            await self._stream_event(call, verb, stream, "stream-stopped", doc_url)

    async def _stream_event(
        self, call: Call, verb: Stream, stream: MediaStream, event: str, doc_url: str | None
    ) -> None:
        """Stream status callback (``stream-started``/``stream-stopped``), if asked for."""
        if verb.status_callback:
            params = {
                "AccountSid": call.account_sid,
                "CallSid": call.sid,
                "StreamSid": stream.stream_sid,
                "StreamName": verb.name or stream.stream_sid,
                "StreamEvent": event,
                "Timestamp": rfc2822(time.time()) or "",
            }
            target = urljoin(doc_url or "", verb.status_callback)
            await self.emu._post(call, "stream-status", target, params, verb.status_callback_method)
