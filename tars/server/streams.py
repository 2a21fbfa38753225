"""One media stream, start to end: Twilio's first frames and the parameters TARS signed,
verified; the call's setup (the model session opened ahead, if this server holds one); its
CallSession; and what follows it (the report, the summary, the embedding for search)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from typing import Any

from fastapi import WebSocket

from tars import telemetry
from tars.calls.session import CallSession
from tars.calls.setup import goal_setup, inbound_setup
from tars.persona_changes import Asker, PersonaDesk
from tars.scheduler import goal_requests, reminder_calls
from tars.scheduler.goal_requests import CallDesk
from tars.telephony import security
from tars.telephony.signatures import EXPIRES_PARAM, SIGNATURE_PARAM
from tars.telephony.switchboard import Switchboard
from tars.telephony.transfers import Brief, going_on, put_through

log = logging.getLogger("tars.server")

STREAM_ROUTE = "/twilio/stream"


async def run_stream(
    board: Switchboard, websocket: WebSocket, body: dict[str, str], call_sid: str, stream_sid: str
) -> None:
    """One media stream, start to end: its setup, its CallSession, and what follows it."""
    project = board.project
    playbook = None
    purpose = body.get("purpose")
    opened = await board.preopener.take(call_sid, body, stream_sid) if board.preopener else None
    if opened is not None:  # opened here when the call was answered (tars.calls.preopen)
        setup, playbook = opened.setup, opened.playbook
    elif purpose == "goal":
        setup, playbook = await goal_setup(project, board.database, body, call_sid, stream_sid)
    elif purpose == "reminder":
        setup = await reminder_calls.reminder_setup(board, body, call_sid, stream_sid)
    else:
        setup = await inbound_setup(project, board.database, body, call_sid, stream_sid)
    live = opened.service if opened is not None else None
    session = CallSession(project, board.endpoints, board.database, board.outbox, setup, playbook=playbook, live=live)
    desk = CallDesk(board, setup.call_id, setup.caller.role, setup.caller.name or setup.caller.number)
    session.context.switchboard = desk
    who = setup.caller.name or setup.caller.number
    session.context.personas = PersonaDesk(
        lambda: board.project,
        board.use,
        board.database,
        Asker(f"{who} ({setup.caller.role}, call {setup.call_id})", "call", setup.call_id, setup.caller.role),
    )
    session.transfer = functools.partial(put_through, board, session, brief=_brief(board, session))
    if setup.purpose == "reminder":
        board.background(reminder_calls.watch_announcement(board, session))  # delivered once announced
    if playbook is not None:
        from tars.store.calls import update_call

        async def announce(text: str) -> None:  # a step change: in the transcript, and on the session row
            await session.recorder.line("system", text)
            await board.db(lambda s: update_call(s, setup.call_id, step=playbook.step))

        playbook.announce = announce
        session.handover = board.hand_over
        asking = project.tools.get("ask_owner")
        wait = max(1.0, (asking.timeout_seconds if asking else 120) - 1)  # answered before the gate gives up
        session.ask = lambda question: desk.ask_owner(question, wait)
    session.goes_on = functools.partial(going_on, board, session)
    board.sessions[setup.call_sid] = session
    board.reserved.pop(setup.call_sid, None)
    book = playbook.plan.playbook.name if playbook is not None else None
    traced = {"call.id": setup.call_id, "call.purpose": setup.purpose, "caller.role": setup.caller.role}
    with telemetry.span("call.stream", parent=telemetry.parent_from(body), **traced, playbook=book):
        try:
            await session.run(websocket)
        finally:
            if session.handing_over:  # the call goes on without this stream: no longer live here
                from tars.store.call_queue import let_go

                await board.db(lambda s: let_go(s, setup.call_id, board.id))
            if board.sessions.get(setup.call_sid) is session:  # (after: the call stays live until its work is queued)
                board.sessions.pop(setup.call_sid, None)
            if playbook is not None and not session.handing_over:
                from tars.calls.aftercall import wrap_up

                async def send(text: str, payload: dict[str, Any]) -> None:
                    await goal_requests.report(board, setup.call_id, text, payload)

                work = _then_embedded(board, wrap_up(session, board.endpoints, send, setup.caller.name or ""))
                board.background(telemetry.in_span("call.after", work, **traced))
            elif playbook is None and not session.handing_over:  # (put through: summed up when it ends)
                who = setup.caller.name or setup.caller.number or "an unknown number"
                about = f"Reminder call to {who}" if setup.purpose == "reminder" else f"Inbound call from {who}"
                work = _then_embedded(board, _summed_up(board, session, about))
                board.background(telemetry.in_span("call.after", work, **traced))


async def _summed_up(board: Switchboard, session: CallSession, about: str) -> None:
    """A call that followed no playbook, summed up with what became of each transfer on it."""
    from tars.calls.aftercall import summarise_call
    from tars.store.transfers import describe, transfers_of

    done = [describe(t) for t in await board.db(lambda s: transfers_of(s, session.setup.call_id))]
    await summarise_call(session, board.endpoints, about, done)


def _brief(board: Switchboard, session: CallSession) -> Brief:
    """The warm transfer's brief for this call, by the text model (``tars.calls.transfer_brief``)."""

    async def write(target: str, who: str, about: str, so_far: str) -> str:
        from tars.calls.transfer_brief import brief

        return await brief(session.project, board.endpoints, target, who, about, so_far)

    return write


async def _then_embedded(board: Switchboard, summing_up: Any) -> None:
    """The call summed up, then embedded for search by meaning (tars.semantic), so a later
    ``--semantic`` search finds it ready. Best effort: a search embeds whatever is missing."""
    await summing_up
    from tars.semantic import embed_pending

    try:
        await embed_pending(board.db, board.endpoints, board.project)
    except Exception as exc:  # the embedding API down or refusing: the next search tries again
        log.warning("embedding the finished call for search failed: %s", exc)


def _claim_token(session: Any, body: dict[str, str]) -> bool:
    """Each signed token opens one stream (the first to present it claims it)."""
    from tars.store.stream_tokens import claim

    expires = dt.datetime.fromtimestamp(int(body[EXPIRES_PARAM]), dt.UTC)
    return claim(session, body[SIGNATURE_PARAM], expires)


async def verify_stream(board: Switchboard, websocket: WebSocket) -> tuple[dict[str, str], str, str] | None:
    """Read Twilio's first frames and verify our signed parameters; close the socket if they fail."""
    from pipecat.runner.utils import parse_telephony_websocket

    try:
        _kind, call_data = await asyncio.wait_for(parse_telephony_websocket(websocket), timeout=10)
        body = dict(call_data.get("body") or {})
        call_sid, stream_sid = call_data["call_id"], call_data["stream_id"]
    except Exception as exc:
        log.warning("media stream refused: not a Twilio stream start (%s)", exc)
        # Recorded before the socket closes: whoever sees the close finds the refusal stored.
        detail = "a media stream that did not start as a Twilio stream"
        await security.refused(board, security.STREAM, detail, security.client_of(websocket), route=STREAM_ROUTE)
        await websocket.close(code=1008, reason="expected a Twilio media stream")
        return None
    problem = board.signer.verify(body)
    if problem is None and body.get("call_sid") != call_sid:
        problem = "stream parameters belong to another call"
    if problem is None and not await board.db(lambda s: _claim_token(s, body)):
        problem = "stream parameters were already used"
    if problem is not None:  # the parameters TARS signed did not verify, or were used before
        # Not the call SID: it came in the unverified start frame, and the message goes to the owner.
        where = security.client_of(websocket)
        await security.refused(board, security.STREAM, f"a media stream: {problem}", where, route=STREAM_ROUTE)
        await websocket.close(code=1008, reason=problem)
        return None
    if await board.busy(call_sid):
        problem = "at capacity"
    if problem is not None:
        log.warning("media stream for %s refused: %s", call_sid, problem)
        await websocket.close(code=1008, reason=problem)
        return None
    return body, call_sid, stream_sid
