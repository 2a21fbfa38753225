"""The web view's routes, on `tars serve`'s own port (see ``tars.web``).

GET  /                        live calls, scheduled calls, reminders, recent calls
GET  /events                  server-sent events: the live calls, with their latest lines
GET  /calls/{id}              one call: transcript, tool log, outcome, summary
GET  /calls/{id}/events       server-sent events: the call's new lines, tools and status
POST /calls/{id}/cancel       cancel a scheduled call
POST /calls/{id}/end          end a live call (through Twilio's REST API)
POST /reminders/{id}/cancel   cancel a reminder
GET  /signin, POST /signin    sign in with the API token; POST /signout
GET  /static/…                the style sheet and the script (no session needed: nothing personal)

Every page but the sign-in needs a session; every POST its CSRF token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup

from tars.config.secrets import mask_text
from tars.store import sign_in_attempts
from tars.store.call_queue import cancel_scheduled_call
from tars.store.calls import add_line, get_call
from tars.store.errors import NotFound, StoreError
from tars.store.reminders import cancel
from tars.telephony.switchboard import LineError
from tars.web import access, views

log = logging.getLogger("tars.web")

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
#: How often a live view looks at the database for what is new (seconds).
POLL_SECONDS = 0.5
#: A comment this often keeps proxies from closing a quiet event stream (seconds).
KEEPALIVE_SECONDS = 15.0

NOTES = {
    "call-cancelled": "Call {id} is cancelled: it will not be placed.",
    "reminder-cancelled": "Reminder {id} is cancelled.",
    "call-ending": "Ending call {id}: Twilio is hanging up.",
    "signed-out": "Signed out.",
}

HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
}

router = APIRouter()


class Verbatim(str):
    """A value the server made (a CSRF token) that masking must not touch: a secret's digits
    inside a random token would otherwise break the token."""


@pass_context
def _finalize(context: Any, value: Any) -> Any:
    """Every value a template prints is masked: no secret ever reaches a page."""
    if value is None:
        return ""
    if isinstance(value, Verbatim):
        return str(value)
    hidden = context.get("secrets") or frozenset()
    if isinstance(value, Markup):
        return Markup(mask_text(str(value), hidden))
    return mask_text(str(value), hidden)


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    finalize=_finalize,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _secrets(request: Request) -> frozenset[str]:
    board = request.app.state.board
    return frozenset({*board.project.secrets, str(request.app.state.api_token)})


def _mask(request: Request) -> views.Mask:
    hidden = _secrets(request)
    return lambda text: mask_text(text, hidden)


def page(request: Request, name: str, status: int = 200, session_id: str | None = None, **values: Any) -> HTMLResponse:
    board = request.app.state.board
    html = templates.get_template(name).render(
        secrets=_secrets(request),
        csrf=Verbatim(access.keys(request).csrf(session_id)) if session_id else "",
        persona=board.project.persona.name,
        owner=board.project.owner.name,
        **values,
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _back(path: str, note: str | None = None, **ids: int) -> RedirectResponse:
    query = f"?note={note}" + "".join(f"&{k}={v}" for k, v in ids.items()) if note else ""
    return RedirectResponse(path + query, status_code=303, headers=HEADERS)


def _note(request: Request) -> str:
    template = NOTES.get(request.query_params.get("note", ""))
    if template is None:
        return ""
    raw = request.query_params.get("id", "")
    return template.format(id=int(raw) if raw.isdigit() else "")


def _refused(status: int, message: str) -> Response:
    return Response(message, status_code=status, media_type="text/plain", headers=HEADERS)


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


async def _action(request: Request) -> tuple[str | None, Response | None]:
    """A POST from the owner: their session and its CSRF token, or the refusal to send."""
    session_id = access.session_of(request)
    if session_id is None:
        return None, _refused(401, "sign in first: this action needs a session")
    if not access.csrf_ok(request, await _form(request), session_id):
        return None, _refused(403, "missing or wrong CSRF token: reload the page and try again")
    return session_id, None


# --------------------------------------------------------------------------- signing in


def _sign_in_page(request: Request, status: int = 200, error: str = "", note: str = "") -> HTMLResponse:
    nonce = secrets.token_urlsafe(18)
    response = page(request, "signin.html", status, sign_in_nonce=Verbatim(nonce), error=error, note=note)
    access.set_cookie(response, request, access.SIGN_IN_COOKIE, nonce, max_age=3600)
    return response


@router.get("/signin", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> Response:
    if access.session_of(request) is not None:
        return _back("/")
    return _sign_in_page(request, note=_note(request))


@router.post("/signin")
async def sign_in(request: Request) -> Response:
    board = request.app.state.board
    form = await _form(request)
    if not access.same(form.get(access.CSRF_FIELD), request.cookies.get(access.SIGN_IN_COOKIE, "")):
        return _sign_in_page(request, 403, "The sign-in form expired: enter the token again.")
    address = access.client_address(request)
    until = await board.db(lambda s: sign_in_attempts.locked(s, address))
    if until is not None:
        log.warning("web sign-in from %s refused: locked until %s", address, f"{until:%H:%M} UTC")
        return _sign_in_page(
            request, 429, f"Too many wrong tokens: signing in is locked until {until:%Y-%m-%d %H:%M} UTC."
        )
    if not access.same(form.get("token", "").strip(), str(request.app.state.api_token)):
        until = await board.db(lambda s: sign_in_attempts.record_failure(s, address))
        log.warning("web sign-in from %s: wrong API token", address)
        if until is not None:
            return _sign_in_page(
                request, 429, f"Too many wrong tokens: signing in is locked until {until:%Y-%m-%d %H:%M} UTC."
            )
        return _sign_in_page(request, 401, "That is not the API token.")
    await board.db(lambda s: sign_in_attempts.record_success(s, address))
    log.info("web sign-in from %s", address)
    response = _back("/")
    access.set_cookie(
        response, request, access.SESSION_COOKIE, access.keys(request).new_session(), access.SESSION_DAYS * 86400
    )
    access.clear_cookie(response, request, access.SIGN_IN_COOKIE)
    return response


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    _session_id, refused = await _action(request)
    if refused is not None:
        return refused
    response = _back("/signin", "signed-out")
    access.clear_cookie(response, request, access.SESSION_COOKIE)
    return response


# --------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    session_id = access.session_of(request)
    if session_id is None:
        return _back("/signin")
    board = request.app.state.board
    mask = _mask(request)
    data = await board.db(lambda s: views.dashboard(s, board.project, mask, dt.datetime.now(dt.UTC)))
    return page(request, "index.html", session_id=session_id, note=_note(request), **data)


@router.get("/calls/{call_id:int}", response_class=HTMLResponse)
async def call(call_id: int, request: Request) -> Response:
    session_id = access.session_of(request)
    if session_id is None:
        return _back("/signin")
    board = request.app.state.board
    mask = _mask(request)
    try:
        data = await board.db(lambda s: views.call_page(s, board.project, call_id, mask))
    except NotFound:
        return page(request, "missing.html", 404, session_id=session_id, what=f"There is no call {call_id}.")
    return page(request, "call.html", session_id=session_id, call=data, note=_note(request))


# --------------------------------------------------------------------------- live updates


def _event(name: str, data: Any, event_id: str | None = None) -> bytes:
    lines = [f"event: {name}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False, default=str))
    return ("\n".join(lines) + "\n\n").encode()


def _stream(events: AsyncIterator[bytes]) -> StreamingResponse:
    headers = {**HEADERS, "X-Accel-Buffering": "no"}  # nginx: pass each event on at once
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def _watching(request: Request) -> AsyncIterator[float]:
    """Ticks every ``POLL_SECONDS`` while the browser is there and the server is not stopping
    (a stream left open would hold up a graceful stop); yields the event loop's time."""
    board = request.app.state.board
    loop = asyncio.get_running_loop()
    while not board.shutting_down and not await request.is_disconnected():
        yield loop.time()
        await asyncio.sleep(POLL_SECONDS)


@router.get("/events")
async def live_events(request: Request) -> Response:
    if access.session_of(request) is None:
        return _refused(401, "sign in first")
    board = request.app.state.board
    mask = _mask(request)

    async def events() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        last: Any = None
        quiet_since = asyncio.get_running_loop().time()
        async for now in _watching(request):
            live = await board.db(lambda s: views.live_list(s, board.project, mask, dt.datetime.now(dt.UTC)))
            if live != last:
                last, quiet_since = live, now
                yield _event("live", live)
            elif now - quiet_since > KEEPALIVE_SECONDS:
                quiet_since = now
                yield b": still here\n\n"

    return _stream(events())


def _cursor(raw: str | None) -> tuple[int, int]:
    try:
        line, tool = (raw or "").split(".")
        return max(0, int(line)), max(0, int(tool))
    except ValueError:
        return 0, 0


@router.get("/calls/{call_id:int}/events")
async def call_events(call_id: int, request: Request) -> Response:
    if access.session_of(request) is None:
        return _refused(401, "sign in first")
    board = request.app.state.board
    mask = _mask(request)
    # Where the page left off (its data-cursor), or the last event a reconnecting browser saw.
    after_line, after_tool = _cursor(request.headers.get("Last-Event-ID") or request.query_params.get("after"))

    async def events() -> AsyncIterator[bytes]:
        nonlocal after_line, after_tool
        yield b"retry: 2000\n\n"
        last_call: Any = None
        quiet_since = asyncio.get_running_loop().time()
        async for now in _watching(request):
            try:
                update = await board.db(
                    lambda s, line=after_line, tool=after_tool: views.call_update(
                        s, board.project, call_id, line, tool, mask
                    )
                )
            except NotFound:
                yield _event("end", {"reason": "no such call"})
                return
            after_line, after_tool = _cursor(update["cursor"])
            if update["lines"] or update["tools"] or update["call"] != last_call:
                last_call, quiet_since = update["call"], now
                body = {k: update[k] for k in ("call", "lines", "tools")}
                yield _event("update", body, update["cursor"])
            elif now - quiet_since > KEEPALIVE_SECONDS:
                quiet_since = now
                yield b": still here\n\n"
            ended = update["ended_at"]
            if update["call"]["final"] and (
                update["summarised"]
                or ended is None
                or (dt.datetime.now(dt.UTC) - ended).total_seconds() > views.SUMMARY_WAIT_SECONDS
            ):
                yield _event("end", {"status": update["call"]["status"]})
                return

    return _stream(events())


# --------------------------------------------------------------------------- actions


@router.post("/calls/{call_id:int}/cancel")
async def cancel_call(call_id: int, request: Request) -> Response:
    return await _cancelling(request, lambda s, now: cancel_scheduled_call(s, call_id, now), "call", call_id)


@router.post("/reminders/{reminder_id:int}/cancel")
async def cancel_reminder(reminder_id: int, request: Request) -> Response:
    return await _cancelling(request, lambda s, now: cancel(s, reminder_id, now), "reminder", reminder_id)


async def _cancelling(request: Request, work: Callable[[Any, dt.datetime], Any], what: str, item: int) -> Response:
    """A cancel button: checked like every action, done in the store, back to the front page."""
    session_id, refused = await _action(request)
    if refused is not None:
        return refused
    board = request.app.state.board
    try:
        await board.db(lambda s: work(s, dt.datetime.now(dt.UTC)))
    except StoreError as exc:
        return page(request, "missing.html", 409, session_id=session_id, what=str(exc))
    log.info("%s %s cancelled from the web view", what, item)
    return _back("/", f"{what}-cancelled", id=item)


@router.post("/calls/{call_id:int}/end")
async def end_call(call_id: int, request: Request) -> Response:
    session_id, refused = await _action(request)
    if refused is not None:
        return refused
    board = request.app.state.board
    try:
        found = await board.db(lambda s: get_call(s, call_id))
    except StoreError as exc:
        return page(request, "missing.html", 404, session_id=session_id, what=str(exc))
    if found.status not in views.LIVE_STATUSES or not found.sid:
        return page(request, "missing.html", 409, session_id=session_id, what=f"Call {call_id} is not live.")
    try:
        await board.hang_up(found.sid)
    except LineError as exc:
        return page(request, "missing.html", 502, session_id=session_id, what=str(exc))
    await board.db(lambda s: add_line(s, call_id, "system", "call ended by the owner from the web view"))
    log.info("call %s ended from the web view", call_id)
    return _back(f"/calls/{call_id}", "call-ending", id=call_id)
