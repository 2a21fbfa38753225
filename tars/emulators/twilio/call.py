"""One emulated Twilio call: the other party (``Party``: who answers, what they do) and the
call itself (``Call``: its record, and the party's controls: say, press, hang up, scripts).

The :class:`~tars.emulators.twilio.emulator.TwilioEmulator` creates calls and drives their lifecycle;
``tars.emulators.twilio.emulator`` re-exports everything public here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from tars.emulators import speech
from tars.emulators.speech import Utterance
from tars.emulators.twilio import twiml
from tars.emulators.twilio.media import Mark, MediaStream
from tars.emulators.twilio.rest import API_VERSION, TwilioError, country_of


class Emulator(Protocol):
    """The Twilio emulator as a call uses it (``emulator.TwilioEmulator`` is the one there is;
    it creates calls, so a call names it by what it asks rather than importing it)."""

    account_sid: str

    def _end_call(self, call: Call, status: str, by: str) -> None: ...

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...


__all__ = ["Call", "CallEnded", "Party", "ScriptError", "Turn"]

T = TypeVar("T")
NOISE_MS = 250  # shorter than speech.MIN_BODY_MS: never a whole synthetic utterance
ANSWERS = frozenset({"human", "voicemail", "fax", "busy", "no-answer", "failed", "decline"})
WHISPER_CHOICES = frozenset({"listen", "hang_up"})
VOICEMAIL_GREETING = "You have reached my voicemail. Please leave a message after the tone."
BEEP = "(beep)"
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
Turn = Mapping[str, Any]


class CallEnded(ConnectionError):
    """The call ended while the party was waiting for something."""


class ScriptError(AssertionError):
    """A party script turn failed (timeout, wrong agent reply, call over)."""


@dataclass
class Party:
    """The other end of a call: who answers and what they do.

    ``answer`` decides an outbound call's fate: ``human``/``voicemail``/``fax``
    pick up (AnsweredBy ``human``, ``machine_start`` or ``machine_end_beep`` with
    ``DetectMessageEnd``, ``fax``; ``answered_by`` overrides, e.g. ``unknown``);
    ``busy``/``no-answer``/``failed`` never connect and only produce the final
    status callback; ``decline`` is a person rejecting the call (SIP 603 Decline,
    which Twilio reports as ``busy``). ``ring_ms`` is how long the phone rings
    before it is answered (a ``<Dial timeout>`` or REST ``Timeout`` shorter than
    that makes it ``no-answer``). A ``voicemail`` reached through ``<Dial>`` plays
    ``greeting`` then the tone, and records until the caller hangs up.

    ``whisper`` is what the party does while a whisper plays to them: ``listen``
    (answer its ``<Gather>`` from ``gather``/``gather_speech``, or stay silent) or
    ``hang_up`` (on the first ``<Say>`` played to them off a stream: a ``<Number
    url>`` whisper, or an outbound call's screening TwiML). ``gather`` holds the
    keys pressed for each ``<Gather>`` in turn (``"1234#"``), ``gather_speech`` the
    speech results. ``script`` is a list of turns run once the first media stream
    starts (or once they are connected by ``<Dial>`` or in a conference), each a
    one-key mapping: ``{"say": text}``, ``{"press": "12#"}``, ``{"silence": ms}``,
    ``{"expect": "substring" | None, "timeout": s}``, ``{"hang_up": True}``.
    """

    answer: str = "human"
    answered_by: str | None = None
    gather: list[str] = field(default_factory=list)
    gather_speech: list[str] = field(default_factory=list)
    script: list[Turn] | None = None
    ring_ms: int = 0
    greeting: str = VOICEMAIL_GREETING
    whisper: str = "listen"

    def __post_init__(self) -> None:
        if self.answer not in ANSWERS:
            raise ValueError(f"Party.answer must be one of {sorted(ANSWERS)}, not {self.answer!r}")
        if self.whisper not in WHISPER_CHOICES:
            raise ValueError(f"Party.whisper must be one of {sorted(WHISPER_CHOICES)}, not {self.whisper!r}")


class Call:
    """One emulated call: what happened on it, and the other party's controls."""

    def __init__(
        self,
        *,
        emulator: Emulator,
        sid: str,
        direction: str,
        from_: str,
        to: str,
        party: Party,
        params: dict[str, str],
        status: str = "queued",
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        status_callback_events: tuple[str, ...] = ("completed",),
        parent_call_sid: str | None = None,
    ) -> None:
        self.emulator = emulator
        self.sid = sid
        self.account_sid = emulator.account_sid
        self.direction = direction  # "inbound" | "outbound-api" | "outbound-dial" (a <Dial> leg)
        self.parent_call_sid = parent_call_sid  # the call whose <Dial> placed this leg
        self.bridged_with: Call | None = None  # the other leg while a <Dial><Number> connects them
        self.conference: str | None = None  # the conference room's name while in one
        self.hold_audio: list[str] = []  # wait/hold audio heard: a URL, "twilio hold music" or "silence"
        self.over = asyncio.Event()  # set on the final status (before its callback)
        self.legs: list[Call] = []  # the calls this call's <Dial>s placed
        self.dials: list[Any] = []  # each <Dial>'s outcome (dial.Outcome), in order
        self.looped_into: Call | None = None  # a leg that rang a served number: that inbound call
        self.finishing = False
        self.detached = asyncio.Event()  # a <Dial> leg redirected by REST: it runs its own TwiML now
        self.from_ = from_
        self.to = to
        self.party = party
        self.params = params  # the REST create form (outbound)
        self.status = status
        self.status_history: list[tuple[str, float]] = [(status, time.monotonic())]
        self.status_callback = status_callback
        self.status_callback_method = status_callback_method
        self.status_callback_events = status_callback_events
        self.created_at = time.time()
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.answered_by: str | None = None
        self.ended_by: str | None = None  # "caller" | "rest" | "emulator" | None (TwiML/server)
        self.documents: list[str] = []  # TwiML documents received
        self.verbs: list[twiml.Verb] = []  # verbs executed
        self.webhooks: list[dict[str, Any]] = []  # every request Twilio made for this call
        self.status_callbacks: list[dict[str, str]] = []
        self.rest_updates: list[dict[str, Any]] = []  # POST /Calls/{sid}.json, incl. hang-ups
        self.streams: list[MediaStream] = []
        self.said: list[str] = []  # what the party said
        self.heard: list[Utterance] = []  # what the party heard: <Say> and agent speech
        self.party_digits: list[str] = []  # keys the party pressed
        self.agent_digits: list[str] = []  # DTMF Twilio played for the app (SendDigits, <Play>)
        self.played_urls: list[str] = []
        self.gathers: list[dict[str, str]] = []
        self.errors: list[TwilioError] = []
        self.script_errors: list[str] = []
        self.callback_sequence = 0
        self.redirect_to: twiml.Source | None = None
        self.exec_task: asyncio.Task[Any] | None = None
        self.script_task: asyncio.Task[Any] | None = None
        self.ended_event = asyncio.Event()
        self.gathering = False  # a <Gather> is waiting for keys pressed live
        self._gather_keys = list(party.gather)
        self._gather_speech = list(party.gather_speech)
        self._keypad: asyncio.Queue[str] = asyncio.Queue()
        self._heard_queue: asyncio.Queue[Utterance] = asyncio.Queue()
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Call {self.sid} {self.direction} {self.from_}->{self.to} {self.status}>"

    # --- record --------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """True once the call reached a final status."""
        return self.status in FINAL_STATUSES

    @property
    def duration(self) -> int:
        """Seconds from answer to hang-up (0 if never answered)."""
        if self.start_time is None:
            return 0
        return int((self.end_time or time.time()) - self.start_time)

    @property
    def statuses(self) -> list[str]:
        """The status history without timestamps."""
        return [s for s, _ in self.status_history]

    @property
    def stream(self) -> MediaStream | None:
        """The live media stream, if any."""
        live = [s for s in self.streams if s.started.is_set() and not s.finished.is_set()]
        return live[-1] if live else None

    @property
    def marks(self) -> list[Mark]:
        """Every ``mark`` the server sent on any stream of this call."""
        return [m for s in self.streams for m in s.marks]

    @property
    def rest_hangups(self) -> list[dict[str, Any]]:
        """REST updates that asked for ``Status=completed`` (with the HTTP ``response``)."""
        return [u for u in self.rest_updates if u["params"].get("Status") == "completed"]

    def set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.status_history.append((status, time.monotonic()))
            self.changed()

    def finish(self, status: str) -> None:
        """Reach a final status (idempotent)."""
        if not self.ended:
            self.end_time = time.time()
            self.set_status(status)
            self.over.set()

    def webhook_params(self) -> dict[str, str]:
        """The parameters Twilio sends with every voice request for this call."""
        params = {
            "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "CallSid": self.sid,
            "CallStatus": self.status, "Direction": self.direction,
            "From": self.from_, "Caller": self.from_, "To": self.to, "Called": self.to,
        }  # fmt: skip
        # Twilio sends the geographic fields even when empty: they are signed too.
        for prefix in ("From", "To", "Caller", "Called"):
            number = self.from_ if prefix in {"From", "Caller"} else self.to
            params[f"{prefix}Country"] = country_of(number)
            params |= {f"{prefix}City": "", f"{prefix}State": "", f"{prefix}Zip": ""}
        if self.parent_call_sid:  # a <Dial> leg's requests name the call that dialed it
            params["ParentCallSid"] = self.parent_call_sid
        return params

    def hear(self, utterance: Utterance) -> None:
        """The party heard the agent say something (from the media stream).

        A blip shorter than any synthetic word and carrying no id is not speech: under
        load, a gap in the paced audio can split the tail of a silence off as one.
        """
        if utterance.uid is None and utterance.duration_ms < NOISE_MS:
            return
        self.heard.append(utterance)
        self._heard_queue.put_nowait(utterance)

    def hear_say(self, text: str) -> None:
        """The party heard a TwiML ``<Say>``."""
        self.hear(Utterance(text, None, speech.body_ms(text)))

    def prompted(self) -> None:
        """TwiML spoke to the party off any stream: one who hangs up on a whisper does so now."""
        if self.party.whisper == "hang_up" and self.stream is None and not self.ended:
            self.emulator._end_call(self, "completed", by="caller")

    def changed(self) -> None:
        """Wake party controls waiting for a stream or a ``<Gather>``."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def next_gather_input(
        self, wait: float, finish_on_key: str = "#", num_digits: int | None = None
    ) -> tuple[str | None, str | None]:
        """Keys (or speech) for the next ``<Gather>``: configured, or pressed meanwhile.

        Keys pressed with :meth:`press` while no stream is live are buffered; in
        realtime mode the gather waits up to ``wait`` seconds for each next key.
        """
        if self._gather_keys:
            return self._gather_keys.pop(0), None
        if self._gather_speech:
            return None, self._gather_speech.pop(0)
        self.gathering = True
        self.changed()
        try:
            return await self._collect_keys(wait, finish_on_key, num_digits)
        finally:
            self.gathering = False

    async def _collect_keys(
        self, wait: float, finish_on_key: str, num_digits: int | None
    ) -> tuple[str | None, str | None]:
        keys = ""
        while True:
            if finish_on_key and finish_on_key in keys:
                break
            if num_digits is not None and len(keys) >= num_digits:
                break
            if not self._keypad.empty():
                keys += self._keypad.get_nowait()
                continue
            if not wait:
                break
            try:
                keys += await asyncio.wait_for(self._keypad.get(), wait)
            except TimeoutError:
                break
        return (keys or None), None

    # --- the party's controls --------------------------------------------------

    async def _until(self, waiter: Coroutine[Any, Any, T], timeout: float) -> T:
        """Await ``waiter`` unless the call ends or ``timeout`` passes first."""
        task = asyncio.ensure_future(waiter)
        ended = asyncio.ensure_future(self.ended_event.wait())
        try:
            await asyncio.wait({task, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            return task.result()
        if self.ended_event.is_set():
            raise CallEnded(f"call {self.sid} ended ({self.status})")
        raise TimeoutError(f"nothing within {timeout}s on call {self.sid}")

    async def wait_for_stream(self, timeout: float = 10) -> MediaStream:
        """The live media stream, waiting for ``<Connect><Stream>`` if needed."""

        async def live() -> MediaStream:
            while (stream := self.stream) is None:
                await self._changed.wait()
            return stream

        return await self._until(live(), timeout)

    async def wait_ended(self, timeout: float = 10) -> str:
        """Wait for the final status callback to have been sent; return the final status."""
        await asyncio.wait_for(self.ended_event.wait(), timeout)
        return self.status

    async def say(self, text: str, *, pause_ms: int = 1000) -> None:
        """Speak ``text`` (synthetic speech) then pause, like a person ending a turn."""
        if self.stream is None and (self.bridged_with is not None or self.conference is not None):
            self.said.append(text)  # bridged by <Dial>, or in a room: the others hear it
            for other in self.emulator._listeners(self):
                other.hear_say(text)
            await self.emulator._pace((speech.body_ms(text) + pause_ms) / 1000)
            return
        stream = await self.wait_for_stream()
        self.said.append(text)
        await stream.send_audio(speech.encode(text, 8000) + speech.silence(pause_ms, 8000))

    async def silence(self, ms: int) -> None:
        """Send ``ms`` of silence (the stream sends silence anyway in realtime mode)."""
        stream = await self.wait_for_stream()
        await stream.send_audio(speech.silence(ms, 8000))

    async def press(self, digits: str, timeout: float = 10) -> None:
        """Press keys: ``dtmf`` events on the live stream, or input for a waiting ``<Gather>``.

        With neither, waits (up to ``timeout``) for one. In fast mode a ``<Gather>``
        does not wait for live keys: give them in ``Party.gather`` instead.
        """

        async def target() -> MediaStream | None:
            while (stream := self.stream) is None and not self.gathering:
                await self._changed.wait()
            return stream

        stream = await self._until(target(), timeout)
        self.party_digits.append(digits)
        if stream is not None:
            await stream.send_dtmf(digits)
        else:
            for digit in digits:
                self._keypad.put_nowait(digit)

    async def wait_for_agent_utterance(self, timeout: float = 10) -> Utterance:
        """The next thing the party heard (in order); TimeoutError or CallEnded otherwise."""
        return await self._until(self._heard_queue.get(), timeout)

    async def hang_up(self) -> None:
        """The party hangs up: ``stop`` + close on the stream, then ``completed``."""
        self.emulator._end_call(self, "completed", by="caller")
        await self.ended_event.wait()

    async def run_script(self, turns: list[Turn]) -> None:
        """Run party turns in order; a failed turn is recorded and raises ScriptError."""
        for number, turn in enumerate(turns, 1):
            try:
                await self._turn(turn)
            except (TimeoutError, ConnectionError, ScriptError, ValueError) as exc:
                message = f"turn {number} {dict(turn)}: {exc}"
                self.script_errors.append(message)
                raise ScriptError(message) from exc

    async def _turn(self, turn: Turn) -> None:
        if "say" in turn:
            await self.say(str(turn["say"]), pause_ms=int(turn.get("pause_ms", 600)))
        elif "press" in turn:
            await self.press(str(turn["press"]))
        elif "silence" in turn:
            await self.silence(int(turn["silence"]))
        elif "expect" in turn:
            heard = await self.wait_for_agent_utterance(float(turn.get("timeout", 10)))
            want = turn["expect"]
            if want is not None and str(want).lower() not in heard.text.lower():
                raise ScriptError(f"expected the agent to say {want!r}, heard {heard.text!r}")
        elif turn.get("hang_up"):
            await self.hang_up()
        else:
            raise ValueError("a turn is one of say, press, silence, expect, hang_up")

    def start_script(self) -> None:
        """Run ``party.script`` once, when the first media stream starts."""
        if self.party.script and self.script_task is None:

            async def run(turns: list[Turn]) -> None:
                with contextlib.suppress(ScriptError):
                    await self.run_script(turns)

            self.script_task = self.emulator._spawn(run(self.party.script), f"script-{self.sid}")
