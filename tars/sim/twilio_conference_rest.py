"""The Conferences and Participants REST resources of the Twilio emulator.

As twilio-python calls them (``client.conferences.list(friendly_name=, status=)``,
``client.conferences(sid).update(status="completed")``, ``client.conferences(sid or
name).participants.create(from_=, to=, …)``, ``.participants.list()``,
``.participants(call_sid or label).update(hold=, muted=, …)`` and ``.delete()``), with
the fields and rules of https://www.twilio.com/docs/voice/api/conference-resource and
https://www.twilio.com/docs/voice/api/conference-participant-resource:

* a participant create dials ``To`` from ``From`` (an outbound-api call, ``Timeout``
  default 60 s) and puts it in the room when answered; the room is named by SID or by
  friendly name, and a name with no live room opens one;
* ``Status`` on a conference may only be ``completed`` (ends it for everyone);
* deleting a participant kicks it: its call goes on with the TwiML after its
  ``<Dial>``; an ended room or an unknown participant is a 404 (20404).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from aiohttp import web

from tars.sim.twilio_conference import Participant, Room
from tars.sim.twilio_rest import API_VERSION, E164, RestApi, RestError, rfc2822

PARTICIPANT_CREATE_PARAMS = frozenset(
    {
        "From", "To", "Label", "StatusCallback", "StatusCallbackMethod", "StatusCallbackEvent",
        "Timeout", "Muted", "Beep", "StartConferenceOnEnter", "EndConferenceOnExit", "WaitUrl",
        "WaitMethod", "EarlyMedia", "MaxParticipants", "ConferenceStatusCallback",
        "ConferenceStatusCallbackMethod", "ConferenceStatusCallbackEvent", "CallerId", "TimeLimit",
    }
)  # fmt: skip
PARTICIPANT_UPDATE_PARAMS = frozenset(
    {"Muted", "Hold", "HoldUrl", "HoldMethod", "AnnounceUrl", "AnnounceMethod", "WaitUrl", "WaitMethod",
     "BeepOnExit", "EndConferenceOnExit", "Coaching", "CallSidToCoach"}
)  # fmt: skip
BOOLEANS = {"true": True, "false": False}


def conference_resource(room: Room) -> dict[str, Any]:
    """Twilio's conference JSON (what ``ConferenceInstance`` reads)."""
    uri = f"/{API_VERSION}/Accounts/{room.account_sid}/Conferences/{room.sid}.json"
    sub = uri.removesuffix(".json")
    return {
        "sid": room.sid, "account_sid": room.account_sid, "friendly_name": room.friendly_name,
        "status": room.status, "region": "us1", "api_version": API_VERSION,
        "date_created": rfc2822(room.created_at), "date_updated": rfc2822(room.updated_at),
        "reason_conference_ended": room.reason_ended, "call_sid_ending_conference": room.call_sid_ending,
        "uri": uri,
        "subresource_uris": {"participants": f"{sub}/Participants.json", "recordings": f"{sub}/Recordings.json"},
    }  # fmt: skip


def participant_resource(room: Room, p: Participant) -> dict[str, Any]:
    """Twilio's participant JSON (what ``ParticipantInstance`` reads)."""
    uri = f"/{API_VERSION}/Accounts/{room.account_sid}/Conferences/{room.sid}/Participants/{p.call.sid}.json"
    return {
        "account_sid": room.account_sid, "call_sid": p.call.sid, "conference_sid": room.sid,
        "label": p.label, "status": p.status, "muted": p.muted, "hold": p.hold, "coaching": False,
        "call_sid_to_coach": None, "end_conference_on_exit": p.end_conference_on_exit,
        "start_conference_on_enter": p.start_conference_on_enter, "queue_time": None,
        "date_created": rfc2822(p.created_at), "date_updated": rfc2822(room.updated_at), "uri": uri,
    }  # fmt: skip


def _bool(one: dict[str, str], name: str) -> bool | None:
    if name not in one:
        return None
    value = BOOLEANS.get(one[name].lower())
    if value is None:
        raise RestError(400, 20001, f"{name} must be true or false, not {one[name]!r}")
    return value


class ConferenceApi(RestApi):
    """aiohttp handlers for ``Conferences`` and their ``Participants``."""

    def routes(self) -> list[web.RouteDef]:
        base = f"/{API_VERSION}/Accounts/{{account}}/Conferences"
        one = f"{base}/{{conference}}/Participants/{{participant}}.json"
        return [
            web.get(f"{base}.json", self._wrap(self.list_conferences)),
            web.get(f"{base}/{{conference}}.json", self._wrap(self.fetch_conference)),
            web.post(f"{base}/{{conference}}.json", self._wrap(self.update_conference)),
            web.get(f"{base}/{{conference}}/Participants.json", self._wrap(self.list_participants)),
            web.post(f"{base}/{{conference}}/Participants.json", self._wrap(self.create_participant)),
            web.get(one, self._wrap(self.fetch_participant)),
            web.post(one, self._wrap(self.update_participant)),
            web.delete(one, self._wrap(self.delete_participant)),
        ]

    def _room(self, request: web.Request) -> Room:
        room = self.emu.conferences.rooms.get(request.match_info["conference"])
        if room is None:
            raise RestError(404, 20404, f"The requested resource {request.path} was not found")
        return room

    def _participant(self, request: web.Request) -> tuple[Room, Participant]:
        room = self._room(request)
        participant = room.find(request.match_info["participant"])
        if participant is None:
            raise RestError(404, 20404, f"The requested resource {request.path} was not found")
        return room, participant

    @staticmethod
    def _page(key: str, items: list[dict[str, Any]], request: web.Request) -> web.Response:
        uri = request.path_qs
        return web.json_response(
            {key: items, "page": 0, "page_size": 50, "start": 0, "end": len(items), "uri": uri,
             "first_page_uri": uri, "next_page_uri": None, "previous_page_uri": None}
        )  # fmt: skip

    async def list_conferences(self, request: web.Request) -> web.Response:
        rooms = list(self.emu.conferences.rooms.values())
        if "FriendlyName" in request.query:
            rooms = [r for r in rooms if r.friendly_name == request.query["FriendlyName"]]
        if "Status" in request.query:
            rooms = [r for r in rooms if r.status == request.query["Status"]]
        return self._page("conferences", [conference_resource(r) for r in rooms], request)

    async def fetch_conference(self, request: web.Request) -> web.Response:
        return web.json_response(conference_resource(self._room(request)))

    async def update_conference(self, request: web.Request) -> web.Response:
        room = self._room(request)
        form = await self._form(request, frozenset({"Status", "AnnounceUrl", "AnnounceMethod"}))
        status = form.get("Status", [None])[-1]
        if status is not None and status != "completed":
            raise RestError(400, 20001, f"Status must be completed, not {status!r}")
        if status == "completed":
            await self.emu.conferences.end(room, "conference-ended-via-api")
        return web.json_response(conference_resource(room))

    async def list_participants(self, request: web.Request) -> web.Response:
        room = self._room(request)
        items = [participant_resource(room, p) for p in room.participants.values()]
        for name in ("Muted", "Hold"):
            if name in request.query:
                items = [i for i in items if str(i[name.lower()]).lower() == request.query[name].lower()]
        return self._page("participants", items, request)

    async def fetch_participant(self, request: web.Request) -> web.Response:
        return web.json_response(participant_resource(*self._participant(request)))

    async def create_participant(self, request: web.Request) -> web.Response:
        form = await self._form(request, PARTICIPANT_CREATE_PARAMS)
        one = {k: v[-1] for k, v in form.items()}
        to, from_ = one.get("To", ""), one.get("From", "")
        if not to or not E164.match(to):
            raise RestError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_ or not E164.match(from_):
            raise RestError(400, 21212, f"The 'From' number {from_} is not a valid phone number.")
        if self.emu.numbers is not None and from_ not in self.emu.numbers:
            raise RestError(400, 21210, f"The source phone number provided, {from_}, is not yet verified.")
        for name in ("Muted", "StartConferenceOnEnter", "EndConferenceOnExit", "EarlyMedia"):
            _bool(one, name)
        conferences = self.emu.conferences
        key = request.match_info["conference"]
        room = conferences.rooms.get(key) if key.startswith("CF") else conferences.open(key)
        if room is None or room.status == "completed":
            raise RestError(404, 20404, f"The requested resource {request.path} was not found")
        if one.get("ConferenceStatusCallback") and room.status_callback is None:
            room.status_callback = one["ConferenceStatusCallback"]
            room.status_callback_method = one.get("ConferenceStatusCallbackMethod", "POST")
            events = form.get("ConferenceStatusCallbackEvent", [])
            room.status_callback_events = tuple(e for v in events for e in v.split()) or ("start", "end")
        call_form = {"To": to, "From": one.get("CallerId", from_), "Twiml": _join_twiml(room, one)}
        call_form["Timeout"] = one.get("Timeout", "60")
        for name in ("StatusCallback", "StatusCallbackMethod"):
            if name in one:
                call_form[name] = one[name]
        events = [e for v in form.get("StatusCallbackEvent", []) for e in v.split()]
        call = self.emu._place_call(call_form, events)
        participant = Participant(call, room.sid, one.get("Label"), status="queued")
        participant.muted = bool(_bool(one, "Muted"))
        participant.end_conference_on_exit = bool(_bool(one, "EndConferenceOnExit"))
        room.participants[call.sid] = participant
        self.emu._spawn(self._unanswered(room, participant), f"twilio-participant-{call.sid}")
        return web.json_response(participant_resource(room, participant), status=201)

    async def _unanswered(self, room: Room, participant: Participant) -> None:
        """A dialed-out participant whose call never joined drops off the list."""
        await participant.call.over.wait()
        if participant.status != "connected" and room.participants.get(participant.call.sid) is participant:
            del room.participants[participant.call.sid]
            participant.status = "failed" if participant.call.status == "failed" else "complete"
            room.past.append(participant)

    async def update_participant(self, request: web.Request) -> web.Response:
        room, participant = self._participant(request)
        form = await self._form(request, PARTICIPANT_UPDATE_PARAMS)
        one = {k: v[-1] for k, v in form.items()}
        conferences = self.emu.conferences
        hold, muted, end = _bool(one, "Hold"), _bool(one, "Muted"), _bool(one, "EndConferenceOnExit")
        if muted is not None:
            await conferences.set_muted(room, participant, muted)
        if hold is not None:
            await conferences.set_hold(room, participant, hold, one.get("HoldUrl"), one.get("HoldMethod", "GET"))
        if end is not None:
            participant.end_conference_on_exit = end
        return web.json_response(participant_resource(room, participant))

    async def delete_participant(self, request: web.Request) -> web.Response:
        room, participant = self._participant(request)
        if participant.status != "connected":
            self.emu._end_call(participant.call, "canceled", by="rest")
        await self.emu.conferences.leave(room, participant, reason="last-participant-kicked")
        return web.Response(status=204)


def _join_twiml(room: Room, one: dict[str, str]) -> str:
    """The TwiML a dialed-out participant runs once answered: into the room, as asked."""
    response = ET.Element("Response")
    dial = ET.SubElement(response, "Dial")
    attrs = {
        "Muted": "muted", "Beep": "beep", "StartConferenceOnEnter": "startConferenceOnEnter",
        "EndConferenceOnExit": "endConferenceOnExit", "WaitUrl": "waitUrl", "WaitMethod": "waitMethod",
        "Label": "participantLabel",
    }  # fmt: skip
    noun = ET.SubElement(dial, "Conference", {attr: one[name] for name, attr in attrs.items() if name in one})
    noun.text = room.friendly_name
    return ET.tostring(response, encoding="unicode")
