"""The server Twilio talks to: routes only. Signed webhooks in, TwiML out (built by the
switchboard, ``tars.telephony``), one pipeline per media stream.

POST /twilio/voice             incoming call → PIN <Gather> or <Connect><Stream>
POST /twilio/pin               the keypad PIN from <Gather> → owner, retry, or goodbye
POST /twilio/outbound          an answered goal call: a person gets the playbook, a machine the voicemail policy
POST /twilio/status            call status callbacks → the Call row
POST /twilio/reminder          an answered reminder call
POST /twilio/reminder/status   its status callbacks
POST /twilio/sms               texts to the TARS number: the owner's answers, else a text session
POST /hooks/n8n                a signed task from n8n → a text session (answer inline, or 202 and reply_to)
WS   /twilio/stream            the media stream → CallSession (signed parameters only; tars.server.streams)
GET  /healthz                  liveness and the number of live calls
/api/…                         the local API (tars.server.api)
/, /calls/…, /signin, …        the web view (tars.web), for the signed-in owner
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tars import metrics, telemetry
from tars.caller import BLOCKED, OWNER, Caller, identify
from tars.calls import instructions
from tars.calls.preopen import Preopener
from tars.graph.call_plan import render
from tars.scheduler import reminder_calls
from tars.server import hooks
from tars.server.api import authorized, router
from tars.server.limits import BodyLimit
from tars.server.streams import STREAM_ROUTE, run_stream, verify_stream
from tars.server.transfer_routes import add_transfer_routes, call_over
from tars.store import pin_attempts
from tars.telephony import messages, security, twiml
from tars.telephony import status as statuses
from tars.telephony.signatures import (
    control_characters_in,
    public_url,
    valid_twilio_signature,
)
from tars.telephony.switchboard import BUSY_MESSAGE, Switchboard, record_sid
from tars.texts.desk import TextDesk
from tars.web import mount as mount_web_view

log = logging.getLogger("tars.server")

PIN_PROMPT = "If you are {owner}, enter your PIN followed by the hash key. Otherwise, please hold."
PIN_RETRY = "That PIN is not right. Please try again."
PIN_GOODBYE = "That PIN is not right. Goodbye."
PIN_LOCKED = "PIN entry is locked after too many wrong tries. Please try again later. Goodbye."
MAX_PIN_TRIES = 3


def xml(document: str) -> Response:
    return Response(document, media_type="application/xml")


def forbidden() -> Response:
    return Response("invalid Twilio signature", status_code=403, media_type="text/plain")


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def _call_id(request: Request) -> int | None:
    try:
        return int(dict(parse_qsl(request.url.query)).get("call_id", ""))
    except ValueError:
        return None


Handler = Callable[[Request], Awaitable[Response]]


def traced(name: str) -> Callable[[Handler], Handler]:
    """The webhook's span: where a call's trace starts (``tars.telemetry``)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            with telemetry.span(name, kind=SpanKind.SERVER, route=request.url.path):
                return await handler(request)

        return run

    return wrap


def create_app(board: Switchboard, api_token: str) -> FastAPI:
    app = FastAPI(title="TARS", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.board = board
    app.state.api_token = api_token
    app.add_middleware(BodyLimit)
    texts = board.texts = TextDesk(board)
    board.preopener = Preopener(board)  # model sessions opened while Twilio connects the stream
    texts.finisher = hooks.finisher(board)
    # board.project, read per request: a reloaded project (tars serve watches the YAML) applies at once

    async def signed_form(request: Request) -> dict[str, str] | None:
        params = await _form(request)
        url = public_url(board.public_base, request.url.path, request.url.query)
        if valid_twilio_signature(
            board.endpoints.twilio_auth_token, url, params, request.headers.get("X-Twilio-Signature")
        ):
            field = control_characters_in(params)
            if field is None:
                return params
            log.warning("refused a webhook to %s: %s holds control characters", request.url.path, field)
            metrics.WEBHOOKS_REFUSED.labels(request.url.path, "control characters").inc()
            return None
        await security.refused(
            board,
            security.SIGNATURE,
            f"a webhook to {request.url.path} with a missing or invalid Twilio signature",
            security.client_of(request),
            route=request.url.path,
        )
        return None

    def connect(caller: Caller, call_sid: str, call_id: int, purpose: str) -> Response:
        trace.get_current_span().set_attributes(
            {"tars.call.id": call_id, "tars.call.purpose": purpose, "tars.caller.role": caller.role}
        )
        board.preopener.open(caller, call_sid, call_id, purpose)  # the greeting waits for no connect
        return xml(board.stream_document(caller, call_sid, call_id, purpose))

    def gather(caller: Caller, call_id: int, tries: int, prompt: str) -> Response:
        action = board.url("/twilio/pin", call_id=call_id, role=caller.role, tries=tries)
        return xml(twiml.gather_pin(action, len(board.project.owner.pin or "") + 1, prompt))

    @app.get("/metrics")
    async def metrics_page(request: Request) -> Response:
        """Prometheus text format; the API token is asked for unless ``server.metrics_public``."""
        if not board.project.section("server").get("metrics_public", False) and not authorized(request):
            return Response(
                "missing or wrong API token (Authorization: Bearer …), or set server.metrics_public: true",
                status_code=401, media_type="text/plain",
            )  # fmt: skip
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse(
            {
                "status": "stopping" if board.shutting_down else "ok",
                "live_calls": len(board.sessions),
                "max_calls": board.max_calls,
                "server": board.id,
            }
        )

    @app.post("/twilio/voice")
    @traced("twilio.voice")
    async def voice(request: Request) -> Response:
        params = await signed_form(request)
        if params is None:
            return forbidden()
        call_sid = params.get("CallSid", "")
        number = params.get("From", "")
        busy, caller = await asyncio.gather(
            board.busy(call_sid), asyncio.to_thread(identify, board.project, board.database, number)
        )
        if busy:
            log.info("call %s from %s refused: at capacity", call_sid, number)
            return xml(twiml.say_and_hang_up(BUSY_MESSAGE))
        if caller.role == BLOCKED:
            return xml(twiml.reject())
        from tars.store.calls import start_call

        project = board.project
        owner = project.owner
        role_needs_pin = project.roles[caller.role].pin if caller.role in project.roles else False
        asks_pin = bool(owner.pin) and (caller.role != OWNER or owner.require_pin or role_needs_pin)
        row = asyncio.ensure_future(
            board.db(
                lambda s: start_call(
                    s,
                    direction="inbound",
                    from_number=number,
                    to_number=params.get("To", ""),
                    sid=call_sid,
                    contact_id=caller.contact_id,
                    status="ringing",
                    callee=caller.name,
                    role=caller.role,
                )
            )
        )
        if not asks_pin:  # a stream follows: its model session opens while the call's row is written
            board.preopener.open(caller, call_sid, _id_of(row), "inbound")
        call = await row
        board.reserve(call_sid)
        if caller.role != OWNER and caller.contact_id is None:
            board.background(board.outbox.notify_owner(f"Incoming call from {number}", kind="unknown_callers"))
        if asks_pin:
            if await board.db(lambda s: pin_attempts.locked(s, number)) is None:
                return gather(caller, call.id, 0, PIN_PROMPT.format(owner=owner.name))
            if caller.role == OWNER or role_needs_pin:  # the PIN is a must: nothing to offer them
                await security.refused(
                    board, security.PIN_LOCKOUT, f"a call from {number}: PIN entry is locked", route="/twilio/voice"
                )
                return await locked_out(call_sid, call.id)
            # Locked: a stranger still reaches the assistant in their own role, with no PIN to try.
        return connect(caller, call_sid, call.id, "inbound")

    async def locked_out(call_sid: str, call_id: int) -> Response:
        from tars.store.calls import update_call

        await board.db(
            lambda s: update_call(
                s, call_id, status="failed", failure_reason="PIN entry locked", ended_at=dt.datetime.now(dt.UTC)
            )
        )
        board.reserved.pop(call_sid, None)
        return xml(twiml.say_and_hang_up(PIN_LOCKED))

    @app.post("/twilio/pin")
    async def pin(request: Request) -> Response:
        params = await signed_form(request)  # the action URL's query (tries, role) is signed too
        if params is None:
            return forbidden()
        query = dict(parse_qsl(request.url.query))
        call_sid, number = params.get("CallSid", ""), params.get("From", "")
        call_id, tries = int(query.get("call_id", "0")), int(query.get("tries", "0"))
        digits = params.get("Digits", "")
        caller = await asyncio.to_thread(identify, board.project, board.database, number)
        owner = board.project.owner
        from tars.store.calls import update_call

        must = caller.role == OWNER or (board.project.roles.get(caller.role) and board.project.roles[caller.role].pin)
        if not digits and not must:
            return connect(caller, call_sid, call_id, "inbound")
        if await board.db(lambda s: pin_attempts.locked(s, number)) is not None:
            await security.refused(
                board, security.PIN_LOCKOUT, f"a PIN from {number}: PIN entry is locked", route="/twilio/pin"
            )
            return await locked_out(call_sid, call_id)
        entered = digits.rstrip("#").encode("utf-8", "replace")
        if digits and owner.pin and hmac.compare_digest(entered, owner.pin.encode()):
            log.info("call %s: owner PIN accepted", call_sid)
            await board.db(lambda s: pin_attempts.record_success(s, number))
            await board.db(lambda s: update_call(s, call_id, role=OWNER, callee=owner.name))
            return connect(Caller(number, OWNER, owner.name, caller.contact_id), call_sid, call_id, "inbound")
        tries += 1
        log.warning("call %s: wrong or missing PIN (try %d of %d)", call_sid, tries, MAX_PIN_TRIES)
        lockout = await board.db(lambda s: pin_attempts.record_failure(s, number))
        if lockout is not None:
            detail = f"{lockout.describe()} (last try from {number})"
            await security.refused(board, security.PIN_LOCKOUT, detail, route="/twilio/pin")
            return await locked_out(call_sid, call_id)
        if tries >= MAX_PIN_TRIES:
            await board.db(
                lambda s: update_call(
                    s, call_id, status="failed", failure_reason="wrong PIN", ended_at=dt.datetime.now(dt.UTC)
                )
            )
            board.reserved.pop(call_sid, None)
            return xml(twiml.say_and_hang_up(PIN_GOODBYE))
        return gather(caller, call_id, tries, PIN_RETRY)

    @app.post("/twilio/sms")
    async def sms(request: Request) -> Response:
        """Texts to the TARS number: the owner's reply to a question asked during a goal call;
        any other text is a text session in the sender's role, answered by SMS."""
        params = await signed_form(request)
        if params is None:
            return forbidden()
        sender, body = params.get("From", ""), params.get("Body", "")
        if sender == board.project.owner.phone and await messages.questions_open_by_sms(board):
            reply = await messages.sms_reply(board, body)
            return xml(twiml.message(reply) if reply else twiml.empty())
        caller = await asyncio.to_thread(identify, board.project, board.database, sender)
        if caller.role == BLOCKED or not body.strip() or board.shutting_down:
            return xml(twiml.empty())
        board.background(texts.reply_by_sms(caller, body))  # answered by REST: tools may take a while
        return xml(twiml.empty())

    @app.post("/hooks/n8n")
    async def n8n_task(request: Request) -> Response:
        """A signed task from n8n: a text session with the role n8n.role declares."""
        return await hooks.task(board, texts, request)

    @app.post("/twilio/status")
    async def status(request: Request) -> Response:
        params = await signed_form(request)
        if params is None:
            return forbidden()
        await statuses.update_status(board.database, params)
        if statuses.is_final(params.get("CallStatus", "")):
            board.wake_scheduler()  # a goal call that ended busy, unanswered or on voicemail: decide its retry
            from tars.store.transfers import finish_connected

            for transfer_id in await board.db(lambda s: finish_connected(s, params.get("CallSid", ""))):
                board.background(call_over(board, transfer_id))  # hung up while put through: summed up
        return Response(status_code=204)

    @app.post("/twilio/outbound")
    @traced("twilio.outbound")
    async def outbound(request: Request) -> Response:
        """A goal call was answered: a person gets the playbook, a machine the voicemail policy."""
        params = await signed_form(request)
        if params is None:
            return forbidden()
        from tars.store.calls import get_call, update_call

        call_id = _call_id(request) or 0
        call = await board.db(lambda s: get_call(s, call_id))
        answered_by = params.get("AnsweredBy", "human")
        if answered_by.startswith("machine") or answered_by == "fax":
            await board.db(lambda s: update_call(s, call_id, status="voicemail"))
            log.info("goal call %s reached %s: voicemail policy", call.sid, answered_by)
            return xml(voicemail_document(board, call))
        if await board.busy(params.get("CallSid", "")):
            return xml(twiml.say_and_hang_up(BUSY_MESSAGE))
        board.reserve(params.get("CallSid", ""))
        callee = Caller(call.to_number, board.project.playbooks[call.playbook].role, None, call.contact_id)
        return connect(callee, params.get("CallSid", ""), call_id, "goal")

    async def reminder_webhook(
        request: Request, then: Callable[[dict[str, str], int], Awaitable[Response]]
    ) -> Response:
        params = await signed_form(request)
        call_id = _call_id(request)
        if params is None or call_id is None:
            return forbidden()
        if params.get("CallSid"):
            await board.db(lambda s: record_sid(s, call_id, params["CallSid"]))
        return await then(params, call_id)

    @app.post("/twilio/reminder")
    @traced("twilio.reminder")
    async def reminder_answered(request: Request) -> Response:
        async def answered(params: dict[str, str], call_id: int) -> Response:
            return xml(await reminder_calls.answer(board, params, call_id))

        return await reminder_webhook(request, answered)

    @app.post("/twilio/reminder/status")
    async def reminder_status(request: Request) -> Response:
        async def changed(params: dict[str, str], call_id: int) -> Response:
            await statuses.update_status(board.database, params)
            if statuses.is_final(params.get("CallStatus", "")):
                await reminder_calls.settle_unannounced(board, call_id)
            return Response(status_code=204)

        return await reminder_webhook(request, changed)

    @app.websocket(STREAM_ROUTE)
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        verified = await verify_stream(board, websocket)
        if verified is None:
            return
        body, call_sid, stream_sid = verified
        await run_stream(board, websocket, body, call_sid, stream_sid)

    add_transfer_routes(app, board, signed_form)
    app.include_router(router)
    mount_web_view(app)
    return app


def voicemail_document(board: Switchboard, call: Any) -> str:
    """What a machine hears: the playbook's message (spoken by Twilio), or nothing."""
    project = board.project
    book = project.playbooks[call.playbook]
    if book.voicemail_action != "leave_message" or not book.voicemail_message:
        return twiml.hang_up()
    values = {**instructions.template_values(project, instructions.local_now(project)), **(call.inputs or {})}
    return twiml.spoken(render(book.voicemail_message, values), then_hang_up=True)


async def _id_of(row: Awaitable[Any]) -> int:
    return int((await row).id)
