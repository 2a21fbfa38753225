"""``POST /hooks/n8n``: a signed task from n8n becomes a text session (``tars.texts``).

The request is checked whole before anything runs (``tars.texts.n8n.check``: secret,
timestamp window, signature, JSON, request id accepted once); a refusal is a one-line
``text/plain`` answer and a log line, nothing else. The session runs in the role
``n8n.role`` declares; its answer comes back in the response if it is ready within
``n8n.answer_within_seconds`` (200), else the response is ``202`` with the session id. An
n8n task is one message: the session closes once it is answered, and when the goal calls
it started have their outcome, the signed result goes to ``reply_to``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tars.caller import Caller
from tars.telephony.switchboard import Switchboard
from tars.texts import n8n
from tars.texts.desk import Finisher, Opened, TextDesk

log = logging.getLogger("tars.hooks")

#: The number a session from n8n is recorded as coming from.
N8N_SENDER = "n8n"


def refused(status: int, reason: str) -> Response:
    return Response(reason + "\n", status_code=status, media_type="text/plain")


async def task(board: Switchboard, texts: TextDesk, request: Request) -> Response:
    body = await request.body()
    project = board.project
    try:
        found = n8n.check(project, request.headers, body)
    except n8n.Refused as exc:
        log.warning("refused an n8n task: %s", exc.reason)
        return refused(exc.status, exc.reason)
    role = str(n8n.settings(project).get("role") or "automation")
    if role not in project.roles:
        log.warning("refused an n8n task: n8n.role %r is not a role in tars.yaml", role)
        return refused(400, f"n8n.role {role!r} is not a role in tars.yaml")
    expires = n8n.expiry(project)
    if not await board.db(lambda s: _claim(s, found, expires)):
        log.warning("refused an n8n task: request id %r was already used (replay)", found.request_id)
        return refused(401, f"request id {found.request_id!r} was already used: a replay is refused")
    if board.shutting_down:
        return refused(503, "TARS is shutting down; send the task again later")
    opened = await texts.open(Caller(N8N_SENDER, role, "n8n"), "n8n", reply_to=found.reply_to)
    answering = asyncio.ensure_future(_answer_and_close(opened, found.message))
    board.tasks.add(answering)
    answering.add_done_callback(board.tasks.discard)
    wait = float(n8n.settings(project).get("answer_within_seconds", 10))
    done, _ = await asyncio.wait({answering}, timeout=wait)
    if done and not answering.exception():
        return JSONResponse({"session_id": opened.call_id, "answer": answering.result(), "status": "answered"})
    return JSONResponse({"session_id": opened.call_id, "status": "running", "reply_to": found.reply_to}, 202)


def _claim(session: Any, found: n8n.Task, expires: Any) -> bool:
    from tars.store.hook_requests import claim

    return claim(session, f"n8n:{found.request_id}", "n8n", expires) and claim(
        session, f"n8n-mac:{found.mac[-64:]}", "n8n", expires
    )


async def _answer_and_close(opened: Opened, message: str) -> str:
    try:
        return await opened.session.send(message)
    finally:
        await opened.session.close()


def finisher(board: Switchboard) -> Finisher:
    """What happens when a text session has closed: an n8n one posts its result to reply_to."""

    async def finish(opened: Opened) -> None:
        if opened.reply_to and opened.result is not None:
            await n8n.post_result(board.project, opened.reply_to, opened.result)

    return finish
