"""Goal calls: placing them through Twilio, answering the answered call, setting up the run.

place_goal_call ─ Twilio REST calls.create(url=/twilio/outbound?call_id=N, AMD, status callbacks)
/twilio/outbound ─ human: <Connect><Stream> (purpose goal) · machine: the voicemail policy
goal_setup ─ the CallPlan and PlaybookRun for the stream, one Gemini session for the call
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from tars.calls import instructions
from tars.calls.caller import Caller
from tars.calls.playbook_run import RUNTIME_TOOLS, PlaybookRun
from tars.calls.session import CallSetup
from tars.graph.call_plan import prepare_call, render
from tars.server.signatures import public_url

if TYPE_CHECKING:
    from tars.server.app import Server

log = logging.getLogger("tars.outbound")


class PlacementError(Exception):
    """The call could not be placed; the message says why and what to do."""


async def place_goal_call(
    server: Server,
    *,
    number: str,
    playbook: str,
    inputs: Mapping[str, Any],
    callee: str,
    contact_id: int | None = None,
    call_id: int | None = None,
) -> Any:
    """Create (or reuse) the Call row and ask Twilio to dial. Returns the Call."""
    from tars.store.calls import start_call, update_call

    project = server.project
    plan = prepare_call(project, playbook, inputs)  # raises InputError / KeyError for bad requests
    if call_id is None:
        call = await server.db(
            lambda s: start_call(
                s,
                direction="outbound",
                from_number=str(project.section("telephony")["number"]),
                to_number=number,
                contact_id=contact_id,
                playbook=playbook,
                inputs={**dict(plan.inputs), "_callee": callee},
                status="queued",
            )
        )
        call_id = call.id
    query = urlencode({"call_id": call_id})
    detection = "DetectMessageEnd" if plan.playbook.voicemail_action == "leave_message" else "Enable"
    client = server.endpoints.twilio_client()

    def dial() -> Any:
        return client.calls.create(
            to=number,
            from_=str(project.section("telephony")["number"]),
            url=public_url(server.public_base, "/twilio/outbound", query),
            method="POST",
            status_callback=public_url(server.public_base, "/twilio/status"),
            status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            machine_detection=detection,
            timeout=30,
        )

    from twilio.base.exceptions import TwilioException

    try:
        created = await asyncio.to_thread(dial)
    except (TwilioException, OSError) as exc:
        unreachable = isinstance(exc, OSError)
        reason = f"Twilio unreachable: {exc}" if unreachable else f"Twilio refused: {exc}"
        await server.db(lambda s: update_call(s, call_id, status="failed", failure_reason=reason))
        raise PlacementError(
            f"could not reach Twilio: {exc}" if unreachable else f"Twilio refused the call to {number}: {exc}"
        ) from exc
    return await server.db(lambda s: update_call(s, call_id, sid=created.sid, status="queued"))


def voicemail_twiml(server: Server, call: Any) -> str:
    """What a machine hears: the playbook's message (spoken by Twilio), or nothing."""
    project = server.project
    book = project.playbooks[call.playbook]
    if book.voicemail_action != "leave_message" or not book.voicemail_message:
        return "<Hangup/>"
    values = {**instructions.template_values(project, instructions.local_now(project)), **(call.inputs or {})}
    return f'<Pause length="1"/><Say>{escape(render(book.voicemail_message, values))}</Say><Hangup/>'


async def press_digits(server: Server, session: Any, digits: str) -> None:
    """Play ``digits`` through Twilio, then reconnect the call to a fresh stream (same playbook run)."""
    from tars.server.app import stream_twiml

    setup = session.setup
    server.resumes[setup.call_sid] = (session.playbook, digits)
    caller = setup.caller
    stream = stream_twiml(server, caller, setup.call_sid, setup.call_id, "goal")
    document = f'<Response><Play digits="{escape(digits)}"/>{stream}</Response>'
    client = server.endpoints.twilio_client()
    await asyncio.to_thread(lambda: client.calls(setup.call_sid).update(twiml=document))


async def goal_setup(
    server: Server, body: Mapping[str, str], call_sid: str, stream_sid: str
) -> tuple[CallSetup, PlaybookRun]:
    from tars.store.calls import get_call

    project = server.project
    call = await server.db(lambda s: get_call(s, int(body["call_id"])))
    inputs = {k: v for k, v in (call.inputs or {}).items() if not k.startswith("_")}
    callee = (call.inputs or {}).get("_callee") or call.to_number
    now = instructions.local_now(project)
    values = instructions.template_values(project, now)
    plan = prepare_call(project, str(call.playbook), inputs, {**values, "target_name": callee})
    resumed = server.resumes.pop(call_sid, None)
    run = resumed[0] if resumed else PlaybookRun(plan, announce=_unbound)
    plan = run.plan
    role = project.roles[plan.playbook.role]
    tools = [t for t in plan.tool_set if t in role.tools and t in project.tools] + list(RUNTIME_TOOLS)
    setup = CallSetup(
        call_id=call.id,
        call_sid=call_sid,
        stream_sid=stream_sid,
        caller=Caller(call.to_number, plan.playbook.role, callee, call.contact_id),
        purpose="goal",
        system_instruction=instructions.goal_instruction(project, plan, callee, now),
        opening=(
            f"[You pressed {resumed[1]} on the phone menu and the call continues. "
            f"{plan.announcement(run.step, run.outcome)}]"
        )
        if resumed
        else run.opening(),
        tools=tuple(tools),
    )
    return setup, run


async def _unbound(text: str) -> None:  # replaced by the session's say_to_model
    raise RuntimeError("playbook announcements are not connected to a call")
