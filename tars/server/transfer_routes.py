"""The Twilio webhooks of a transfer (``tars.telephony.transfers``), each signature-checked
like every Twilio route, each finding its transfer by the signed ``transfer`` id in its URL:

POST /twilio/transfer/dialled   a cold transfer's <Dial> action (DialCallStatus)
POST /twilio/transfer/hold      the waitUrl a warm transfer's caller hears while holding
POST /twilio/transfer/whisper   the target answered: the brief and <Gather>
POST /twilio/transfer/answer    their keypress or spoken answer
POST /twilio/transfer/leg       the target leg's status callback
POST /twilio/transfer/held      the caller's conference <Dial> action
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import Response

from tars.telephony import transfers, twiml
from tars.telephony.switchboard import Switchboard

log = logging.getLogger("tars.server")

SignedForm = Callable[[Request], Awaitable[dict[str, str] | None]]


def _xml(document: str) -> Response:
    return Response(document, media_type="application/xml")


def _transfer_id(request: Request) -> int | None:
    value = dict(parse_qsl(request.url.query)).get("transfer", "")
    return int(value) if value.isdigit() else None


def add_transfer_routes(app: FastAPI, board: Switchboard, signed_form: SignedForm) -> None:
    async def checked(request: Request) -> tuple[dict[str, str], int] | Response:
        params = await signed_form(request)
        transfer_id = _transfer_id(request)
        if params is None or transfer_id is None:
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        return params, transfer_id

    @app.post("/twilio/transfer/dialled")
    async def dialled(request: Request) -> Response:
        got = await checked(request)
        if isinstance(got, Response):
            return got
        document, over = await transfers.dialled(board, got[1], got[0])
        if over:
            board.background(call_over(board, got[1]))
        return _xml(document)

    @app.post("/twilio/transfer/hold")
    async def hold(request: Request) -> Response:
        if await signed_form(request) is None:
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        return _xml(twiml.hold_music(transfers.HOLD_TEXT))

    @app.post("/twilio/transfer/whisper")
    async def whisper(request: Request) -> Response:
        got = await checked(request)
        if isinstance(got, Response):
            return got
        return _xml(await transfers.whispered(board, got[1]))

    @app.post("/twilio/transfer/answer")
    async def answer(request: Request) -> Response:
        got = await checked(request)
        if isinstance(got, Response):
            return got
        return _xml(await transfers.answered(board, got[1], got[0]))

    @app.post("/twilio/transfer/leg")
    async def leg(request: Request) -> Response:
        got = await checked(request)
        if isinstance(got, Response):
            return got
        await transfers.leg_ended(board, got[1], got[0])
        return Response(status_code=204)

    @app.post("/twilio/transfer/held")
    async def held(request: Request) -> Response:
        got = await checked(request)
        if isinstance(got, Response):
            return got
        document, over = await transfers.held(board, got[1])
        if over:
            board.background(call_over(board, got[1]))
        return _xml(document)


async def call_over(board: Switchboard, transfer_id: int) -> None:
    """The caller was put through and the call has ended: the Call row is completed and
    summed up from the stored transcript, with the transfer said."""
    from tars.calls.aftercall import summarize, with_transfers
    from tars.store.calls import call_details, update_call
    from tars.store.transfers import describe, get_transfer, transfers_of

    try:
        call_id = (await board.db(lambda s: get_transfer(s, transfer_id))).call_id
        details = await board.db(lambda s: call_details(s, call_id))
        done = [describe(t) for t in await board.db(lambda s: transfers_of(s, call_id))]
        lines = [(line.speaker, line.text) for line in details.transcript]
        call = details.call
        who = call.callee or (call.to_number if call.playbook else call.from_number) or "an unknown number"
        kind = (
            f"Goal call to {who} ({call.playbook}), taken over by the owner"
            if call.playbook
            else f"Inbound call from {who}"
        )
        about = with_transfers(kind, done)
        summary = await summarize(board.project, board.endpoints, about, None, lines, about)
        summary = f"{summary} ({'; '.join(done)})" if done and "Transfers:" not in summary else summary
        now = dt.datetime.now(dt.UTC)
        await board.db(lambda s: update_call(s, call_id, status="completed", ended_at=now, summary=summary))
    except Exception:
        log.exception("finishing the call after transfer %s failed", transfer_id)
