"""Putting a caller through: Helen (family) asks for Alex and is put through, or comes back to
TARS when Alex cannot take it; strangers are never put through. The real server between the
Twilio and Gemini emulators; the owner's phone is an emulated party."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tars.emulators.gemini.emulator import CallTool, Say, ScriptedBrain
from tars.emulators.twilio.emulator import Party
from tars.telephony import transfers
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then
from tests.waiting import eventually

HELEN = "+447700900456"
STRANGER = "+15005550006"
ASK = "Could you put me through to Alex? It's about Saturday's dinner."
PUT_THROUGH = CallTool("transfer_call", {"target": "owner", "about": "Saturday's dinner", "caller_name": "Helen"})


def brains(*scripts: ScriptedBrain) -> Any:
    """One scripted model per media stream, in order (a call back from a transfer is a new stream)."""
    queue: Iterator[ScriptedBrain] = iter(scripts)
    return lambda: next(queue)


def with_helen(line: Line, relationship: str = "family") -> None:
    from tars.store.contacts import Rules, add_contact

    with line.db() as db, db.session() as s:
        add_contact(s, Rules.of(line.project), name="Helen Price", phone=HELEN, relationship=relationship)


def stored(line: Line, sid: str) -> tuple[Any, list[Any]]:
    from tars.store.calls import call_details
    from tars.store.transfers import transfers_of

    with line.db() as db, db.session() as s:
        details = call_details(s, sid)
        return details, transfers_of(s, details.call.id)


async def asks_and_hears_no(line: Line, from_: str, asked: str = ASK) -> tuple[Any, list[str], list[Any]]:
    """The caller rings, asks ``asked``, hears TARS's answer and hangs up: the call, the tools
    the model was offered, and the legs Twilio dialled (none, if TARS said no)."""
    call = await line.call_in(from_=from_)
    await call.wait_for_agent_utterance(timeout=20)
    await call.say(asked)
    await call.wait_for_agent_utterance(timeout=20)
    await call.hang_up()
    await line.settle()
    return call, line.gemini.sessions[0].tool_names, call.legs


def message_taken() -> ScriptedBrain:
    """The model back on the line after a transfer nobody took: it says so, takes a message, ends."""
    return ScriptedBrain(
        [
            Say("I'm sorry, Alex can't take the call right now. Shall I take a message?"),
            CallTool("take_message", {"message": "Call Helen back about Saturday's dinner", "caller_name": "Helen"}),
            [Say("I'll make sure Alex gets it. Goodbye."), CallTool("end_call", {"reason": "message taken"})],
        ]
    )


def cold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return make_project(tmp_path / "p", monkeypatch, [("tars.yaml", "      kind: warm\n", "      kind: cold\n")])


async def test_cold_transfer_to_a_busy_owner_comes_back_to_tars_which_takes_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = cold(tmp_path, monkeypatch)
    first = greet_then(PUT_THROUGH, Say("Putting you through to Alex now."))
    second = message_taken()
    async with Line(project, brains(first, second)) as line:
        with_helen(line)
        line.twilio.set_party(project.owner.phone, Party(answer="busy"))
        call = await line.call_in(from_=HELEN)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say(ASK)
        assert "Putting you through" in (await call.wait_for_agent_utterance(timeout=20)).text
        assert "can't take the call" in (await call.wait_for_agent_utterance(timeout=30)).text
        await call.say("Yes, tell him to call me back about Saturday.")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        texts = [m.body for m in line.twilio.messages if m.to == project.owner.phone]
        [leg] = call.legs
        back = line.gemini.sessions[1]

    assert leg.to == project.owner.phone and leg.from_ == HELEN and leg.status == "busy"
    details, [transfer] = stored(line, call.sid)
    assert (transfer.kind, transfer.target, transfer.result) == ("cold", "owner", "busy")
    assert transfer.requested_by == "Helen" and transfer.about == "Saturday's dinner"
    assert any("Call Helen back about Saturday's dinner" in t for t in texts)
    said = [line.text for line in details.transcript if line.speaker == "caller"]
    assert (
        said[0] == "Could you put me through to Alex?" and said[-1] == "Yes, tell him to call me back about Saturday."
    )
    # Back on a fresh stream, the model knows what happened and what was said before.
    assert "the line was busy" in back.history[0]["text"]
    assert (
        "The call so far" in back.system_instruction and "Could you put me through to Alex?" in back.system_instruction
    )
    assert "busy" in details.call.summary and "cold transfer to Alex Morgan: busy" in details.call.summary


async def test_cold_transfer_the_owner_answers_and_tars_is_gone_then_calls_show_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tars.cli.app import app

    project = cold(tmp_path, monkeypatch)
    first = greet_then(PUT_THROUGH, Say("Putting you through to Alex now."))
    async with Line(project, brains(first)) as line:
        with_helen(line)
        owner = Party(script=[{"say": "Hello Helen, Alex here."}, {"hang_up": True}])
        line.twilio.set_party(project.owner.phone, owner)
        call = await line.call_in(from_=HELEN)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say(ASK)
        assert "Putting you through" in (await call.wait_for_agent_utterance(timeout=20)).text
        assert (await call.wait_for_agent_utterance(timeout=30)).text == "Hello Helen, Alex here."
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        [leg] = call.legs
        streams = len(line.gemini.sessions)

    assert leg.status == "completed" and leg.from_ == HELEN and streams == 1  # TARS never came back
    details, [transfer] = stored(line, call.sid)
    assert (transfer.kind, transfer.result) == ("cold", "completed") and transfer.talk_seconds is not None
    assert details.call.status == "completed" and details.call.ended_at is not None
    assert "cold transfer to Alex Morgan: completed" in details.call.summary
    shown = CliRunner().invoke(app, ["--project", str(project.root), "calls", "show", str(details.call.id)])
    assert shown.exit_code == 0, shown.output
    assert "Transfers" in shown.output and "cold transfer to Alex Morgan: completed" in shown.output
    as_json = CliRunner().invoke(app, ["--project", str(project.root), "calls", "show", "--json", call.sid])
    assert '"result": "completed"' in as_json.output


async def test_an_unknown_caller_is_never_offered_a_transfer_and_a_forged_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(PUT_THROUGH, [Say("I can't put you through, but I can take a message.")])
    async with Line(project, lambda: brain) as line:
        call, offered, legs = await asks_and_hears_no(line, STRANGER)

    assert "transfer_call" not in offered and legs == []
    assert brain.events[2].response == {"refused": "'transfer_call' is not available to the unknown role on this call"}
    details, transfers = stored(line, call.sid)
    assert [(t.tool, t.allowed) for t in details.tools] == [("transfer_call", False)]
    assert transfers == []  # refused at the gate: nothing was dialled


async def test_a_contact_who_is_not_family_is_refused_out_of_the_owners_hours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    project = make_project(tmp_path / "p", monkeypatch)
    brain = greet_then(PUT_THROUGH, Say("Alex isn't taking calls now. Can I take a message?"))
    async with Line(project, lambda: brain) as line:
        with_helen(line, relationship="colleague")
        sunday = dt.datetime(2026, 12, 6, 11, 0, tzinfo=dt.UTC)
        assert line.server is not None
        line.server.server.clock = lambda: sunday
        call, offered, legs = await asks_and_hears_no(line, HELEN)

    assert "transfer_call" in offered and legs == []
    reason = "Alex Morgan takes calls only mon-fri 09:00-18:00; offer to take a message"
    assert brain.events[2].response == {"error": reason}
    details, [transfer] = stored(line, call.sid)
    assert (transfer.result, transfer.reason) == ("refused", reason)
    [tool] = details.tools
    assert tool.tool == "transfer_call" and reason in (tool.reason or "")


async def test_a_number_the_caller_dictates_is_refused_with_the_targets_there_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = cold(tmp_path, monkeypatch)
    dictated = CallTool("transfer_call", {"target": "+15551234567", "about": "a refund"})
    brain = greet_then(dictated, Say("I can only put you through to Alex. Shall I take a message?"))
    async with Line(project, lambda: brain) as line:
        with_helen(line)
        call, _offered, legs = await asks_and_hears_no(line, HELEN, "Put me through to +1 555 123 4567.")

    reason = (
        "'+15551234567' is not someone this caller can be put through to (only: Alex Morgan); offer to take a message"
    )
    assert legs == [] and brain.events[2].response == {"error": reason}
    _details, [transfer] = stored(line, call.sid)
    assert (transfer.target, transfer.result, transfer.reason) == ("+15551234567", "refused", reason)


async def helen_asks_to_be_put_through(line: Line) -> Any:
    """Helen rings, is greeted, asks for Alex and is told to hold; returns her call."""
    call = await line.call_in(from_=HELEN)
    await call.wait_for_agent_utterance(timeout=20)
    await call.say(ASK)
    assert "hold" in (await call.wait_for_agent_utterance(timeout=20)).text
    return call


HOLD_ON = Say("Please hold while I reach Alex.")


async def test_warm_transfer_the_owner_hears_the_brief_says_yes_and_is_in_one_conference_with_helen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, brains(greet_then(PUT_THROUGH, HOLD_ON))) as line:
        with_helen(line)
        line.twilio.set_party(project.owner.phone, Party(gather=["1"], script=[{"say": "Hi Helen!"}]))
        call = await helen_asks_to_be_put_through(line)
        owner = await line.twilio.next_call(timeout=30)
        while owner.to != project.owner.phone:
            owner = await line.twilio.next_call(timeout=30)
        heard = [(await call.wait_for_agent_utterance(timeout=30)).text]
        while heard[-1] != "Hi Helen!":  # the hold message (the waitUrl) until Alex says yes
            heard.append((await call.wait_for_agent_utterance(timeout=30)).text)
        assert transfers.HOLD_TEXT in heard
        [room] = [r for r in line.twilio.conferences.rooms.values() if r.friendly_name.startswith("tars-transfer-")]
        together = sorted(p.call.sid for p in room.connected)
        tars_gone = call.stream is None and len(line.gemini.sessions) == 1
        whisper = [u.text for u in owner.heard]
        await owner.hang_up()  # Alex ends the call: endConferenceOnExit takes Helen's leg down too
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()

    assert together == sorted([call.sid, owner.sid]) and tars_gone
    assert any("Press 1 or say yes to take it." in said for said in whisper)
    details, [transfer] = stored(line, call.sid)
    assert (transfer.kind, transfer.result) == ("warm", "completed") and transfer.answered_at is not None
    assert transfer.brief and transfer.brief.endswith("Press 1 or say yes to take it.")
    assert "warm transfer to Alex Morgan: completed" in details.call.summary


@pytest.mark.parametrize(
    ("owner", "result", "why"),
    [
        (Party(gather=[]), "declined", "could not take it now"),  # hears the brief, presses nothing
        (Party(answer="no-answer"), "no-answer", "nobody answered"),
    ],
    ids=["declines", "does-not-answer"],
)
async def test_warm_transfer_the_owner_does_not_take_it_and_helen_leaves_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner: Party, result: str, why: str
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, brains(greet_then(PUT_THROUGH, HOLD_ON), message_taken())) as line:
        with_helen(line)
        line.twilio.set_party(project.owner.phone, owner)
        call = await helen_asks_to_be_put_through(line)
        heard = await call.wait_for_agent_utterance(timeout=60)
        while "can't take the call" not in heard.text:  # the hold message first
            heard = await call.wait_for_agent_utterance(timeout=60)
        await call.say("Yes, tell him to call me back about Saturday.")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        texts = [m.body for m in line.twilio.messages if m.to == project.owner.phone]
        back = line.gemini.sessions[1]

    _details, [transfer] = stored(line, call.sid)
    assert (transfer.kind, transfer.result) == ("warm", result)
    assert why in back.history[0]["text"]
    assert any("Call Helen back about Saturday's dinner" in t for t in texts)


async def test_tars_calls_join_bridges_the_owner_into_the_live_goal_call_which_ends_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from tars.cli.app import app
    from tests.server.harness import Receptionist, place

    project = make_project(tmp_path / "p", monkeypatch)
    dentist = "+442079460123"
    async with Line(project, Receptionist) as line:
        assert line.server is not None
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        line.twilio.set_party(project.owner.phone, Party(gather=["1"], script=[{"say": "Alex here, I'll take it."}]))
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call = await line.twilio.next_call(timeout=10)
        assert call.to == dentist
        await call.wait_for_agent_utterance(timeout=20)
        argv = ["--project", str(project.root), "calls", "join", str(placed["call_id"])]
        joined = await asyncio.to_thread(CliRunner().invoke, app, argv)
        assert joined.exit_code == 0, joined.output
        heard = await call.wait_for_agent_utterance(timeout=30)
        while heard.text != "Alex here, I'll take it.":
            heard = await call.wait_for_agent_utterance(timeout=30)
        await call.hang_up()
        await line.settle()

    assert "Ringing you on +447700900123 to take over call" in joined.output
    details, [transfer] = stored(line, call.sid)
    assert (transfer.kind, transfer.result) == ("join", "completed")
    assert details.call.outcome == {"status": "taken_over", "reason": "the owner joined the call and took it over"}
    assert any(line.text.startswith("Hello, this is TARS") for line in details.transcript)  # kept


async def test_the_owner_asks_to_be_put_through_to_the_dentist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    dentist = "+442079460123"
    to_dentist = CallTool("transfer_call", {"target": "dentist", "about": "moving my appointment"})
    async with Line(project, brains(greet_then(to_dentist, Say("Putting you through, sir.")))) as line:
        line.twilio.set_party(dentist, Party(script=[{"say": "Bright Smile Dental, good morning."}, {"hang_up": True}]))
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("Put me through to the dentist, please.")
        assert "Putting you through" in (await call.wait_for_agent_utterance(timeout=20)).text
        assert (await call.wait_for_agent_utterance(timeout=30)).text == "Bright Smile Dental, good morning."
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        offered = line.gemini.sessions[0].tool_names
        [leg] = call.legs

    assert "transfer_call" in offered and (leg.to, leg.status) == (dentist, "completed")
    _details, [transfer] = stored(line, call.sid)
    assert (transfer.kind, transfer.target_name, transfer.result) == ("cold", "Bright Smile Dental", "completed")


@pytest.mark.parametrize("route", ["dialled", "hold", "whisper", "answer", "leg", "held"])
async def test_a_forged_transfer_webhook_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    import aiohttp

    from tests.server.test_attacks import signed

    project = make_project(tmp_path / "p", monkeypatch)
    form = {"CallSid": "CA" + "c" * 32, "DialCallStatus": "completed", "Digits": "1", "AccountSid": "AC" + "1" * 32}
    path = f"/twilio/transfer/{route}?transfer=1"
    async with Line(project, ScriptedBrain) as line, aiohttp.ClientSession() as http:
        assert line.server is not None
        wrong = signed(path.replace("transfer=1", "transfer=2"), form)  # signed for another transfer
        async with http.post(f"{line.server.local_url}{path}", data=form, headers=wrong) as response:
            assert response.status == 403
    with line.db() as db, db.session() as s:
        from tars.store.security_events import recent

        assert any(path.split("?")[0] in e.detail for e in recent(s))


async def test_the_owner_on_their_own_call_is_put_into_tars_s_live_call_with_the_dentist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.server.harness import Receptionist, place

    project = make_project(tmp_path / "p", monkeypatch)
    into_the_call = CallTool("transfer_call", {"target": "dentist", "about": "the booking"})
    mine = greet_then(into_the_call, Say("Putting you into my call with the dentist, sir."))
    async with Line(project, brains(Receptionist(), mine)) as line:  # the goal call's stream first
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        receptionist = await line.twilio.next_call(timeout=10)
        await receptionist.wait_for_agent_utterance(timeout=20)
        alex = await line.call_in(from_=project.owner.phone)
        await alex.wait_for_agent_utterance(timeout=20)
        await alex.say("Put me through to the dentist, please.")
        assert "Putting you into my call" in (await alex.wait_for_agent_utterance(timeout=20)).text

        def both_in() -> list[str] | None:  # the receptionist holding, then Alex joining: one room
            rooms = [r for r in line.twilio.conferences.rooms.values() if r.friendly_name.startswith("tars-transfer-")]
            sids = sorted(p.call.sid for r in rooms for p in r.connected)
            return sids if len(sids) == 2 else None

        together = await eventually(both_in, timeout=30, what="both calls in one conference")
        await receptionist.say("Hello? Are you still there?")
        heard = await alex.wait_for_agent_utterance(timeout=30)
        while heard.text != "Hello? Are you still there?":
            heard = await alex.wait_for_agent_utterance(timeout=30)
        await alex.hang_up()
        assert await receptionist.wait_ended(timeout=30) == "completed"
        await line.settle()
        legs = alex.legs + receptionist.legs

    assert together == sorted([alex.sid, receptionist.sid]) and legs == []  # nobody was dialled anew
    goal, [taken] = stored(line, receptionist.sid)
    assert goal.call.id == placed["call_id"] and (taken.kind, taken.result) == ("join", "completed")
    assert goal.call.outcome == {"status": "taken_over", "reason": "the owner joined the call and took it over"}
    _own, [joined] = stored(line, alex.sid)
    assert (joined.kind, joined.target_name, joined.result) == ("join", "Bright Smile Dental", "completed")
