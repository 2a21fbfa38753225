"""What a call's model is told before it speaks: who is on the line, what they may use, the
system instruction and the opening. One function per purpose of the stream:

    inbound_setup  someone rang TARS (the PIN may have made them the owner)
    goal_setup     a goal call was answered: the playbook run, new or continued after a keypad
                   handover or a transfer nobody took (stored on the call, so any server can
                   take the fresh stream)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tars.caller import OWNER, Caller, identify
from tars.calls import instructions, memory
from tars.calls.playbook_run import RUNTIME_TOOLS, PlaybookRun
from tars.calls.recovery import so_far
from tars.calls.session import MODEL_SESSION, CallSetup
from tars.graph.call_plan import prepare_call
from tars.project import Project

#: How long a stream bringing a goal call back waits for the stream it left to store the run.
LEFT_BEHIND_SECONDS = 10.0


async def inbound_setup(
    project: Project,
    database: Any,
    body: Mapping[str, str],
    call_sid: str,
    stream_sid: str,
    *,
    new_call: bool = False,
) -> CallSetup:
    """Who called, what they may use, what the model is told and says first. ``new_call``:
    the call's row is still being written (the voice webhook opens the model session
    meanwhile), so nothing stored is the call's own yet — every past call is before it, it
    comes back from no transfer — and its ``call_id`` is 0 until the caller fills it in."""
    caller = Caller(body["from_number"], body["role"])
    if caller.role != OWNER:
        caller = await asyncio.to_thread(identify, project, database, caller.number)
        if body["role"] == OWNER:  # the PIN made them the owner for this call
            caller = Caller(caller.number, OWNER, project.owner.name, caller.contact_id)
    else:
        caller = Caller(caller.number, OWNER, project.owner.name)
    role = project.roles.get(caller.role) or project.roles["unknown"]
    tools = [t for t in role.tools if t in project.tools]
    now = instructions.local_now(project)
    values = instructions.template_values(project, now, caller.name)
    first_words = instructions.first_words(project, role, caller.greeting_kind, values)
    instruction = instructions.inbound_instruction(project, role.name, caller.name, caller.number, now, tools)
    row = 0 if new_call else int(body["call_id"])
    if caller.contact_id is not None:  # a known contact: what happened last time, if the role remembers
        past = await memory.recall(project, database, role, row or None, caller.contact_id, "")
        instruction = f"{instruction}\n\n{past}" if past else instruction
    opening = f'[The call has connected. Greet the caller now with: "{first_words}"]'
    back = None if new_call else await database.run(lambda s: returned_from_transfer(s, row))
    earlier: tuple[tuple[str, str], ...] = ()
    if back is not None:  # put through, nobody took it: the same call goes on, what was said kept
        opening, earlier = back
        instruction = f"{instruction}\n\n{so_far(earlier)}"
    return CallSetup(
        call_id=row,
        call_sid=call_sid,
        stream_sid=stream_sid,
        caller=caller,
        purpose=body.get("purpose", "inbound"),
        system_instruction=instruction,
        opening=opening,
        tools=tuple(tools),
        earlier=earlier,
    )


async def goal_setup(
    project: Project, database: Any, body: Mapping[str, str], call_sid: str, stream_sid: str
) -> tuple[CallSetup, PlaybookRun]:
    """The CallPlan and PlaybookRun for a goal call's stream: a new run, or the stored one when
    the call goes on on a fresh stream: after a keypad handover (the model is told which keys
    were pressed), or back from a transfer nobody took, such as a ``tars calls join`` the
    owner declined (the model is told so, and what was said so far)."""
    from tars.store.calls import get_call, update_call
    from tars.store.transfers import is_moving

    call_id = int(body["call_id"])
    call = await database.run(lambda s: get_call(s, call_id))
    callee = call.callee or call.to_number
    now = instructions.local_now(project)
    book = project.playbooks.get(str(call.playbook))
    values = instructions.template_values(project, now, persona=project.persona_for(book))
    plan = prepare_call(project, str(call.playbook), dict(call.inputs or {}), {**values, "target_name": callee})
    pressed = call.resume_digits
    back = None if pressed else await database.run(lambda s: back_from_transfer(s, call_id))
    if back is not None and is_moving(call.run_state):
        call = await _left_behind(database, call_id)
    stored = None if is_moving(call.run_state) else call.run_state
    resume = None
    earlier: tuple[tuple[str, str], ...] = ()
    if (pressed or back is not None) and (stored or call.step):
        # The model session goes on too (its latest resumable handle, kept by the switchboard),
        # so the model still knows what was said before the keys or the transfer. Without the
        # stored run (its server gone), the step and outcome on the row carry it.
        state = stored or {"step": call.step, "outcome": call.outcome or {}, "recorded": bool(call.outcome)}
        resume = state.get(MODEL_SESSION) or None
        run = PlaybookRun.resumed(plan, state, announce=_unbound)
        earlier = back[1] if back is not None else await database.run(lambda s: said_so_far(s, call_id))
        if pressed:
            await database.run(lambda s: update_call(s, call_id, resume_digits=None))
    else:
        pressed, back = None, None
        run = PlaybookRun(plan, announce=_unbound)
    role = project.roles[plan.playbook.role]
    tools = [t for t in plan.tool_set if t in role.tools and t in project.tools] + list(RUNTIME_TOOLS)
    where = plan.announcement(run.step, run.outcome)
    if pressed:
        opening = f"[You pressed {pressed} on the phone menu and the call continues. {where}]"
    elif back is not None:
        carry_on = "The other party held meanwhile and is back with you: apologise briefly for the wait, then carry on"
        opening = f"[{back[0]} {carry_on} where you were. {where}]"
    else:
        opening = run.opening()
    if role.recording and role.announce_recording and not (pressed or back):
        notice = instructions.recording_notice(project)
        opening = f'{opening}\n[This call is recorded. Before anything else, say: "{notice}"]'
    instruction = instructions.goal_instruction(project, plan, callee, now)
    if back is not None:  # (a resumed session knows; a fresh one, if it cannot be resumed, is told)
        instruction = f"{instruction}\n\n{so_far(back[1])}"
    past = await memory.recall(project, database, role, call_id, call.contact_id, call.to_number)
    setup = CallSetup(
        call_id=call.id,
        call_sid=call_sid,
        stream_sid=stream_sid,
        caller=Caller(call.to_number, plan.playbook.role, callee, call.contact_id),
        purpose="goal",
        system_instruction=f"{instruction}\n\n{past}" if past else instruction,
        opening=opening,
        tools=tuple(tools),
        resume=resume,
        earlier=earlier,
    )
    return setup, run


async def _left_behind(database: Any, call_id: int) -> Any:
    """The call's row once the stream it left has stored the playbook run there (a moment
    after that stream ended, on whichever server held it), or after ``LEFT_BEHIND_SECONDS``."""
    from tars.store.calls import get_call
    from tars.store.transfers import is_moving

    loop = asyncio.get_running_loop()
    deadline = loop.time() + LEFT_BEHIND_SECONDS
    while True:
        call = await database.run(lambda s: get_call(s, call_id))
        if not is_moving(call.run_state) or loop.time() > deadline:
            return call
        await asyncio.sleep(0.1)


def said_so_far(session: Any, call_id: int) -> tuple[tuple[str, str], ...]:
    """The call's transcript so far, (speaker, text), as its earlier streams stored it."""
    from tars.store.calls import call_details

    return tuple((line.speaker, line.text) for line in call_details(session, call_id).transcript)


#: Why a transfer brought the call back to TARS, by its result.
NOT_TAKEN = {"busy": "the line was busy", "no-answer": "nobody answered", "declined": "{who} could not take it now"}


def _not_taken(session: Any, call_id: int) -> tuple[Any, str, str] | None:
    """The transfer that has just brought the call back to TARS (marked resumed: each is
    resumed once), who it was to, and why they did not take it; None on any other stream."""
    from tars.store.transfers import to_resume

    transfer = to_resume(session, call_id)
    if transfer is None:
        return None
    who = transfer.target_name or transfer.target
    return transfer, who, NOT_TAKEN.get(transfer.result, "it did not go through").format(who=who)


def back_from_transfer(session: Any, call_id: int) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """A goal call back from a transfer nobody took (``tars calls join`` declined or not
    answered): what happened, in a sentence for the model, and the transcript so far, with
    the return written in it. None on any other stream."""
    from tars.store.calls import add_line

    found = _not_taken(session, call_id)
    if found is None:
        return None
    transfer, who, why = found
    if transfer.kind == "join":
        told = f"{who} was going to take this call over, but {why}."
    else:
        told = f"You tried to put the call through to {who}, but {why}."
    add_line(session, call_id, "system", f"{who} did not take the call ({transfer.result}): TARS carries on")
    return told, said_so_far(session, call_id)


def returned_from_transfer(session: Any, call_id: int) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """After a transfer nobody took: the opening that tells the model what happened, and the
    call so far; None on any other stream."""
    found = _not_taken(session, call_id)
    if found is None:
        return None
    _transfer, who, why = found
    opening = (
        f"[You tried to put the caller through to {who}, but {why}. "
        f"The caller is back with you: tell them briefly and offer to take a message for {who}.]"
    )
    return opening, said_so_far(session, call_id)


async def _unbound(text: str) -> None:  # replaced by the session's recorder line
    raise RuntimeError("playbook announcements are not connected to a call")
