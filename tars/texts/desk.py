"""The text desk: this server's text sessions (SMS, n8n, ``tars send``), opened, continued
and closed.

    TextDesk.message(caller, channel, text)   the open session of that sender (or a new one) answers
    TextDesk.open(caller, channel, reply_to)  a new session: a Call row of kind "text"

Each session is a ``Call`` row (kind ``text``, direction inbound) with the sender's role, a
live heartbeat (``live_on``/``live_until``, renewed with every message) so `tars sessions`
lists it on any server, and the switchboard and persona desks a call's tools use. When it
closes (idle, ``texts.idle_seconds``) the row gets its summary and status; an n8n session
then waits for the goal calls it started to have their outcome and posts the signed
result to its ``reply_to`` (``tars.texts.n8n``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tars.caller import Caller
from tars.calls.text_session import TextSession, TextSetup, text_instruction, text_tools
from tars.persona_changes import Asker, PersonaDesk
from tars.scheduler.goal_requests import CallDesk
from tars.telephony.switchboard import Switchboard, wall

log = logging.getLogger("tars.texts")

#: A live text session's heartbeat lasts this long past its idle time (a message being answered).
HEARTBEAT_MARGIN_SECONDS = 120.0
#: How long an n8n session waits for the goal calls it started before posting what it has.
GOAL_CALL_WAIT_SECONDS = 3600.0
GOAL_CALL_POLL_SECONDS = 0.25

#: What to do with a closed session's result (n8n posts it to ``reply_to``).
Finisher = Callable[["Opened"], Awaitable[None]]


@dataclass
class Opened:
    """One open text session on this server."""

    key: tuple[str, str]
    session: TextSession
    reply_to: str | None = None
    task: asyncio.Task[Any] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # closed, and its result handled
    result: dict[str, Any] | None = None

    @property
    def call_id(self) -> int:
        return self.session.setup.call_id


class TextDesk:
    """This server's text sessions, by sender."""

    def __init__(self, board: Switchboard):
        self.board = board
        self.open_sessions: dict[tuple[str, str], Opened] = {}
        self.by_id: dict[int, Opened] = {}
        self.finisher: Finisher | None = None

    @property
    def idle_seconds(self) -> float:
        return float(self.board.project.section("texts").get("idle_seconds", 60))

    async def message(self, caller: Caller, channel: str, text: str) -> tuple[Opened, str]:
        """``text`` from ``caller``: continues their open session, or starts one."""
        key = (channel, caller.number)
        opened = self.open_sessions.get(key)
        if opened is None or opened.session.closed.is_set():
            opened = await self.open(caller, channel, key=key)
        await self._heartbeat(opened)
        return opened, await opened.session.send(text)

    async def open(
        self, caller: Caller, channel: str, *, key: tuple[str, str] | None = None, reply_to: str | None = None
    ) -> Opened:
        """A new session for ``caller`` (stored at once, so it is listed while it runs)."""
        from tars.store.calls import start_call

        project = self.board.project
        tools = text_tools(project, caller.role)
        now = wall()
        call = await self.board.db(
            lambda s: start_call(
                s,
                direction="inbound",
                from_number=caller.number[:32],
                to_number=(self.board.number or channel)[:32],
                contact_id=caller.contact_id,
                status="in-progress",
                started_at=now,
                callee=caller.name,
                role=caller.role,
                kind="text",
                reply_to=reply_to,
                live_on=self.board.id,
                live_until=now + dt.timedelta(seconds=self.idle_seconds + HEARTBEAT_MARGIN_SECONDS),
            )
        )
        pin_for = tuple(project.section(channel).get("require_pin_for") or ()) if channel == "sms" else ()
        setup = TextSetup(call.id, caller, channel, text_instruction(project, caller, channel, tools), tools, pin_for)
        session = TextSession(
            project, self.board.endpoints, self.board.database, self.board.outbox, setup,
            idle_seconds=self.idle_seconds,
        )  # fmt: skip
        who = caller.name or caller.number
        session.context.switchboard = CallDesk(self.board, call.id, caller.role, who)
        session.context.personas = PersonaDesk(
            lambda: self.board.project,
            self.board.use,
            self.board.database,
            Asker(f"{who} ({caller.role}, {channel} conversation {call.id})", "call", call.id, caller.role),
        )
        opened = Opened(key or (channel, f"#{call.id}"), session, reply_to)
        self.open_sessions[opened.key] = opened
        self.by_id[call.id] = opened
        opened.task = asyncio.ensure_future(self._lifetime(opened))
        self.board.tasks.add(opened.task)
        opened.task.add_done_callback(self.board.tasks.discard)
        log.info("text session %s opened (%s, %s as %s)", call.id, channel, who, caller.role)
        return opened

    async def _heartbeat(self, opened: Opened) -> None:
        from tars.store.calls import update_call

        until = wall() + dt.timedelta(seconds=self.idle_seconds + HEARTBEAT_MARGIN_SECONDS)
        await self.board.db(lambda s: update_call(s, opened.call_id, live_on=self.board.id, live_until=until))

    async def _lifetime(self, opened: Opened) -> None:
        from tars.store.calls import update_call

        try:
            await opened.session.run_until_idle()
        except Exception:
            log.exception("text session %s failed", opened.call_id)
            await opened.session.close("internal error")
        finally:
            if self.open_sessions.get(opened.key) is opened:
                self.open_sessions.pop(opened.key, None)
            await self.board.db(lambda s: update_call(s, opened.call_id, live_on=None, live_until=None))
            log.info("text session %s closed", opened.call_id)
        try:
            opened.result = await self.result(opened)
            if self.finisher is not None:
                await self.finisher(opened)
        except Exception:
            log.exception("the result of text session %s could not be handled", opened.call_id)
        finally:
            opened.finished.set()
            self.by_id.pop(opened.call_id, None)

    async def result(self, opened: Opened, wait_for_calls: bool = True) -> dict[str, Any]:
        """What the session came to: its answers, and the goal calls it started with their outcomes
        (waited for, when ``wait_for_calls``)."""
        calls = await self._goal_calls(opened.call_id)
        if wait_for_calls:
            deadline = asyncio.get_running_loop().time() + GOAL_CALL_WAIT_SECONDS
            while any(not _settled(c) for c in calls) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(GOAL_CALL_POLL_SECONDS)
                calls = await self._goal_calls(opened.call_id)
        session = opened.session
        return {
            "session_id": opened.call_id,
            "status": "closed" if session.closed.is_set() else "open",
            "answer": session.exchanges[-1].answer if session.exchanges else None,
            "answers": [e.answer for e in session.exchanges],
            "calls": [
                {"call_id": c.id, "callee": c.callee, "playbook": c.playbook, "status": c.status,
                 "outcome": c.outcome, "summary": c.summary}
                for c in calls
            ],
        }  # fmt: skip

    async def _goal_calls(self, call_id: int) -> list[Any]:
        from sqlmodel import col, select

        from tars.store.models import Call

        def work(s: Any) -> list[Any]:
            found = list(s.exec(select(Call).where(col(Call.requested_by) == call_id).order_by(col(Call.id))))
            s.commit()
            return found

        return await self.board.db(work)

    async def reply_by_sms(self, caller: Caller, text: str) -> None:
        """A text to the TARS number: answered in the sender's session, back by SMS. Never raises."""
        from tars.texts.sms import parts

        try:
            _opened, answer = await self.message(caller, "sms", text)
            limit = int(self.board.project.section("texts").get("sms_length", 320))
            for part in parts(answer, limit):
                await self.board.outbox.send_sms(caller.number, part)
        except Exception:
            log.exception("the text from %s could not be answered", caller.number)

    async def shutdown(self) -> None:
        for opened in list(self.open_sessions.values()):
            await opened.session.close("server shutting down")


FINAL = ("completed", "busy", "no-answer", "failed", "voicemail")


def _settled(call: Any) -> bool:
    """A goal call whose outcome is known: it ended, and (if it was answered) it has its summary."""
    if call.status not in FINAL:
        return False
    return call.status != "completed" or call.summary is not None
