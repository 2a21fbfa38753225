"""Conference rooms in the Twilio emulator: who is in, who waits, who holds, and when it ends.

What Twilio documents (https://www.twilio.com/docs/voice/twiml/conference and the
Conference/Participant resources, https://www.twilio.com/docs/voice/api/conference-resource,
https://www.twilio.com/docs/voice/api/conference-participant-resource), and this does:

* A room is named per account; the first ``<Dial><Conference>name`` (or a REST
  participant create on a name) opens it (``init``). It starts (``in-progress``,
  event ``conference-start``) once two participants are in and one of them has
  ``startConferenceOnEnter`` (default true); until then each participant hears the
  ``waitUrl``: Twilio's hold music when absent, silence when ``waitUrl=""``, an audio
  file played as is, or TwiML fetched from the app (signed, ``waitMethod``; only
  ``<Play>``, ``<Say>``, ``<Pause>`` and ``<Redirect>`` allowed there, else error 13238).
* A participant leaves when its call hangs up, is redirected by REST (``calls(sid)
  .update(twiml=...)``), or is kicked (REST delete); its TwiML then goes on after its
  ``<Dial>`` (or with the dial's ``action``, ``DialCallStatus=answered``). When a
  participant with ``endConferenceOnExit`` leaves, or the last one does, the room
  ends (``completed``, ``ReasonConferenceEnded``) and everyone left drops out of it.
* ``hold`` (REST update) plays ``holdUrl`` to the participant (default: Twilio's hold
  music) and takes them out of the mix; ``muted`` stops them being heard.
* ``statusCallback`` (from the participant that opened the room) gets the
  ``statusCallbackEvent`` events (``start end join leave mute hold``; start and end by
  default), each with ``ConferenceSid``, ``FriendlyName``, ``StatusCallbackEvent``
  (``conference-start``, ``participant-join`` …), ``SequenceNumber`` and, for a
  participant, ``CallSid``, ``Muted``, ``Hold``, ``EndConferenceOnExit`` ….
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tars.sim import twiml
from tars.sim.twilio_call import BEEP, Call
from tars.sim.twilio_rest import new_sid, rfc2822
from tars.sim.twiml_dial import DEFAULT_WAIT_URL, Conference

if TYPE_CHECKING:
    from tars.sim.twilio import TwilioEmulator

TWILIO_HOLD_MUSIC = "twilio hold music"
SILENCE = "silence"
AUDIO_SUFFIXES = (".mp3", ".wav", ".aiff", ".aif", ".gsm", ".ulaw")
WAIT_VERBS = (twiml.Play, twiml.Say, twiml.Pause, twiml.Redirect)
EVENT_FOR = {
    "conference-start": "start", "conference-end": "end",
    "participant-join": "join", "participant-leave": "leave",
    "participant-mute": "mute", "participant-unmute": "mute",
    "participant-hold": "hold", "participant-unhold": "hold",
    "participant-modify": "modify",
}  # fmt: skip


@dataclass
class Participant:
    """One call in a room (or dialing out to join it)."""

    call: Call
    conference_sid: str
    label: str | None = None
    status: str = "connected"  # queued | connecting | ringing | connected | complete | failed
    muted: bool = False
    hold: bool = False
    beep: str = "true"
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    wait_url: str | None = None
    wait_method: str = "POST"
    created_at: float = field(default_factory=time.time)
    left: asyncio.Event = field(default_factory=asyncio.Event)  # kicked, or the room ended


@dataclass
class Room:
    """One conference: its resource fields, participants, and every event it had."""

    sid: str
    account_sid: str
    friendly_name: str
    status: str = "init"  # init | in-progress | completed
    participants: dict[str, Participant] = field(default_factory=dict)  # call sid → participant
    past: list[Participant] = field(default_factory=list)  # who left, in order
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ("start", "end")
    events: list[dict[str, str]] = field(default_factory=list)  # every event, sent or not
    reason_ended: str | None = None
    call_sid_ending: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def connected(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.status == "connected"]

    def find(self, sid_or_label: str) -> Participant | None:
        """A participant by call SID or label (the REST API takes either)."""
        if sid_or_label in self.participants:
            return self.participants[sid_or_label]
        return next((p for p in self.participants.values() if p.label == sid_or_label), None)


class Conferences:
    """Every conference room of one emulator, and the rules above."""

    def __init__(self, emu: TwilioEmulator) -> None:
        self.emu = emu
        self.rooms: dict[str, Room] = {}

    # --- looking rooms up -------------------------------------------------------------

    def live(self, name: str) -> Room | None:
        """The room called ``name`` that has not ended, if any."""
        return next((r for r in self.rooms.values() if r.friendly_name == name and r.status != "completed"), None)

    def find(self, sid_or_name: str) -> Room | None:
        """A room by SID, or a live one by friendly name (the participants API takes either)."""
        return self.rooms.get(sid_or_name) or self.live(sid_or_name)

    def open(self, name: str, noun: Conference | None = None) -> Room:
        """The live room called ``name``, opened (``init``) if there is none."""
        room = self.live(name)
        if room is None:
            room = Room(new_sid("CF"), self.emu.account_sid, name)
            self.rooms[room.sid] = room
        if noun is not None and noun.status_callback and room.status_callback is None:
            room.status_callback = noun.status_callback
            room.status_callback_method = noun.status_callback_method
            room.status_callback_events = noun.status_callback_events or ("start", "end")
        return room

    def view(self) -> list[dict[str, Any]]:
        """Every room with who is in it: what a test asserts ("caller and owner, TARS gone")."""
        return [
            {
                "sid": room.sid,
                "name": room.friendly_name,
                "status": room.status,
                "participants": [
                    {
                        "call_sid": p.call.sid,
                        "number": _other_end(p.call),
                        "label": p.label,
                        "status": p.status,
                        "hold": p.hold,
                        "muted": p.muted,
                    }
                    for p in room.participants.values()
                ],
                "left": [p.call.sid for p in room.past],
                "reason_ended": room.reason_ended,
            }
            for room in self.rooms.values()
        ]

    def listeners(self, call: Call) -> list[Call]:
        """Who hears ``call`` in its room: nobody while it is muted or held; never the held."""
        room = self.live(call.conference or "")
        speaker = room.participants.get(call.sid) if room is not None else None
        if room is None or speaker is None or speaker.muted or speaker.hold:
            return []
        return [p.call for p in room.connected if p is not speaker and not p.hold]

    # --- joining and leaving ---------------------------------------------------------

    async def join(self, call: Call, noun: Conference, doc_url: str | None) -> int:
        """``call`` is in the room until it leaves; return the seconds it spent there."""
        room = self.open(noun.name, noun)
        participant = room.participants.get(call.sid)  # dialed out by REST: already listed
        if participant is None:
            participant = Participant(call, room.sid, noun.label)
            room.participants[call.sid] = participant
        participant.status = "connected"
        participant.muted, participant.beep = noun.muted, noun.beep
        participant.start_conference_on_enter = noun.start_conference_on_enter
        participant.end_conference_on_exit = noun.end_conference_on_exit
        participant.wait_url, participant.wait_method = noun.wait_url, noun.wait_method
        call.conference = room.friendly_name
        joined = time.time()
        await self._event(room, "participant-join", participant)
        if participant.beep in {"true", "onEnter"}:
            for other in room.connected:
                if other is not participant:
                    other.call.hear_say(BEEP)
        if (
            room.status == "init"
            and any(p.start_conference_on_enter for p in room.connected)
            and len(room.connected) >= 2
        ):
            room.status = "in-progress"
            await self._event(room, "conference-start", None)
        elif room.status == "init":
            await self.wait_audio(call, participant.wait_url, participant.wait_method, doc_url)
        call.start_script()  # a dialed-out party's script runs once they are in the room
        over = asyncio.ensure_future(call.over.wait())
        left = asyncio.ensure_future(participant.left.wait())
        try:
            await asyncio.wait({over, left}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            over.cancel()
            left.cancel()
            self.emu._spawn(self.leave(room, participant), f"twilio-conference-leave-{call.sid}")
        return int(time.time() - joined)

    async def leave(self, room: Room, participant: Participant, reason: str | None = None) -> None:
        """``participant`` is out (hung up, redirected, kicked); the room may end with them."""
        if room.participants.get(participant.call.sid) is not participant:
            return
        del room.participants[participant.call.sid]
        was_connected = participant.status == "connected"
        participant.status = "complete"
        participant.call.conference = None
        participant.left.set()
        room.past.append(participant)
        room.updated_at = time.time()
        if not was_connected or room.status == "completed":
            return
        await self._event(room, "participant-leave", participant)
        if participant.beep in {"true", "onExit"}:
            for other in room.connected:
                other.call.hear_say(BEEP)
        if participant.end_conference_on_exit:
            await self.end(room, "participant-with-end-conference-on-exit-left", participant.call.sid)
        elif not room.connected:
            await self.end(room, reason or "last-participant-left", participant.call.sid)

    async def end(self, room: Room, reason: str, call_sid: str | None = None) -> None:
        """The room is over: everyone still in drops out and goes on with their TwiML."""
        if room.status == "completed":
            return
        room.status = "completed"
        room.reason_ended, room.call_sid_ending = reason, call_sid
        room.updated_at = time.time()
        for participant in list(room.participants.values()):
            if participant.status != "connected":  # still dialing out: that call is hung up
                self.emu._end_call(participant.call, "completed", by="emulator")
            del room.participants[participant.call.sid]
            participant.status = "complete"
            participant.call.conference = None
            participant.left.set()
            room.past.append(participant)
        await self._event(
            room, "conference-end", None, ReasonConferenceEnded=reason, CallSidEndingConference=call_sid or ""
        )

    async def wait_audio(self, call: Call, url: str | None, method: str, doc_url: str | None) -> None:
        """What a waiting (or held) participant hears; recorded in ``call.hold_audio``."""
        if url is None or url == DEFAULT_WAIT_URL:
            call.hold_audio.append(TWILIO_HOLD_MUSIC)  # twimlets.com: not reachable from here
            return
        if url == "":
            call.hold_audio.append(SILENCE)
            return
        target = self.emu._interpreter._resolve(call, url, doc_url)
        if urlsplit(target).path.lower().endswith(AUDIO_SUFFIXES):
            call.hold_audio.append(target)
            return
        body = await self.emu._post(call, "wait", target, call.webhook_params(), method)
        if body is None:
            return
        try:
            verbs = twiml.parse(body)
        except twiml.TwimlError as exc:
            self.emu._call_error(call, exc.code, exc.message, f"waitUrl {target}")
            return
        for verb in verbs:
            if not isinstance(verb, WAIT_VERBS):
                # https://www.twilio.com/docs/api/errors/13238: Say, Play, Pause and Redirect only
                message = (
                    f"<{type(verb).__name__}> is not allowed in waitUrl/holdUrl TwiML (Play, Say, Pause, Redirect)"
                )
                self.emu._call_error(call, 13238, message, f"waitUrl {target}")
                return
            if isinstance(verb, twiml.Say):
                call.hear_say(verb.text)
                call.hold_audio.append(f"say: {verb.text}")
            elif isinstance(verb, twiml.Play) and verb.url:
                call.hold_audio.append(verb.url)

    async def set_hold(self, room: Room, participant: Participant, hold: bool, url: str | None, method: str) -> None:
        """REST ``Hold``: out of the mix, hearing ``HoldUrl`` (Twilio's music by default)."""
        if participant.hold == hold:
            return
        participant.hold = hold
        await self._event(room, "participant-hold" if hold else "participant-unhold", participant)
        if hold:
            await self.wait_audio(participant.call, url, method, None)

    async def set_muted(self, room: Room, participant: Participant, muted: bool) -> None:
        if participant.muted != muted:
            participant.muted = muted
            await self._event(room, "participant-mute" if muted else "participant-unmute", participant)

    async def _event(self, room: Room, event: str, participant: Participant | None, **extra: str) -> None:
        params = {
            "AccountSid": room.account_sid,
            "ConferenceSid": room.sid,
            "FriendlyName": room.friendly_name,
            "StatusCallbackEvent": event,
            "SequenceNumber": str(len(room.events)),
            "Timestamp": rfc2822(time.time()) or "",
        } | extra
        if participant is not None:
            params |= {
                "CallSid": participant.call.sid,
                "Muted": str(participant.muted).lower(),
                "Hold": str(participant.hold).lower(),
                "Coaching": "false",
                "EndConferenceOnExit": str(participant.end_conference_on_exit).lower(),
                "StartConferenceOnEnter": str(participant.start_conference_on_enter).lower(),
            }
            if participant.label:
                params["ParticipantLabel"] = participant.label
        room.events.append(params)
        if room.status_callback and EVENT_FOR.get(event) in room.status_callback_events:
            call = participant.call if participant is not None else None
            await self.emu._post(call, "conference-status", room.status_callback, params, room.status_callback_method)


def _other_end(call: Call) -> str:
    """The phone number at the far end of ``call`` (the caller for inbound, the callee otherwise)."""
    return call.from_ if call.direction == "inbound" else call.to
