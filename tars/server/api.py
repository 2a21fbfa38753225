"""The local API the CLI uses to ask the running server to place and watch goal calls.

Bearer-token authenticated: ``server.api_token`` from tars.yaml, else a random token the
server writes to ``<state>/api-token`` (mode 0600) for the CLI on the same machine.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tars.caller import OWNER, Caller
from tars.project import Project
from tars.server.limits import JSONTooDeep, parse_json
from tars.telephony import security

router = APIRouter(prefix="/api")
CLI_CHANNEL = "cli"  # the text sessions `tars send` holds with the server
TOKEN_FILE = "api-token"


def token_path(project: Project) -> Path:
    return project.state_dir / TOKEN_FILE


def read_token(project: Project) -> str | None:
    configured = project.section("server").get("api_token")
    if configured:
        return str(configured)
    try:
        return token_path(project).read_text().strip() or None
    except OSError:
        return None


def ensure_token(project: Project) -> str:
    """The token clients must present; created on first start when none is configured."""
    existing = read_token(project)
    if existing:
        return existing
    path = token_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def authorized(request: Request) -> bool:
    """Constant-time, over bytes: a header with any characters at all compares, never raises."""
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    expected = str(request.app.state.api_token).encode("utf-8", "replace")
    return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), expected)


async def _refused(request: Request) -> JSONResponse:
    detail = f"a local API request ({request.method} {request.url.path}) with a missing or wrong API token"
    board = request.app.state.board
    await security.refused(board, security.API_TOKEN, detail, security.client_of(request), route="/api")
    return _error(401, "missing or wrong API token")


@router.post("/texts")
async def text(request: Request) -> JSONResponse:
    """The owner texts TARS (`tars send`): {"message"} → {"session_id", "answer", "tools"}. The
    owner's text session on this channel continues until it has been idle ``texts.idle_seconds``."""
    if not authorized(request):
        return await _refused(request)
    board = request.app.state.board
    try:
        message = str(parse_json(await request.body())["message"]).strip()
    except JSONTooDeep as exc:
        return _error(400, f'{exc}; send {{"message": "…"}}')
    except (ValueError, KeyError, TypeError, RecursionError):
        return _error(400, 'expected JSON with the message: {"message": "…"}')
    if not message:
        return _error(400, "the message is empty")
    if board.texts is None or board.shutting_down:
        return _error(503, "TARS is shutting down; send it again once tars serve is back")
    owner = board.project.owner
    opened, answer = await board.texts.message(Caller(owner.phone, OWNER, owner.name), CLI_CHANNEL, message)
    tools = opened.session.exchanges[-1].tools if opened.session.exchanges else []
    return JSONResponse({"session_id": opened.call_id, "answer": answer, "tools": tools})


@router.post("/calls")
async def place(request: Request) -> JSONResponse:
    """Place a goal call: {"target", "playbook", "inputs"} → {"call_id", "sid", …}."""
    if not authorized(request):
        return await _refused(request)
    board = request.app.state.board
    try:
        body = parse_json(await request.body())
        target, playbook = str(body["target"]), str(body["playbook"])
        inputs = dict(body.get("inputs") or {})
    except JSONTooDeep as exc:
        return _error(400, f"{exc}; send a flat JSON object with target, playbook and inputs")
    except (ValueError, KeyError, TypeError, RecursionError):
        return _error(400, "expected JSON with target, playbook and inputs")
    from tars.graph.call_plan import InputError
    from tars.store.contacts import resolve_in
    from tars.store.errors import StoreError
    from tars.telephony.switchboard import PlacementError

    try:
        found = await board.db(lambda s: resolve_in(s, board.project, target))
    except StoreError as exc:
        return _error(400, str(exc))
    if found.best is None:
        candidates = [{"name": c.name, "phone": c.phone, "source": c.source} for c in found.candidates]
        return _error(
            409 if candidates else 404,
            f"'{target}' is ambiguous" if candidates else f"nobody called '{target}' in the contacts or the directory",
            candidates=candidates,
        )
    best = found.best
    if board.shutting_down:
        return _error(503, "the server is shutting down")
    if body.get("at"):
        return await _schedule(board, str(body["at"]), playbook, inputs, best)
    try:
        call = await board.place_goal_call(
            number=best.phone, playbook=playbook, inputs=inputs, callee=best.name, contact_id=best.contact_id
        )
    except KeyError as exc:
        return _error(404, str(exc.args[0]))
    except InputError as exc:
        return _error(400, str(exc), problems=exc.problems)
    except PlacementError as exc:
        return _error(502, str(exc))
    return JSONResponse(
        {"call_id": call.id, "sid": call.sid, "status": call.status, "number": best.phone, "callee": best.name},
        status_code=201,
    )


async def _schedule(board: Any, at: str, playbook: str, inputs: dict[str, Any], best: Any) -> JSONResponse:
    """``--at``: stored now, placed by the scheduler when due (inside the calling window)."""
    from tars.errors import UserError
    from tars.graph.call_plan import InputError, prepare_call
    from tars.store.call_queue import schedule_call
    from tars.timeparse import clock_now, parse_future, show

    project = board.project
    try:
        plan = prepare_call(project, playbook, inputs)
        when = parse_future(at, project.owner.timezone, clock_now())
    except KeyError as exc:
        return _error(404, str(exc.args[0]))
    except InputError as exc:
        return _error(400, str(exc), problems=exc.problems)
    except UserError as exc:  # an unreadable or past time
        return _error(400, f"{exc}" + (f" ({exc.hint})" if exc.hint else ""))
    number = str(project.section("telephony")["number"])
    call = await board.db(
        lambda s: schedule_call(
            s,
            from_number=number,
            to_number=best.phone,
            playbook=playbook,
            contact_id=best.contact_id,
            inputs=dict(plan.inputs),
            at=when,
            callee=best.name,
            role=plan.playbook.role,
        )
    )
    board.wake_scheduler()
    return JSONResponse(
        {
            "call_id": call.id,
            "sid": None,
            "status": "queued",
            "number": best.phone,
            "callee": best.name,
            "scheduled_at": when.isoformat(),
            "scheduled": show(when, project.owner.timezone),
        },
        status_code=202,
    )


@router.post("/calls/{call_id}/join")
async def join(call_id: int, request: Request) -> JSONResponse:
    """`tars calls join N`: ring the owner into live goal call N to take it over."""
    if not authorized(request):
        return await _refused(request)
    from tars.store.errors import NotFound
    from tars.telephony.switchboard import LineError
    from tars.telephony.takeover import join as take_over

    try:
        return JSONResponse(await take_over(request.app.state.board, call_id), status_code=202)
    except NotFound as exc:
        return _error(404, str(exc))
    except LineError as exc:
        return _error(409, str(exc))


@router.get("/calls/{call_id}")
async def show(call_id: int, request: Request) -> JSONResponse:
    """The call as it stands: status, transcript, tool invocations, outcome, summary, current step."""
    if not authorized(request):
        return await _refused(request)
    board = request.app.state.board
    from tars.store.calls import call_details, details_json
    from tars.store.errors import NotFound

    try:
        details = await board.db(lambda s: details_json(call_details(s, call_id)))
    except NotFound as exc:
        return _error(404, str(exc))
    live = board.session_for(call_id)
    details["live"] = live is not None
    if live is not None and live.playbook is not None:
        details["step"] = live.playbook.step
    return JSONResponse(details)
