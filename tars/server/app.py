"""The server Twilio talks to: signed webhooks in, TwiML out, one pipeline per media stream.

POST /twilio/voice    incoming (or answered outbound) call → TwiML <Connect><Stream>
POST /twilio/pin      the keypad PIN from <Gather> → owner, retry, or goodbye
POST /twilio/status   call status callbacks → the Call row
WS   /twilio/stream   the media stream → CallSession (signed parameters only)
GET  /healthz         liveness and the number of live calls
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode
from xml.sax.saxutils import escape, quoteattr

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response

from tars.calls import instructions
from tars.calls.caller import BLOCKED, OWNER, Caller, identify
from tars.calls.session import CallSession, CallSetup
from tars.delivery import Outbox
from tars.project import Project
from tars.server.endpoints import Endpoints
from tars.server.signatures import StreamSigner, public_url, valid_twilio_signature, websocket_url
from tars.store.call_queue import FINAL

log = logging.getLogger("tars.server")

BUSY_MESSAGE = "Sorry, the assistant is busy on other calls right now. Please try again in a few minutes."
PIN_PROMPT = "If you are {owner}, enter your PIN followed by the hash key. Otherwise, please hold."
PIN_RETRY = "That PIN is not right. Please try again."
PIN_GOODBYE = "That PIN is not right. Goodbye."
MAX_PIN_TRIES = 3
STATUS_WAIT_TRIES = 30  # tries 0.1 s apart: how long a status callback waits for its call's SID to be stored
# Twilio's statuses → ours (a cancelled call never connected: like no answer).
STATUS_MAP = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "ringing",
    "in-progress": "in-progress",
    "answered": "in-progress",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "no-answer",
}


def twiml(*verbs: str) -> Response:
    body = '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"
    return Response(body, media_type="application/xml")


def say(text: str) -> str:
    return f"<Say>{escape(text)}</Say>"


@dataclass
class Server:
    """The running server's state: live calls, reservations, and what it needs to place them."""

    project: Project
    endpoints: Endpoints
    database: Any
    public_base: str
    outbox: Outbox = field(init=False)
    signer: StreamSigner = field(init=False)
    sessions: dict[str, CallSession] = field(default_factory=dict)
    reserved: dict[str, float] = field(default_factory=dict)  # call sid → when the webhook answered
    resumes: dict[str, Any] = field(default_factory=dict)  # call sid → (PlaybookRun, digits) across a handover
    questions: list[asyncio.Future[str]] = field(default_factory=list)  # ask_owner, oldest first
    shutting_down: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    scheduler: Any = None  # tars.scheduler.Scheduler, started with the server (tars.server.run)

    def __post_init__(self) -> None:
        from tars.server.api import ensure_token

        self.outbox = Outbox(self.project, self.endpoints)
        self.signer = StreamSigner.from_secret(self.endpoints.twilio_auth_token)
        self.api_token = ensure_token(self.project)

    @property
    def max_calls(self) -> int:
        return int(self.project.section("server").get("max_concurrent_calls", 4))

    def busy(self, call_sid: str) -> bool:
        now = asyncio.get_running_loop().time()
        for sid, when in list(self.reserved.items()):
            if now - when > 60 and sid not in self.sessions:  # answered but never streamed
                del self.reserved[sid]
        live = set(self.sessions) | set(self.reserved)
        return self.shutting_down or (call_sid not in live and len(live) >= self.max_calls)

    def background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def db(self, work: Any) -> Any:
        return await self.database.run(work)

    async def ask_owner(self, question: str, callee: str, timeout: float = 120.0) -> str:
        """Text the owner a question and wait for their reply (an SMS back to the TARS number)."""
        from tars.tools.builtins import ToolError

        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.questions.append(answer)
        try:
            status = await self.outbox.send_sms(
                self.project.owner.phone, f"TARS, on a call with {callee}, asks: {question} (reply to this text)"
            )
            log.info("asked the owner (%s); waiting up to %.0f s", status, timeout)
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            raise ToolError(f"{self.project.owner.name} did not answer in time; say you will confirm later") from None
        finally:
            if answer in self.questions:
                self.questions.remove(answer)

    async def shutdown(self, grace: float = 10.0) -> None:
        """No new calls; live calls are told goodbye and ended; rows are finished."""
        self.shutting_down = True
        for session in list(self.sessions.values()):
            if session.ending:
                continue
            await session.say_to_model("[System] The assistant is shutting down. Apologise briefly and say goodbye.")
            await session.end_call("server shutting down")
        deadline = asyncio.get_running_loop().time() + grace
        while self.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        for session in list(self.sessions.values()):
            if session.worker is not None:
                await session.worker.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=grace)


def stream_twiml(server: Server, caller: Caller, call_sid: str, call_id: int, purpose: str) -> str:
    """``<Connect><Stream>`` whose ``<Parameter>``s are signed, so the stream cannot be forged."""
    params = server.signer.sign(
        {
            "call_sid": call_sid,
            "call_id": str(call_id),
            "from_number": caller.number,
            "role": caller.role,
            "purpose": purpose,
        }
    )
    stream = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in params.items())
    url = websocket_url(server.public_base, "/twilio/stream")
    return f"<Connect><Stream url={quoteattr(url)}>{stream}</Stream></Connect>"


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def create_app(server: Server) -> FastAPI:
    app = FastAPI(title="TARS", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    project = server.project

    async def signed_form(request: Request) -> dict[str, str] | None:
        params = await _form(request)
        url = public_url(server.public_base, request.url.path, request.url.query)
        if valid_twilio_signature(
            server.endpoints.twilio_auth_token, url, params, request.headers.get("X-Twilio-Signature")
        ):
            return params
        log.warning("refused a webhook to %s with a missing or invalid Twilio signature", request.url.path)
        return None

    def forbidden() -> Response:
        return Response("invalid Twilio signature", status_code=403, media_type="text/plain")

    def connect(caller: Caller, call_sid: str, call_id: int, purpose: str) -> Response:
        return twiml(stream_twiml(server, caller, call_sid, call_id, purpose))

    def gather(caller: Caller, call_id: int, tries: int, prompt: str) -> Response:
        query = urlencode({"call_id": call_id, "role": caller.role, "tries": tries})
        action = public_url(server.public_base, "/twilio/pin", query)
        digits = str(len(project.owner.pin or "") + 1)
        return twiml(
            f'<Gather input="dtmf" finishOnKey="#" timeout="4" numDigits={quoteattr(digits)} '
            f'action={quoteattr(action)} method="POST">{say(prompt)}</Gather>',
            f'<Redirect method="POST">{escape(action)}</Redirect>',
        )

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse(
            {
                "status": "stopping" if server.shutting_down else "ok",
                "live_calls": len(server.sessions),
                "max_calls": server.max_calls,
            }
        )

    @app.post("/twilio/voice")
    async def voice(request: Request) -> Response:
        params = await signed_form(request)
        if params is None:
            return forbidden()
        call_sid = params.get("CallSid", "")
        number = params.get("From", "")
        if server.busy(call_sid):
            log.info("call %s from %s refused: at capacity", call_sid, number)
            return twiml(say(BUSY_MESSAGE), "<Hangup/>")
        caller = await asyncio.to_thread(identify, project, server.database, number)
        if caller.role == BLOCKED:
            return twiml('<Reject reason="busy"/>')
        from tars.store.calls import start_call

        call = await server.db(
            lambda s: start_call(
                s,
                direction="inbound",
                from_number=number,
                to_number=params.get("To", ""),
                sid=call_sid,
                contact_id=caller.contact_id,
                status="ringing",
            )
        )
        server.reserved[call_sid] = asyncio.get_running_loop().time()
        if caller.role != OWNER and caller.contact_id is None:
            server.background(server.outbox.notify_owner(f"Incoming call from {number}", kind="unknown_callers"))
        owner = project.owner
        role_needs_pin = project.roles[caller.role].pin if caller.role in project.roles else False
        if owner.pin and (caller.role != OWNER or owner.require_pin or role_needs_pin):
            return gather(caller, call.id, 0, PIN_PROMPT.format(owner=owner.name))
        return connect(caller, call_sid, call.id, "inbound")

    @app.post("/twilio/pin")
    async def pin(request: Request) -> Response:
        params = await signed_form(request)  # the action URL's query (tries, role) is signed too
        if params is None:
            return forbidden()
        query = dict(parse_qsl(request.url.query))
        call_sid, number = params.get("CallSid", ""), params.get("From", "")
        call_id, tries = int(query.get("call_id", "0")), int(query.get("tries", "0"))
        digits = params.get("Digits", "")
        caller = await asyncio.to_thread(identify, project, server.database, number)
        owner = project.owner
        if digits and owner.pin and hmac.compare_digest(digits.rstrip("#"), owner.pin):
            log.info("call %s: owner PIN accepted", call_sid)
            return connect(Caller(number, OWNER, owner.name, caller.contact_id), call_sid, call_id, "inbound")
        must = caller.role == OWNER or (project.roles.get(caller.role) and project.roles[caller.role].pin)
        if not digits and not must:
            return connect(caller, call_sid, call_id, "inbound")
        tries += 1
        log.warning("call %s: wrong or missing PIN (try %d of %d)", call_sid, tries, MAX_PIN_TRIES)
        if tries >= MAX_PIN_TRIES:
            from tars.store.calls import update_call

            await server.db(
                lambda s: update_call(
                    s, call_id, status="failed", failure_reason="wrong PIN", ended_at=dt.datetime.now(dt.UTC)
                )
            )
            server.reserved.pop(call_sid, None)
            return twiml(say(PIN_GOODBYE), "<Hangup/>")
        return gather(caller, call_id, tries, PIN_RETRY)

    @app.post("/twilio/sms")
    async def sms(request: Request) -> Response:
        """Texts to the TARS number: the owner's reply to a question asked during a goal call."""
        params = await signed_form(request)
        if params is None:
            return forbidden()
        if params.get("From") == project.owner.phone:
            waiting = [q for q in server.questions if not q.done()]
            if waiting:
                waiting[0].set_result(params.get("Body", "").strip())
        return twiml()

    @app.post("/twilio/status")
    async def status(request: Request) -> Response:
        params = await signed_form(request)
        if params is None:
            return forbidden()
        await update_status(server, params)
        if server.scheduler is not None and STATUS_MAP.get(params.get("CallStatus", "")) in FINAL:
            server.scheduler.wake()  # a goal call that ended busy, unanswered or on voicemail: decide its retry
        return Response(status_code=204)

    @app.post("/twilio/outbound")
    async def outbound(request: Request) -> Response:
        """A goal call was answered: a person gets the playbook, a machine the voicemail policy."""
        params = await signed_form(request)
        if params is None:
            return forbidden()
        from tars.server.outbound import voicemail_twiml
        from tars.store.calls import get_call, update_call

        call_id = int(dict(parse_qsl(request.url.query)).get("call_id", "0"))
        call = await server.db(lambda s: get_call(s, call_id))
        answered_by = params.get("AnsweredBy", "human")
        if answered_by.startswith("machine") or answered_by == "fax":
            await server.db(lambda s: update_call(s, call_id, status="voicemail"))
            log.info("goal call %s reached %s: voicemail policy", call.sid, answered_by)
            return twiml(voicemail_twiml(server, call))
        if server.busy(params.get("CallSid", "")):
            return twiml(say(BUSY_MESSAGE), "<Hangup/>")
        server.reserved[params.get("CallSid", "")] = asyncio.get_running_loop().time()
        callee = Caller(call.to_number, project.playbooks[call.playbook].role, None, call.contact_id)
        return connect(callee, params.get("CallSid", ""), call_id, "goal")

    @app.websocket("/twilio/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        verified = await verify_stream(server, websocket)
        if verified is None:
            return
        body, call_sid, stream_sid = verified
        playbook = None
        if body.get("purpose") == "goal":
            from tars.server.outbound import goal_setup

            setup, playbook = await goal_setup(server, body, call_sid, stream_sid)
        elif body.get("purpose") == "reminder":
            from tars.server.reminder_calls import reminder_setup

            setup = await reminder_setup(server, body, call_sid, stream_sid)
        else:
            setup = await inbound_setup(server, body, call_sid, stream_sid)
        session = CallSession(project, server.endpoints, server.database, server.outbox, setup, playbook=playbook)
        if setup.purpose == "reminder":
            from tars.server.reminder_calls import watch_announcement

            server.background(watch_announcement(server, session))  # delivered once announced
        if playbook is not None:
            from tars.server.outbound import press_digits

            playbook.announce = lambda text: session.recorder.line("system", text)
            session.handover = lambda s, digits: press_digits(server, s, digits)
            session.ask = lambda question: server.ask_owner(question, setup.caller.name or setup.caller.number)
        server.sessions[setup.call_sid] = session
        server.reserved.pop(setup.call_sid, None)
        try:
            await session.run(websocket)
        finally:
            if server.sessions.get(setup.call_sid) is session:
                server.sessions.pop(setup.call_sid, None)
            if playbook is not None and not session.handing_over:
                from tars.calls.aftercall import wrap_up

                server.background(wrap_up(session, server.endpoints, server.outbox, setup.caller.name or ""))

    from tars.server.api import router
    from tars.server.reminder_calls import register as reminder_routes

    reminder_routes(app, server)  # /twilio/reminder, /twilio/reminder/status
    app.include_router(router)
    return app


async def update_status(server: Server, params: Mapping[str, str]) -> None:
    from tars.store.models import Call

    ours = STATUS_MAP.get(params.get("CallStatus", ""))
    call_sid = params.get("CallSid", "")
    if ours is None or not call_sid:
        return
    answered_by = params.get("AnsweredBy", "")
    if ours == "completed" and answered_by.startswith("machine"):
        ours = "voicemail"

    final = FINAL

    def work(session: Any) -> bool:
        from sqlalchemy import update
        from sqlmodel import select

        for _ in range(5):
            call = session.exec(select(Call).where(Call.sid == call_sid)).first()
            if call is None:
                return False
            if call.status in final and ours not in final:
                return True  # a late "ringing" never undoes an end
            if call.status in ("failed", "voicemail") and ours == "completed":
                return True  # keep the reason we recorded, or that a machine answered
            now = dt.datetime.now(dt.UTC)
            values: dict[str, Any] = {"status": ours, "updated_at": now}
            if ours in final and call.ended_at is None:
                values["ended_at"] = now
            # Only if nobody changed the status since we read it (the call's own session may
            # be writing "failed" right now); otherwise read again and decide again.
            done = session.exec(update(Call).where(Call.id == call.id, Call.status == call.status).values(**values))
            if done.rowcount:
                return True
            session.expire_all()
        return True

    for _ in range(STATUS_WAIT_TRIES):  # a callback can overtake the REST answer that tells us the SID
        if await server.db(work):
            return
        await asyncio.sleep(0.1)


async def verify_stream(server: Server, websocket: WebSocket) -> tuple[dict[str, str], str, str] | None:
    """Read Twilio's first frames and verify our signed parameters; close the socket if they fail."""
    from pipecat.runner.utils import parse_telephony_websocket

    try:
        _kind, call_data = await asyncio.wait_for(parse_telephony_websocket(websocket), timeout=10)
        body = dict(call_data.get("body") or {})
        call_sid, stream_sid = call_data["call_id"], call_data["stream_id"]
    except Exception as exc:
        log.warning("media stream refused: not a Twilio stream start (%s)", exc)
        await websocket.close(code=1008, reason="expected a Twilio media stream")
        return None
    problem = server.signer.verify(body)
    if problem is None and body.get("call_sid") != call_sid:
        problem = "stream parameters belong to another call"
    if problem is None and server.busy(call_sid):
        problem = "at capacity"
    if problem is not None:
        log.warning("media stream for %s refused: %s", call_sid, problem)
        await websocket.close(code=1008, reason=problem)
        return None
    return body, call_sid, stream_sid


async def inbound_setup(server: Server, body: Mapping[str, str], call_sid: str, stream_sid: str) -> CallSetup:
    """Who called, what they may use, what the model is told and says first."""
    project = server.project
    caller = Caller(body["from_number"], body["role"])
    if caller.role != OWNER:
        caller = await asyncio.to_thread(identify, project, server.database, caller.number)
        if body["role"] == OWNER:  # the PIN made them the owner for this call
            caller = Caller(caller.number, OWNER, project.owner.name, caller.contact_id)
    else:
        caller = Caller(caller.number, OWNER, project.owner.name)
    role = project.roles.get(caller.role) or project.roles["unknown"]
    tools = [t for t in role.tools if t in project.tools]
    now = instructions.local_now(project)
    values = instructions.template_values(project, now, caller.name)
    first_words = instructions.greeting(project, caller.greeting_kind, values)
    return CallSetup(
        call_id=int(body["call_id"]),
        call_sid=call_sid,
        stream_sid=stream_sid,
        caller=caller,
        purpose=body.get("purpose", "inbound"),
        system_instruction=instructions.inbound_instruction(project, role.name, caller.name, caller.number, now, tools),
        opening=f'[The call has connected. Greet the caller now with: "{first_words}"]',
        tools=tuple(tools),
    )
