"""Who may see the web view: nothing personal without a session, no action without its CSRF
token, sign-in with the API token only, and rate limited across processes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tars.emulators.gemini.emulator import ScriptedBrain
from tests.server.harness import TOKEN, Line, make_project
from tests.web.helpers import csrf_of, jar, sign_in


def quiet() -> ScriptedBrain:
    return ScriptedBrain([])


def schedule(line: Line) -> int:
    """A goal call to the dentist tomorrow, as `tars call dentist --at tomorrow` stores it."""
    from tars.store.call_queue import schedule_call

    with line.db() as db, db.session() as s:
        call = schedule_call(
            s,
            from_number=line.number,
            to_number="+441632960111",
            playbook="book_appointment",
            inputs={"preferred_day": "Wednesday"},
            at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            callee="Bright Smile Dental",
            role="business",
        )
        return int(call.id)


def call_row(line: Line, call_id: int) -> Any:
    from tars.store.calls import get_call

    with line.db() as db, db.session() as s:
        return get_call(s, call_id)


async def test_nothing_personal_without_a_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, quiet) as line, aiohttp.ClientSession(cookie_jar=jar()) as http:
        base = line.server.local_url
        call_id = schedule(line)
        for path in ("/", f"/calls/{call_id}"):
            async with http.get(base + path, allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (303, "/signin"), path
        for path in ("/events", f"/calls/{call_id}/events"):
            async with http.get(base + path) as r:
                assert r.status == 401, path
        async with http.post(f"{base}/calls/{call_id}/cancel", data={"csrf": "x"}) as r:
            assert r.status == 401
        async with http.get(f"{base}/signin") as r:
            page = await r.text()
        assert "Bright Smile" not in page and "dentist" not in page
        async with http.get(f"{base}/healthz") as r:  # unchanged
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with http.post(f"{base}/twilio/voice", data={"CallSid": "CA1"}) as r:  # unchanged: unsigned
            assert r.status == 403
        token = line.server.api_token
        async with http.post(f"{base}/signin", data={"token": token}, allow_redirects=False) as r:
            assert r.status == 403  # the right token, but not from the sign-in form (no double-submit nonce)
            assert not [c for c in r.headers.getall("Set-Cookie", []) if c.startswith("tars_session=")]
        forged = "eyJleHAiOjk5OTk5OTk5OTksInNpZCI6ImEifQ.AAAA"  # a session the server never signed
        async with http.get(f"{base}/", cookies={"tars_session": forged}, allow_redirects=False) as r:
            assert r.status == 303
    assert call_row(line, call_id).status == "queued"


async def test_sign_in_gives_a_strict_cookie_and_every_action_needs_its_csrf_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, quiet) as line, aiohttp.ClientSession(cookie_jar=jar()) as http:
        base, token = line.server.local_url, line.server.api_token
        call_id = schedule(line)
        from tars.store.reminders import add_reminder

        with line.db() as db, db.session() as s:  # a secret said aloud and written down stays masked
            now = dt.datetime.now(dt.UTC)
            reminder = add_reminder(
                s, text=f"read out {TOKEN} and {token}", due=now + dt.timedelta(hours=2), timezone="UTC", now=now
            ).id

        wrong = await sign_in(http, base, "not-the-token")
        assert wrong.status == 401
        answer = await sign_in(http, base, token)
        assert (answer.status, answer.headers["Location"]) == (303, "/")
        cookie = next(c for c in answer.headers.getall("Set-Cookie") if c.startswith("tars_session="))
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert "Secure" not in cookie  # plain http here
        assert token not in cookie

        async with http.get(f"{base}/") as r:
            page = await r.text()
        assert r.status == 200 and "Bright Smile Dental" in page and f'data-call="{call_id}"' in page
        assert "read out" in page and TOKEN not in page and token not in page

        csrf = await csrf_of(http, base)
        async with http.post(f"{base}/calls/{call_id}/cancel", data={}, allow_redirects=False) as r:
            assert r.status == 403 and "CSRF" in await r.text()
        async with http.post(f"{base}/calls/{call_id}/cancel", data={"csrf": csrf + "x"}, allow_redirects=False) as r:
            assert r.status == 403
        assert call_row(line, call_id).status == "queued"
        async with http.post(f"{base}/calls/{call_id}/cancel", data={"csrf": csrf}, allow_redirects=False) as r:
            assert r.status == 303
        cancelled = call_row(line, call_id)
        assert cancelled.status == "failed" and cancelled.follow_up == "none"
        async with http.post(f"{base}/calls/{call_id}/cancel", data={"csrf": csrf}) as r:  # twice: said so
            assert r.status == 409 and f"call {call_id} was already cancelled" in await r.text()
        async with http.post(f"{base}/calls/{call_id}/end", data={"csrf": csrf}) as r:
            assert r.status == 409 and f"Call {call_id} is not live." in await r.text()

        async with http.post(f"{base}/reminders/{reminder}/cancel", data={}, allow_redirects=False) as r:
            assert r.status == 403
        async with http.post(f"{base}/reminders/{reminder}/cancel", data={"csrf": csrf}) as r:
            assert r.status == 200 and f"Reminder {reminder} is cancelled." in await r.text()
        from tars.store.reminders import get_reminder

        with line.db() as db, db.session() as s:
            assert get_reminder(s, reminder).status == "cancelled"

        async with http.post(f"{base}/signout", data={"csrf": csrf}, allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(f"{base}/", allow_redirects=False) as r:
            assert r.status == 303  # signed out: the cookie is gone

    async with Line(project, quiet) as line, aiohttp.ClientSession(cookie_jar=jar()) as http:
        behind_tls = await sign_in(http, line.server.local_url, line.server.api_token, **{"X-Forwarded-Proto": "https"})
        cookie = next(c for c in behind_tls.headers.getall("Set-Cookie") if c.startswith("tars_session="))
        assert "Secure" in cookie


async def test_wrong_tokens_lock_sign_in_for_every_server_on_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tars.store import sign_in_attempts

    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, quiet) as line, aiohttp.ClientSession(cookie_jar=jar()) as http:
        base, token = line.server.local_url, line.server.api_token
        statuses = [(await sign_in(http, base, f"guess-{n}")).status for n in range(sign_in_attempts.PER_ADDRESS)]
        assert statuses == [401] * (sign_in_attempts.PER_ADDRESS - 1) + [429]
        locked = await sign_in(http, base, token)
        assert locked.status == 429  # the right token too, while locked
        other = await line.another_server()  # another tars serve on the same database
        assert (await sign_in(http, other.local_url, token)).status == 429
    with line.db() as db, db.session() as s:
        assert sign_in_attempts.locked(s, "127.0.0.1") is not None
