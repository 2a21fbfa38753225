"""The model session opened while Twilio is still connecting the call, so the first words
wait for nothing.

Connecting to Gemini Live (TLS, the websocket, the setup and its ``setupComplete``) takes
a noticeable part of a second; done when the media stream starts, it is a silence the
caller hears before every greeting. So the session is opened earlier: for an inbound call
when the voice webhook answers with ``<Connect><Stream>``, for a goal call while the
callee's phone rings. When the stream arrives, its pipeline takes the session already open
(or still opening: waiting for it is never slower than starting over) with the setup it was
opened for, and greets at once.

Any ``tars serve`` process may get the stream. A process uses the session it opened itself
for that call, else it connects as it always did; the session opened elsewhere is then
closed unused: its holder sees on the call's row that a stream started (``started_at``) or
that the call ended, and closes it. One never used is closed after ``LIFETIME_SECONDS``
whatever happens (a call that never streams: no answer, voicemail, a caller who hangs up).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from pipecat.utils.asyncio.task_manager import TaskManager

from tars.caller import Caller
from tars.calls.live_model import CallSetup, live_service
from tars.calls.live_service import GatedGeminiLive
from tars.calls.setup import goal_setup, inbound_setup

log = logging.getLogger("tars.calls")

#: How long a session opened ahead waits for its stream: a goal call rings up to 30 s
#: (``timeout=30`` when it is placed) and answering-machine detection takes a few more.
LIFETIME_SECONDS = 45.0
#: How often the holder looks at the call's row for a stream that started elsewhere.
CHECK_SECONDS = 0.5
PURPOSES = ("inbound", "goal")


class _NoRecorder:
    async def line(self, speaker: str, text: str) -> None:
        log.debug("before the stream: %s: %s", speaker, text)


class Waiting:
    """The call, as the Live service sees it before its stream arrives: nothing to tell yet."""

    recorder: Any = _NoRecorder()
    clock: Any = None
    failure: str | None = None

    def start_batch(self, calls: list[Any]) -> None:
        raise RuntimeError("no tool calls before the call's stream")

    async def result_for(self, call: Any) -> dict[str, Any]:
        raise RuntimeError("no tool calls before the call's stream")

    async def model_going_away(self, time_left: str | None, *, session_ends: bool = False) -> None:
        pass

    async def model_connected(self) -> None:
        pass

    async def model_failed(self, reason: str) -> None:
        self.failure = reason


@dataclass
class Opened:
    """A session opened for one call, and what it was opened with."""

    key: tuple[int, str, str]  # call id, role, purpose: what the stream's signed parameters must say
    setup: CallSetup
    playbook: Any  # the goal call's PlaybookRun, or None
    service: GatedGeminiLive
    waiting: Waiting
    at: float


class Preopener:
    """This process's sessions opened ahead, by call SID."""

    def __init__(self, board: Any):
        self.board = board
        self.held: dict[str, asyncio.Task[Opened | None]] = {}

    def open(self, caller: Caller, call_sid: str, call_id: int | Awaitable[int], purpose: str) -> None:
        """Start opening the model session for a call that is about to stream (no-op if held).
        ``call_id`` may still be on its way: the voice webhook opens the session while it
        writes the call's row (an inbound session needs no row to connect)."""
        if purpose not in PURPOSES or not call_sid or call_sid in self.held or self.board.shutting_down:
            return
        row: asyncio.Future[int]
        if isinstance(call_id, int):
            row = asyncio.get_running_loop().create_future()
            row.set_result(call_id)
        else:
            row = asyncio.ensure_future(call_id)
        task = asyncio.ensure_future(self._open(caller, call_sid, row, purpose))
        self.held[call_sid] = task
        self.board.background(self._watch(call_sid, row, task))

    async def _open(self, caller: Caller, call_sid: str, row: asyncio.Future[int], purpose: str) -> Opened | None:
        board, project, database = self.board, self.board.project, self.board.database
        body = {"from_number": caller.number, "role": caller.role, "purpose": purpose}
        try:
            if purpose == "goal":
                body["call_id"] = str(await row)
                setup, playbook = await goal_setup(project, database, body, call_sid, "")
            elif row.done():
                body["call_id"] = str(row.result())
                setup, playbook = await inbound_setup(project, database, body, call_sid, ""), None
            else:  # the call's row is still being written: the session connects meanwhile
                setup, playbook = await inbound_setup(project, database, body, call_sid, "", new_call=True), None
            waiting = Waiting()
            service = live_service(project, board.endpoints, setup, playbook, waiting)
            await service.open_ahead(TaskManager())
        except Exception as exc:  # the stream connects as it always did
            log.warning("could not open the model session ahead for call %s: %s", body.get("call_id", "?"), exc)
            return None
        try:
            setup = dataclasses.replace(setup, call_id=await row)
        except Exception as exc:  # the call's row was never written: nothing will stream
            log.warning("the call's row for %s was not written (%s): its model session is closed", call_sid, exc)
            await service.close_unused()
            return None
        return Opened((setup.call_id, caller.role, purpose), setup, playbook, service, waiting, time.monotonic())

    async def take(self, call_sid: str, body: Mapping[str, str], stream_sid: str) -> Opened | None:
        """The session opened here for this stream's call, if its parameters match; else None."""
        task = self.held.pop(call_sid, None)
        if task is None:
            return None
        opened = await task
        if opened is None:
            return None
        key = (int(body.get("call_id") or 0), body.get("role", ""), body.get("purpose", ""))
        if key != opened.key or opened.waiting.failure:
            await opened.service.close_unused()
            return None
        log.debug("call %s: the stream takes the model session opened %.2f s ago", key[0], time.monotonic() - opened.at)
        return dataclasses.replace(opened, setup=dataclasses.replace(opened.setup, stream_sid=stream_sid))

    async def _watch(self, call_sid: str, row: asyncio.Future[int], task: asyncio.Task[Opened | None]) -> None:
        """Close the session unused once its stream went elsewhere, the call ended, or time is up."""
        from tars.store.call_queue import FINAL
        from tars.store.calls import get_call

        deadline = time.monotonic() + LIFETIME_SECONDS
        try:
            call_id = await row
        except Exception:  # the call's row was never written: nothing will stream
            if self.held.get(call_sid) is task:
                del self.held[call_sid]
            await _close(task)
            return
        while self.held.get(call_sid) is task and time.monotonic() < deadline:
            await asyncio.sleep(CHECK_SECONDS)
            if self.held.get(call_sid) is not task:
                return  # taken by its stream
            call = await self.board.db(lambda s: get_call(s, call_id))
            if call.started_at is not None or call.status in FINAL:
                break  # streaming on another server, or over
        if self.held.get(call_sid) is task:
            del self.held[call_sid]
            await _close(task)

    async def close_all(self) -> None:
        held, self.held = list(self.held.values()), {}
        for task in held:
            await _close(task)


async def _close(task: asyncio.Task[Opened | None]) -> None:
    opened = await task
    if opened is not None:
        log.debug("call %s: the model session opened ahead is closed unused", opened.key[0])
        await opened.service.close_unused()
