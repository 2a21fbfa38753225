"""What a call's model is told before it speaks: who is on the line, what they may use, the
system instruction and the opening. One function per purpose of the stream:

    inbound_setup  someone rang TARS (the PIN may have made them the owner)
    goal_setup     a goal call was answered: the playbook run, new or continued after a keypad
                   handover (stored on the call, so any server can take the fresh stream)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tars.caller import OWNER, Caller, identify
from tars.calls import instructions, memory
from tars.calls.playbook_run import RUNTIME_TOOLS, PlaybookRun
from tars.calls.recovery import so_far
from tars.calls.session import CallSetup
from tars.graph.call_plan import prepare_call
from tars.project import Project

#: Where a call's ``run_state`` keeps its model session's resumption handle across a keypad handover.
MODEL_SESSION = "model_session"


async def inbound_setup(
    project: Project, database: Any, body: Mapping[str, str], call_sid: str, stream_sid: str
) -> CallSetup:
    """Who called, what they may use, what the model is told and says first."""
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
    if caller.contact_id is not None:  # a known contact: what happened last time, if the role remembers
        past = await memory.recall(project, database, role, int(body["call_id"]), caller.contact_id, "")
        instruction = f"{instruction}\n\n{past}" if past else instruction
    opening = f'[The call has connected. Greet the caller now with: "{first_words}"]'
    back = await database.run(lambda s: returned_from_transfer(s, int(body["call_id"])))
    if back is not None:  # put through, nobody took it: the same call goes on, what was said kept
        instruction, opening = f"{instruction}\n\n{back[0]}", back[1]
    return CallSetup(
        call_id=int(body["call_id"]),
        call_sid=call_sid,
        stream_sid=stream_sid,
        caller=caller,
        purpose=body.get("purpose", "inbound"),
        system_instruction=instruction,
        opening=opening,
        tools=tuple(tools),
    )


async def goal_setup(
    project: Project, database: Any, body: Mapping[str, str], call_sid: str, stream_sid: str
) -> tuple[CallSetup, PlaybookRun]:
    """The CallPlan and PlaybookRun for a goal call's stream: a new run, or the stored one
    after a keypad handover (the model is told which keys were pressed)."""
    from tars.store.calls import get_call, update_call

    call_id = int(body["call_id"])
    call = await database.run(lambda s: get_call(s, call_id))
    callee = call.callee or call.to_number
    now = instructions.local_now(project)
    book = project.playbooks.get(str(call.playbook))
    values = instructions.template_values(project, now, persona=project.persona_for(book))
    plan = prepare_call(project, str(call.playbook), dict(call.inputs or {}), {**values, "target_name": callee})
    pressed = call.resume_digits
    resume = None
    if pressed and call.run_state:
        # The model session goes on too (its latest resumable handle, kept by the switchboard),
        # so the model still knows what was said before the keys.
        resume = call.run_state.get(MODEL_SESSION) or None
        run = PlaybookRun.resumed(plan, call.run_state, announce=_unbound)
        await database.run(lambda s: update_call(s, call_id, resume_digits=None))
    else:
        pressed = None
        run = PlaybookRun(plan, announce=_unbound)
    role = project.roles[plan.playbook.role]
    tools = [t for t in plan.tool_set if t in role.tools and t in project.tools] + list(RUNTIME_TOOLS)
    opening = (
        f"[You pressed {pressed} on the phone menu and the call continues. {plan.announcement(run.step, run.outcome)}]"
        if pressed
        else run.opening()
    )
    if role.recording and role.announce_recording and not pressed:
        notice = instructions.recording_notice(project)
        opening = f'{opening}\n[This call is recorded. Before anything else, say: "{notice}"]'
    instruction = instructions.goal_instruction(project, plan, callee, now)
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
    )
    return setup, run


def returned_from_transfer(session: Any, call_id: int) -> tuple[str, str] | None:
    """After a transfer nobody took: the call so far (for the instruction) and the opening that
    tells the model what happened; None on any other stream. Each transfer is resumed once."""
    from tars.store.calls import call_details
    from tars.store.transfers import to_resume

    transfer = to_resume(session, call_id)
    if transfer is None:
        return None
    who = transfer.target_name or transfer.target
    why = {"busy": "the line was busy", "no-answer": "nobody answered", "declined": f"{who} could not take it now"}
    said = so_far((line.speaker, line.text) for line in call_details(session, call_id).transcript)
    opening = (
        f"[You tried to put the caller through to {who}, but {why.get(transfer.result, 'it did not go through')}. "
        f"The caller is back with you: tell them briefly and offer to take a message for {who}.]"
    )
    return said, opening


async def _unbound(text: str) -> None:  # replaced by the session's recorder line
    raise RuntimeError("playbook announcements are not connected to a call")
