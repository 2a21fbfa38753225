"""``<Dial>`` run by the Twilio emulator: ring the numbers, whisper, bridge, then ``action``.

What Twilio documents (https://www.twilio.com/docs/voice/twiml/dial) and this does:

* Each ``<Number>`` is a new *child* call (``direction`` ``outbound-dial``, its
  ``parent_call_sid`` the dialing call, ``From`` the ``callerId`` or else the caller's
  own number), with its own status callbacks (``<Number statusCallback>``). All ring
  at once; the first to answer is connected and the others are hung up.
* A phone that rings past ``timeout`` (default 30 s) is ``no-answer``; a busy line
  is ``busy``; a person declining (SIP 603) is reported ``busy`` too; an unroutable
  number is ``failed``; a leg hung up over REST while ringing is ``canceled``. A bridge
  lasts at most ``timeLimit`` seconds (paced emulator only); ``hangupOnStar`` and
  ``record`` other than off are not emulated.
* ``<Number url>`` (https://www.twilio.com/docs/voice/twiml/number#url): once the
  called party answers, Twilio fetches that TwiML (signed, with ``ParentCallSid``)
  and runs it on *their* end only, before connecting; the caller keeps hearing
  ringing. If it ends by running out of verbs, the two are connected; if it ends in
  ``<Hangup/>`` (or the party hangs up), the leg was answered but never bridged:
  ``DialCallStatus`` ``completed`` with ``DialBridged=false``. A whisper may not
  ``<Dial>`` (error 13201, "Dial: Cannot Dial out from a Dial Call Segment").
* When the dial ends, Twilio requests ``action`` (signed, ``method``) with
  ``DialCallStatus``, ``DialCallSid``, ``DialCallDuration`` and ``DialBridged``, and
  the call goes on with the TwiML it returns; the verbs after ``<Dial>`` are not
  run. Without ``action`` the call goes on with the next verb (and ends when there
  is none). ``<Dial><Conference>`` reports ``answered`` (see ``conference``).
* A connected leg redirected over REST (``calls(leg).update(twiml=...)``) leaves the
  bridge and runs that TwiML on its own, and the dialing call's ``<Dial>`` ends
  (``completed``): how a warm transfer moves the called party into a conference.
* Dialing a number this emulator serves (:meth:`TwilioEmulator.serve_number`, e.g.
  TARS's own) does what the real network does: that number's voice webhook gets a
  new inbound call, which the leg is connected to; ``emu.loops`` records it so a
  test can show TARS refusing to transfer a caller back into itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from tars.emulators.twilio.call import BEEP, Call, Party
from tars.emulators.twilio.conference import Conferences
from tars.emulators.twilio.rest import new_sid
from tars.emulators.twilio.twiml import CallOver, Interpreter, Source
from tars.emulators.twilio.twiml_dial import Dial, Number

ANSWERED = "answer"


@dataclass(frozen=True)
class Loop:
    """A ``<Dial>`` that rang a number this emulator serves: the leg and the inbound call it made."""

    parent_sid: str
    leg_sid: str
    inbound_sid: str
    number: str


class Exchange(Protocol):
    """The emulator as a ``<Dial>`` uses it (``emulator.TwilioEmulator``, which holds the
    ``Dialer``: named by what is used here rather than imported)."""

    realtime: bool
    parties: dict[str, Party]
    default_party: Party
    served_numbers: dict[str, tuple[str, str | None]]
    loops: list[Loop]
    conferences: Conferences
    _interpreter: Interpreter

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...

    def _add_call(self, call: Call) -> None: ...

    def _answer(self, call: Call) -> None: ...

    def _call_error(self, call: Call, code: int, message: str, where: str) -> None: ...

    def _end_call(self, call: Call, status: str, by: str) -> None: ...

    async def _status_event(self, call: Call, event: str) -> None: ...

    async def incoming_call(
        self,
        *,
        from_: str,
        to: str,
        voice_url: str,
        method: str = "POST",
        status_callback: str | None = None,
        party: Party | None = None,
    ) -> Call: ...


@dataclass
class Outcome:
    """How one ``<Dial>`` ended, as the ``action`` request reports it."""

    status: str
    leg: Call | None = None
    bridged: bool = False
    duration: int = 0

    def params(self) -> dict[str, str]:
        params = {"DialCallStatus": self.status, "DialBridged": str(self.bridged).lower()}
        if self.leg is not None:
            params["DialCallSid"] = self.leg.sid
        params["DialCallDuration"] = str(self.duration)
        return params


class Dialer:
    """Runs ``<Dial>`` for one emulator."""

    def __init__(self, emu: Exchange) -> None:
        self.emu = emu

    async def dial(self, call: Call, verb: Dial, doc_url: str | None) -> Source | None:
        """Run ``verb`` on ``call``; the ``action`` request to follow, or None for the next verb."""
        emu = self.emu
        if call.direction == "outbound-dial" and not call.detached.is_set():
            emu._call_error(call, 13201, "Dial: Cannot Dial out from a Dial Call Segment (a whisper)", "<Dial>")
            raise CallOver("<Dial> in a whisper")
        if verb.conference is not None:
            seconds = await emu.conferences.join(call, verb.conference, doc_url)
            outcome = Outcome("answered", None, True, seconds)
        else:
            outcome = await self._numbers(call, verb, doc_url)
        call.dials.append(outcome)
        if call.status == "ringing":  # answerOnBridge and nobody answered: Twilio answers now
            emu._answer(call)
        if call.ended or not verb.action:
            return None
        target = emu._interpreter._resolve(call, verb.action, doc_url)
        return Source(url=target, method=verb.method, extra=tuple(outcome.params().items()))

    # --- <Number>s -------------------------------------------------------------------

    def _leg(self, parent: Call, number: Number, caller_id: str) -> Call:
        emu = self.emu
        leg = Call(
            emulator=emu,
            sid=new_sid("CA"),
            direction="outbound-dial",
            from_=caller_id,
            to=number.number,
            party=emu.parties.get(number.number, emu.default_party),
            params={},
            status_callback=number.status_callback,
            status_callback_method=number.status_callback_method,
            status_callback_events=number.status_callback_events,
            parent_call_sid=parent.sid,
        )
        emu._add_call(leg)
        parent.legs.append(leg)
        return leg

    async def _numbers(self, call: Call, verb: Dial, doc_url: str | None) -> Outcome:
        caller_id = verb.caller_id or call.from_
        legs = [(self._leg(call, n, caller_id), n) for n in verb.numbers]
        rings = {asyncio.ensure_future(self._ring(leg, verb.timeout)): (leg, n) for leg, n in legs}
        winner: tuple[Call, Number] | None = None
        results: dict[str, str] = {}
        try:
            pending = set(rings)
            while pending and winner is None:
                if self.emu.realtime:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                else:  # unpaced, every phone rings "at once": the shortest ring_ms answers first
                    done, pending = (await asyncio.wait(pending))[0], set()
                for task in sorted(done, key=lambda t: rings[t][0].party.ring_ms):
                    leg, number = rings[task]
                    results[leg.sid] = task.result()
                    if results[leg.sid] == ANSWERED and winner is None:
                        winner = (leg, number)
            for task in pending:  # the first to answer wins; Twilio hangs up the rest
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for leg, _ in legs:
                if winner is None or leg is not winner[0]:  # beaten to it: hung up while ringing
                    result = results.get(leg.sid, "canceled")
                    self._finish(leg, "canceled" if result == ANSWERED else result)
            if winner is None:
                first = legs[0][0] if legs else None
                status = _worst([results.get(leg.sid, "canceled") for leg, _ in legs])
                return Outcome(status, first)
            return await self._connect(call, verb, winner[0], winner[1], doc_url)
        finally:
            for task in rings:
                task.cancel()
            for leg, _ in legs:  # the caller hung up or was redirected: the legs go too
                self._finish(leg, "completed" if leg.start_time else "canceled")

    async def _ring(self, leg: Call, timeout: float) -> str:
        """Ring one leg: ``answer``, or its final status."""
        emu = self.emu
        await emu._status_event(leg, "initiated")
        leg.set_status("ringing")
        await emu._status_event(leg, "ringing")
        served = emu.served_numbers.get(leg.to)
        if served is not None:
            return await self._ring_served(leg, served, timeout)
        party = leg.party
        if party.answer == "no-answer" or party.ring_ms / 1000 >= timeout:
            await self._pace_unless_over(leg, timeout)
            return "canceled" if leg.ended else "no-answer"
        await self._pace_unless_over(leg, party.ring_ms / 1000)
        if leg.ended:
            return leg.status if leg.status != "completed" else "canceled"
        if party.answer in {"busy", "failed"}:
            return party.answer
        if party.answer == "decline":
            return "busy"
        return ANSWERED

    async def _ring_served(self, leg: Call, served: tuple[str, str | None], timeout: float) -> str:
        """The leg rings a number this emulator serves: a new inbound call to its webhook."""
        voice_url, status_callback = served
        inbound = await self.emu.incoming_call(
            from_=leg.from_, to=leg.to, voice_url=voice_url, status_callback=status_callback
        )
        self.emu.loops.append(Loop(leg.parent_call_sid or "", leg.sid, inbound.sid, leg.to))
        leg.looped_into = inbound

        async def settled() -> None:
            while inbound.status in {"queued", "ringing"}:
                await inbound._changed.wait()

        try:
            await asyncio.wait_for(settled(), timeout if self.emu.realtime else None)
        except TimeoutError:
            self.emu._end_call(inbound, "no-answer", by="emulator")
            return "no-answer"
        if inbound.status == "in-progress":
            return ANSWERED
        return inbound.status if inbound.status != "completed" else "failed"

    async def _pace_unless_over(self, leg: Call, seconds: float) -> None:
        if self.emu.realtime and seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leg.over.wait(), seconds)

    async def _connect(self, call: Call, verb: Dial, leg: Call, number: Number, doc_url: str | None) -> Outcome:
        """The leg answered: whisper (if any), then bridge until one side hangs up."""
        emu = self.emu
        emu._answer(leg)
        await emu._status_event(leg, "answered")
        if number.send_digits:
            leg.agent_digits.append(number.send_digits.replace("w", "").replace("W", ""))
        if number.url and not await self._whisper(leg, number, doc_url):
            self._finish(leg, "completed")
            return Outcome("completed", leg, False, leg.duration)
        if leg.ended:
            return Outcome("completed", leg, False, leg.duration)
        if call.status == "ringing":  # answerOnBridge: the caller is answered with the bridge
            emu._answer(call)
        call.bridged_with, leg.bridged_with = leg, call
        try:
            if leg.party.answer == "voicemail" and leg.looped_into is None:
                emu._spawn(self._voicemail(leg), f"twilio-voicemail-{leg.sid}")
            else:
                leg.start_script()
            waits = [call.over.wait(), leg.over.wait(), leg.detached.wait()]
            if leg.looped_into is not None:
                waits.append(leg.looped_into.over.wait())
            tasks = [asyncio.ensure_future(w) for w in waits]
            try:
                limit = verb.time_limit if self.emu.realtime else None  # <Dial timeLimit>, 4 h by default
                await asyncio.wait(tasks, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
        finally:
            call.bridged_with = leg.bridged_with = None
        self._finish(leg, "completed")
        return Outcome("completed", leg, True, leg.duration)

    async def _whisper(self, leg: Call, number: Number, doc_url: str | None) -> bool:
        """Run the ``<Number url>`` TwiML on the called party's end: True if it ran to its end."""
        emu = self.emu
        url = emu._interpreter._resolve(leg, number.url, doc_url)
        run = asyncio.ensure_future(emu._interpreter.run(leg, Source(url=url, method=number.method)))
        leg.exec_task = run  # a hang-up (Party.whisper="hang_up" among them) cancels it
        with contextlib.suppress(asyncio.CancelledError):
            await run
        leg.exec_task = None
        return bool(run.done() and not run.cancelled() and run.result()) and not leg.ended

    async def _voicemail(self, leg: Call) -> None:
        """A voicemail box answered: its greeting and the tone; then it records until hung up."""
        await leg.say(leg.party.greeting, pause_ms=300)
        other = leg.bridged_with
        if other is not None:
            other.hear_say(BEEP)

    def _finish(self, leg: Call, status: str) -> None:
        """End a leg (idempotent) and send its final status callback."""
        if leg.ended_event.is_set() or leg.finishing or leg.detached.is_set():
            return  # over already, or redirected by REST and running TwiML of its own
        leg.finishing = True
        leg.finish(status)
        if leg.ended_by is None:
            leg.ended_by = "app"
        if leg.script_task is not None and not leg.script_task.done():
            leg.script_task.cancel()
        if leg.looped_into is not None and not leg.looped_into.ended:
            self.emu._end_call(leg.looped_into, "completed", by="emulator")

        async def callback() -> None:
            await self.emu._status_event(leg, "completed")
            leg.ended_event.set()

        self.emu._spawn(callback(), f"twilio-leg-end-{leg.sid}")


def _worst(statuses: list[str]) -> str:
    """With several numbers and none answering, the status Twilio reports for the dial."""
    for status in ("no-answer", "busy", "failed", "canceled"):
        if status in statuses:
            return status
    return "no-answer"
