"""Putting a caller through: cold (Twilio dials the target on the caller's own line) or warm
(the caller holds in a conference while TARS rings the target and briefs them).

    put_through(board, session, key, …)   the rules (``transfer_rules``), the CallTransfer row, then
                                          the live call redirected (REST ``calls(sid).update(twiml=…)``)
    dialled(board, transfer_id, params)   a cold transfer's <Dial> action: completed → the call ends;
                                          busy, no answer, failed → back to TARS
    whispered / answered / leg_ended      a warm transfer's target leg: the brief, their yes or no,
                                          how their leg ended
    back_to_tars(board, transfer)         the caller on a fresh signed <Connect><Stream>; the new
                                          stream knows (from the row) to take a message, or
                                          (a goal call) to go on at its playbook step
    going_on(board, session)              as a stream ends: the call is being put through, so it
                                          goes on without the stream (its playbook run stored)
    _owner_joins                          the owner asking, on their call, for someone TARS is on a
                                          goal call with: both calls into one conference

Every step reads and writes the CallTransfer row, so whichever ``tars serve`` process Twilio
reaches takes the next webhook. Nothing here imports the call pipeline: the session and the
brief come in as arguments.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tars.caller import OWNER, Caller
from tars.telephony import twiml
from tars.telephony.switchboard import Switchboard
from tars.telephony.transfer_rules import Target, refusal

log = logging.getLogger("tars.transfers")

#: How long TARS waits at most for the model to finish saying "putting you through" before the
#: line moves; it is finished once its words are in the transcript and no audio has gone out
#: for ``QUIET_SECONDS`` (pipecat sends speech out in real time).
SPOKEN_WAIT_SECONDS = 15.0
QUIET_SECONDS = 0.5
HOLD_TEXT = "Please hold while I put you through."
DECLINED_TEXT = "All right. I'll take a message. Goodbye."
#: DialCallStatus (https://www.twilio.com/docs/voice/twiml/dial#dialcallstatus) → the transfer's result.
DIAL_RESULTS = {"completed": "completed", "answered": "completed", "busy": "busy", "no-answer": "no-answer",
                "failed": "failed", "canceled": "failed"}  # fmt: skip
YES_WORDS = ("yes", "yeah", "yep", "sure", "ok", "okay", "put them through", "take it")

#: Writes the brief the target hears: (the target, who is calling, what about, the call so far).
Brief = Callable[[str, str, str, str], Awaitable[str]]


def room(transfer_id: int) -> str:
    return f"tars-transfer-{transfer_id}"


async def put_through(
    board: Switchboard, session: Any, key: str, about: str, caller_name: str | None, brief: Brief
) -> dict[str, Any]:
    """Check the rules and start the transfer; the result is for the model to act on."""
    from tars.store.contacts import contact_relationship
    from tars.store.transfers import live_goal_call_to, start_transfer

    setup = session.setup
    caller: Caller = setup.caller
    project = session.project  # the project the call started with
    role = project.roles.get(caller.role)
    kind = role.transfer.kind if role is not None and role.transfer is not None else "cold"
    relationship = await board.db(lambda s: contact_relationship(s, caller.contact_id))
    target, reason = refusal(project, caller, relationship, key, board.clock())
    who = caller_name or caller.name or caller.number
    row: dict[str, Any] = {"kind": kind, "target": key, "requested_by": who, "about": about or None}
    if target is not None:
        row.update(target_name=target.name, number=target.number)
    if reason is not None or target is None:
        await board.db(lambda s: start_transfer(s, setup.call_id, result="refused", reason=reason, **row))
        await session.recorder.line("system", f"transfer to {key} refused: {reason}")
        log.warning("call %s: transfer to %s refused: %s", setup.call_id, key, reason)
        return {"refused": reason}
    if caller.role == OWNER:  # "put me through to the dentist" while TARS is on a call with them
        goal = await board.db(lambda s: live_goal_call_to(s, target.number))
        if goal is not None:
            return await _owner_joins(board, session, goal, target, row)
    ring = role.transfer.ring_seconds if role is not None and role.transfer is not None else 20
    transfer = await board.db(lambda s: start_transfer(s, setup.call_id, result="ringing", **row))
    await session.recorder.line("system", f"putting the caller through to {target.name} ({kind} transfer)")
    session.handing_over = True  # the call goes on without this stream: not ended, not summed up
    mark = len(session.recorder.lines)
    board.background(_move_line(board, session, transfer.id, target, kind, ring, who, about, brief, mark))
    say = (
        "Tell the caller in one short sentence that you are putting them through now, then stop talking."
        if kind == "cold"
        else f"Tell the caller in one short sentence to hold while you reach {target.name}, then stop talking."
    )
    return {"putting_through": target.name, "kind": kind, "say": say}


async def _move_line(
    board: Switchboard, session: Any, transfer_id: int, target: Target, kind: str, ring: int,
    who: str, about: str, brief: Brief, mark: int,
) -> None:  # fmt: skip
    """Once the model has spoken, redirect the caller's call (and ring the target, warm)."""
    from tars.store.transfers import settle

    setup = session.setup
    await _spoken(session, mark)
    try:
        if kind == "cold":
            action = board.url("/twilio/transfer/dialled", transfer=transfer_id)
            document = twiml.dial_number(target.number, caller_id=setup.caller.number, timeout=ring, action=action)
            await asyncio.to_thread(lambda: board.client.calls(setup.call_sid).update(twiml=document))
            return
        so_far = "\n".join(f"{s}: {t}" for s, t in session.recorder.lines if s != "system")
        text = await brief(target.name, who, about, so_far)
        await board.db(lambda s: settle(s, transfer_id, "ringing", brief=text))
        await ring_into_conference(board, transfer_id, setup.call_sid, target.number, ring)
    except Exception as exc:  # Twilio refused or unreachable: the caller stays with (or returns to) TARS
        log.warning("call %s: the transfer could not start: %s", setup.call_id, exc)
        why = f"Twilio: {exc}"
        await board.db(lambda s: settle(s, transfer_id, "failed", reason=why))
        if kind == "warm":
            await back_to_tars(board, transfer_id)
            return
        session.handing_over = False
        await session.say_to_model("[System] The transfer could not be started. Apologise and offer to take a message.")


async def _owner_joins(
    board: Switchboard, session: Any, goal: Any, target: Target, row: dict[str, Any]
) -> dict[str, Any]:
    """The owner, on their own call, joins TARS's live goal call with ``target``: both calls
    go into one conference, TARS leaves both, and the goal call's outcome is ``taken_over``."""
    from tars.store.transfers import mark_moving, start_transfer

    owner = session.project.owner
    about = f"joining the live call with {target.name}"
    own = await board.db(lambda s: start_transfer(s, session.setup.call_id, **{**row, "kind": "join", "about": about}))
    theirs = await board.db(
        lambda s: start_transfer(
            s, goal.id, kind="join", target="owner", target_name=owner.name, number=owner.phone,
            requested_by=owner.name, about=f"taken over by {owner.name} from their call",
        )
    )  # fmt: skip
    await board.db(lambda s: mark_moving(s, goal.id))  # its run stored as its stream ends, on any server
    session.handing_over = True
    goal_session = board.session_for(goal.id)
    if goal_session is not None:
        goal_session.handing_over = True
    await session.recorder.line("system", f"putting the owner into the live call with {target.name} (call {goal.id})")
    mark = len(session.recorder.lines)
    board.background(_bridge(board, session, own.id, theirs.id, goal, mark))
    return {
        "joining": target.name,
        "say": f"Tell the owner in one short sentence you are putting them into your call with {target.name}, "
        "then stop talking.",
    }


async def _bridge(board: Switchboard, session: Any, own_id: int, theirs_id: int, goal: Any, mark: int) -> None:
    from tars.store.transfers import settle

    await _spoken(session, mark)
    name = room(theirs_id)
    hold = twiml.hold_in_conference(
        name, wait_url=board.url("/twilio/transfer/hold"), action=board.url("/twilio/transfer/held", transfer=theirs_id)
    )
    join_in = twiml.join_conference(name, action=board.url("/twilio/transfer/held", transfer=own_id))
    try:
        await asyncio.to_thread(lambda: board.client.calls(goal.sid).update(twiml=hold))
        await board.db(lambda s: settle(s, theirs_id, "connected"))
        await board.db(lambda s: taken_over(s, goal.id))
        await board.db(lambda s: settle(s, own_id, "connected"))
        await asyncio.to_thread(lambda: board.client.calls(session.setup.call_sid).update(twiml=join_in))
    except Exception as exc:
        log.warning("call %s: could not put the owner into call %s: %s", session.setup.call_id, goal.id, exc)
        why = f"Twilio: {exc}"
        for transfer_id in (own_id, theirs_id):
            await board.db(lambda s, t=transfer_id: settle(s, t, "failed", reason=why))
        await not_moved(board, theirs_id, goal.id)
        session.handing_over = False
        await session.say_to_model("[System] Joining the other call did not work. Apologise briefly.")


async def not_moved(board: Switchboard, transfer_id: int, call_id: int) -> bool:
    """A goal call's move into a transfer failed part way: it comes back to TARS on a fresh
    stream (from holding, or from the stream it was still on), at its playbook step; if
    Twilio cannot be asked at all, it is still on its stream, which is no longer moving
    (False: the holder's session goes on as before)."""
    from tars.store.transfers import not_moving

    if await back_to_tars(board, transfer_id):
        return True
    await board.db(lambda s: not_moving(s, call_id))
    held = board.session_for(call_id)
    if held is not None:
        held.handing_over = False
    return False


async def ring_into_conference(board: Switchboard, transfer_id: int, call_sid: str, number: str, ring: int) -> None:
    """Put ``call_sid`` on hold in the transfer's conference and ring ``number``, whose answer
    comes to the whisper webhook. Raises if Twilio refuses either."""
    from tars.store.transfers import settle

    hold = twiml.hold_in_conference(
        room(transfer_id),
        wait_url=board.url("/twilio/transfer/hold"),
        action=board.url("/twilio/transfer/held", transfer=transfer_id),
    )
    await asyncio.to_thread(lambda: board.client.calls(call_sid).update(twiml=hold))
    leg = await board._dial(
        to=number, from_=board.number, method="POST", timeout=ring,
        url=board.url("/twilio/transfer/whisper", transfer=transfer_id),
        status_callback=board.url("/twilio/transfer/leg", transfer=transfer_id),
        status_callback_method="POST", status_callback_event=["completed"],
    )  # fmt: skip
    await board.db(lambda s: settle(s, transfer_id, "ringing", leg_sid=leg.sid))


async def _spoken(session: Any, mark: int) -> None:
    """Until the model has said its sentence after line ``mark`` and the audio has played out."""
    deadline = time.monotonic() + SPOKEN_WAIT_SECONDS
    while time.monotonic() < deadline:
        said = any(speaker == "assistant" for speaker, _ in session.recorder.lines[mark:])
        last = session.clock.last_sent
        if said and (last is None or time.monotonic() - last > QUIET_SECONDS):
            return
        await asyncio.sleep(0.05)


async def _load(board: Switchboard, transfer_id: int) -> tuple[Any, Any]:
    """The transfer and the caller's call."""
    from tars.store.calls import get_call
    from tars.store.transfers import get_transfer

    def read(s: Any) -> tuple[Any, Any]:
        transfer = get_transfer(s, transfer_id)
        return transfer, get_call(s, transfer.call_id)

    return await board.db(read)


async def going_on(board: Switchboard, session: Any) -> bool:
    """As a stream ends: is its call being put through, or its stream being moved into a
    transfer (``tars calls join``), by this server or another? Then the call goes on without
    the stream, and a goal call's playbook run is stored with its model session's handle for
    the stream that brings it back to TARS if nobody takes it (``tars.calls.setup.goal_setup``),
    on whichever server that is."""
    from tars.store.calls import get_call, update_call
    from tars.store.transfers import is_moving, under_way

    call_id = session.setup.call_id
    if not await board.db(lambda s: under_way(s, call_id) or is_moving(get_call(s, call_id).run_state)):
        return False
    run, state = session.playbook, session.run_to_keep()
    if run is not None:
        await board.db(lambda s: update_call(s, call_id, run_state=state, step=run.step))
    return True


def stream_back(board: Switchboard, call: Any) -> str:
    """The call on a fresh signed stream: an inbound caller in their role; the other party of
    a goal call the owner did not take over, on the playbook again."""
    if call.playbook:
        callee = Caller(call.to_number, call.role or "delegate", call.callee, call.contact_id)
        return board.stream_document(callee, call.sid, call.id, "goal")
    caller = Caller(call.from_number, call.role or "unknown", call.callee, call.contact_id)
    return board.stream_document(caller, call.sid, call.id, "inbound")


async def back_to_tars(board: Switchboard, transfer_id: int) -> bool:
    """The caller (holding in the conference) returns to TARS on a fresh stream; False if
    Twilio could not be asked."""
    _transfer, call = await _load(board, transfer_id)
    document = stream_back(board, call)
    try:
        await asyncio.to_thread(lambda: board.client.calls(call.sid).update(twiml=document))
    except Exception as exc:
        log.warning("call %s: could not bring the caller back from the transfer: %s", call.id, exc)
        return False
    return True


async def dialled(board: Switchboard, transfer_id: int, params: Mapping[str, str]) -> tuple[str, bool]:
    """A cold transfer's <Dial> ended: the TwiML for the caller, and whether the call is over."""
    from tars.store.transfers import settle

    result = DIAL_RESULTS.get(params.get("DialCallStatus", ""), "failed")
    if result == "completed" and params.get("DialBridged") == "false":  # answered, never connected
        result = "declined"  # (https://www.twilio.com/docs/voice/twiml/dial#action: DialBridged)
    talked = int(params["DialCallDuration"]) if params.get("DialCallDuration", "").isdigit() else None
    if result == "completed":
        await board.db(lambda s: settle(s, transfer_id, "connected"))
    await board.db(lambda s: settle(s, transfer_id, result, talk_seconds=talked))
    _transfer, call = await _load(board, transfer_id)
    if result == "completed":
        return twiml.hang_up(), True
    return stream_back(board, call), False


async def whispered(board: Switchboard, transfer_id: int) -> str:
    """The target answered: the brief, and a yes to gather."""
    transfer, _call = await _load(board, transfer_id)
    text = transfer.brief or fallback_brief(transfer.requested_by or "Someone", transfer.about or "")
    return twiml.whisper(text, board.url("/twilio/transfer/answer", transfer=transfer_id))


def taken_over(session: Any, call_id: int) -> None:
    """The goal call's outcome once the owner has joined it: ``taken_over``."""
    from tars.store.calls import update_call

    outcome = {"status": "taken_over", "reason": "the owner joined the call and took it over"}
    update_call(session, call_id, outcome=outcome, outcome_source="recorded", failure_reason=None)


def fallback_brief(who: str, about: str) -> str:
    return f"{who} is on the line{' about ' + about if about else ''}. Press 1 or say yes to take the call."


def accepted(params: Mapping[str, str]) -> bool:
    if params.get("Digits", "") == "1":
        return True
    said = params.get("SpeechResult", "").lower()
    return any(word in said for word in YES_WORDS) and "no" not in said.split()


async def answered(board: Switchboard, transfer_id: int, params: Mapping[str, str]) -> str:
    """The target's answer to the brief: yes → into the conference (it starts, the caller with
    them); anything else → the caller back with TARS."""
    from tars.store.transfers import settle

    if accepted(params):
        taken = await board.db(lambda s: settle(s, transfer_id, "connected"))
        if taken is not None:
            if taken.kind == "join":  # the owner takes the goal call over: the playbook run ends
                await board.db(lambda s: taken_over(s, taken.call_id))
            return twiml.join_conference(room(transfer_id))
        return twiml.hang_up()  # the caller gave up meanwhile
    if await board.db(lambda s: settle(s, transfer_id, "declined")) is not None:
        await back_to_tars(board, transfer_id)
    return twiml.say_and_hang_up(DECLINED_TEXT)


async def leg_ended(board: Switchboard, transfer_id: int, params: Mapping[str, str]) -> None:
    """The target's leg ended: unanswered, busy, failed, or hung up before saying yes → the
    caller back with TARS; after talking, the transfer is complete."""
    from tars.store.transfers import settle

    status = params.get("CallStatus", "")
    transfer, _call = await _load(board, transfer_id)
    if transfer.result == "connected":
        await board.db(lambda s: settle(s, transfer_id, "completed"))
        return
    result = {"busy": "busy", "no-answer": "no-answer", "failed": "failed", "canceled": "failed"}.get(
        status, "declined"
    )
    if await board.db(lambda s: settle(s, transfer_id, result)) is not None:
        await back_to_tars(board, transfer_id)


async def held(board: Switchboard, transfer_id: int) -> tuple[str, bool]:
    """The caller's conference ended: after talking, the call is over; else back to TARS."""
    from tars.store.transfers import settle

    transfer, call = await _load(board, transfer_id)
    if transfer.result in ("connected", "completed"):
        await board.db(lambda s: settle(s, transfer_id, "completed"))
        return twiml.hang_up(), True
    return stream_back(board, call), False
