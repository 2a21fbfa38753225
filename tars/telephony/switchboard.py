"""The switchboard: one place that places calls, presses keys and hands calls to fresh streams.

    Switchboard.place_goal_call      Call row → Twilio calls.create(url=/twilio/outbound?call_id=N, AMD)
    Switchboard.place_reminder_call  Call row (the reminder's lease) → calls.create(url=/twilio/reminder…)
    Switchboard.hand_over            <Play digits> then a fresh <Connect><Stream>; the playbook run is
                                     stored on the call, so whichever server the stream reaches goes on
    Switchboard.stream_document      the signed <Connect><Stream> for a call
    Switchboard.hang_up              end a live call through Twilio (the web view's "end call")

The server's routes, the scheduler, the local API and the tools inside a call all place calls
through here; the switchboard knows nothing of FastAPI or of the scheduler (which registers
itself as ``scheduler`` to be woken). It also holds this process's live calls (``sessions``)
and the calls it has answered but not yet streamed (``reserved``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from tars import telemetry
from tars.caller import Caller
from tars.delivery import DeliveryError, Outbox
from tars.endpoints import Endpoints
from tars.graph.call_plan import prepare_call
from tars.project import Project
from tars.telephony import twiml
from tars.telephony.signatures import StreamSigner, public_url, websocket_url

log = logging.getLogger("tars.switchboard")
#: tars.yaml sections a running server reads only when it starts.
RESTART_SECTIONS = ("server", "storage", "telephony")

BUSY_MESSAGE = "Sorry, the assistant is busy on other calls right now. Please try again in a few minutes."
#: A call answered by a webhook but never streamed stops holding a place after this long.
RESERVATION_SECONDS = 60.0
#: Twilio's status callback events TARS follows on the calls it places.
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


def server_id() -> str:
    """This process, as lease owners and live sessions name it: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def wall() -> dt.datetime:
    """The wall clock, for what says which calls are live (session heartbeats), as opposed
    to ``Switchboard.clock``, which tests move to try calling windows."""
    return dt.datetime.now(dt.UTC)


class PlacementError(Exception):
    """The call could not be placed; the message says why and what to do."""

    def __init__(self, message: str, *, unreachable: bool = False, cause: str = ""):
        super().__init__(message)
        self.unreachable = unreachable
        self.cause = cause


class LineError(Exception):
    """Twilio would not change a live call (hang it up); the message says why."""


class Wakeable(Protocol):
    """The scheduler, as the switchboard sees it: something to wake when a call ends."""

    def wake(self) -> None: ...


@dataclass
class Switchboard:
    """This process's telephone exchange: what it needs to place calls, and its live calls."""

    project: Project
    endpoints: Endpoints
    database: Any
    public_base: str
    outbox: Outbox = field(init=False)
    signer: StreamSigner = field(init=False)
    sessions: dict[str, Any] = field(default_factory=dict)  # call sid → this process's CallSession
    reserved: dict[str, float] = field(default_factory=dict)  # call sid → when the webhook answered
    shutting_down: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    scheduler: Any = None  # tars.scheduler.Scheduler once started with the server (a Wakeable)
    texts: Any = None  # tars.texts.desk.TextDesk: this server's text sessions, set by the server
    preopener: Any = None  # tars.calls.preopen.Preopener: model sessions opened ahead, set by the server
    id: str = field(default_factory=server_id)  # this server, as leases and sessions name it
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    #: What a reloaded project goes through before it is used (a simulation keeps its own
    #: state folder and webhook addresses); as it is by default.
    adapt: Callable[[Project], Project] = field(default=lambda project: project)
    _client: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.project, self.endpoints)
        self.signer = StreamSigner.from_secret(self.endpoints.twilio_auth_token)

    # ------------------------------------------------------------------ this process
    def use(self, project: Project) -> None:
        """Serve ``project`` from now on (a reload or a persona change): new calls, webhooks and
        the scheduler take it; live calls keep the one they started with. What is bound at
        start-up (the database, the address, the credentials) needs a restart to change."""
        if project is self.project:
            return
        project = self.adapt(project)
        for section in RESTART_SECTIONS:
            if project.section(section) != self.project.section(section):
                log.warning("tars.yaml %s changed: that takes effect when tars serve restarts", section)
        self.project = project
        self.outbox.project = project

    @property
    def max_calls(self) -> int:
        return int(self.project.section("server").get("max_concurrent_calls", 4))

    @property
    def number(self) -> str:
        return str(self.project.section("telephony").get("number") or "")

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.endpoints.twilio_client()
        return self._client

    async def busy(self, call_sid: str) -> bool:
        """No room for another call: this server's live and answered calls, plus the live
        sessions of every other server on the database, reach ``server.max_concurrent_calls``."""
        from tars.store.call_queue import live_elsewhere

        now = asyncio.get_running_loop().time()
        for sid, when in list(self.reserved.items()):
            if now - when > RESERVATION_SECONDS and sid not in self.sessions:  # answered but never streamed
                del self.reserved[sid]
        live = set(self.sessions) | set(self.reserved)
        if self.shutting_down:
            return True
        if call_sid in live:
            return False
        if len(live) >= self.max_calls:
            return True
        others = await self.db(lambda s: live_elsewhere(s, self.id, wall(), excluding_sid=call_sid))
        return len(live) + others >= self.max_calls

    def reserve(self, call_sid: str) -> None:
        self.reserved[call_sid] = asyncio.get_running_loop().time()

    def background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def db(self, work: Any) -> Any:
        return await self.database.run(work)

    def wake_scheduler(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()

    def session_for(self, call_id: int) -> Any | None:
        return next((s for s in self.sessions.values() if s.setup.call_id == call_id), None)

    async def shutdown(self, grace: float = 10.0) -> None:
        """No new calls; live calls are told goodbye and ended; rows are finished."""
        self.shutting_down = True
        if self.texts is not None:
            await self.texts.shutdown()
        if self.preopener is not None:
            await self.preopener.close_all()
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

    # ------------------------------------------------------------------ TwiML
    def url(self, path: str, **query: Any) -> str:
        return public_url(self.public_base, path, urlencode(query) if query else "")

    def stream_params(self, caller: Caller, call_sid: str, call_id: int, purpose: str) -> dict[str, str]:
        """The stream's ``<Parameter>``s, signed, so the stream cannot be forged."""
        return self.signer.sign(
            {
                "call_sid": call_sid,
                "call_id": str(call_id),
                "from_number": caller.number,
                "role": caller.role,
                "purpose": purpose,
                **telemetry.carrier(),  # the call's trace continues in the stream (tars.telemetry)
            }
        )

    def stream_document(self, caller: Caller, call_sid: str, call_id: int, purpose: str) -> str:
        url = websocket_url(self.public_base, "/twilio/stream")
        return twiml.connect_stream(url, self.stream_params(caller, call_sid, call_id, purpose))

    # ------------------------------------------------------------------ placing calls
    async def _dial(self, **kwargs: Any) -> Any:
        from twilio.base.exceptions import TwilioException

        try:
            return await asyncio.to_thread(lambda: self.client.calls.create(**kwargs))
        except TwilioException as exc:
            raise PlacementError(f"Twilio refused the call to {kwargs.get('to')}: {exc}", cause=str(exc)) from exc
        except OSError as exc:
            raise PlacementError(f"could not reach Twilio: {exc}", unreachable=True, cause=str(exc)) from exc

    async def place_goal_call(
        self,
        *,
        number: str,
        playbook: str,
        inputs: Mapping[str, Any],
        callee: str,
        contact_id: int | None = None,
        call_id: int | None = None,
        **columns: Any,
    ) -> Any:
        """Create (or reuse) the Call row and ask Twilio to dial. Returns the Call.

        Raises ``KeyError``/``InputError`` for a playbook or inputs that do not exist or fit,
        ``PlacementError`` when Twilio will not dial (the row is then failed with the reason).
        ``columns``: the switchboard's call columns (requested_by, report_via, after_outcome)."""
        from tars.store.calls import start_call, update_call

        plan = prepare_call(self.project, playbook, inputs)
        columns.setdefault("role", plan.playbook.role)
        if call_id is None:
            call = await self.db(
                lambda s: start_call(
                    s,
                    direction="outbound",
                    from_number=self.number,
                    to_number=number,
                    contact_id=contact_id,
                    playbook=playbook,
                    inputs=dict(plan.inputs),
                    status="queued",
                    callee=callee,
                    **columns,
                )
            )
            call_id = call.id
        detection = "DetectMessageEnd" if plan.playbook.voicemail_action == "leave_message" else "Enable"
        try:
            created = await self._dial(
                to=number,
                from_=self.number,
                url=self.url("/twilio/outbound", call_id=call_id),
                method="POST",
                status_callback=self.url("/twilio/status"),
                status_callback_method="POST",
                status_callback_event=STATUS_EVENTS,
                machine_detection=detection,
                timeout=30,
            )
        except PlacementError as exc:
            reason = f"Twilio unreachable: {exc.cause}" if exc.unreachable else f"Twilio refused: {exc.cause}"
            await self.db(lambda s: update_call(s, call_id, status="failed", failure_reason=reason))
            raise
        if self.preopener is not None:  # the model session opens while the phone rings
            self.preopener.open(Caller(number, plan.playbook.role, callee, contact_id), created.sid, call_id, "goal")
        return await self.db(lambda s: update_call(s, call_id, sid=created.sid, status="queued"))

    async def place_reminder_call(self, reminder: Any, lease: str, *, late: bool) -> Any:
        """Ring the owner about ``reminder`` (claimed under ``lease``). Raises ``DeliveryError``
        if Twilio will not place the call (the row is failed with the reason)."""
        from tars.store.call_queue import start_reminder_call
        from tars.store.calls import update_call

        owner = self.project.owner.phone
        call = await self.db(
            lambda s: start_reminder_call(
                s, reminder_id=reminder.id, from_number=self.number, to_number=owner, lease=lease
            )
        )
        if late:
            await self.db(lambda s: update_call(s, call.id, late=True))
        try:
            created = await self._dial(
                to=owner, from_=self.number,
                url=self.url("/twilio/reminder", call_id=call.id), method="POST",
                status_callback=self.url("/twilio/reminder/status", call_id=call.id),
                status_callback_method="POST", status_callback_event=STATUS_EVENTS,
                machine_detection="Enable", timeout=30,
            )  # fmt: skip
        except PlacementError as exc:
            reason = (
                f"could not reach Twilio for the reminder call: {exc.cause}"
                if exc.unreachable
                else f"Twilio refused the reminder call: {exc.cause}"
            )
            await self.db(
                lambda s: update_call(
                    s, call.id, status="failed", failure_reason=reason, ended_at=dt.datetime.now(dt.UTC)
                )
            )
            raise DeliveryError(reason) from exc
        await self.db(lambda s: record_sid(s, call.id, created.sid))
        log.info("reminder %s: calling the owner (call %s)", reminder.id, call.id)
        return call

    # ------------------------------------------------------------------ during a call
    async def hang_up(self, call_sid: str) -> None:
        """End a live call, whichever server holds its stream: Twilio's REST API completes it
        (``POST /Calls/{sid}`` with ``Status=completed``), stops the media stream and reports
        the end to the status callback, so the call is recorded as any other that ends.
        https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource"""
        from twilio.base.exceptions import TwilioException

        try:
            await asyncio.to_thread(lambda: self.client.calls(call_sid).update(status="completed"))
        except TwilioException as exc:
            raise LineError(f"Twilio would not hang up call {call_sid}: {exc}") from exc
        except OSError as exc:
            raise LineError(f"could not reach Twilio to hang up call {call_sid}: {exc}") from exc

    async def hand_over(self, session: Any, digits: str) -> None:
        """Press ``digits`` through Twilio, then reconnect the call to a fresh stream. The
        playbook run is stored on the call first, with the model session's resumption handle,
        so the new stream continues at the same step, in the same conversation, on whichever
        server it reaches."""
        from tars.store.calls import update_call

        setup = session.setup
        run = session.playbook
        state = session.run_to_keep()  # with the model session's handle: the fresh stream resumes it
        await self.db(
            lambda s: update_call(
                s, setup.call_id, resume_digits=digits, run_state=state, step=run.step if run else None
            )
        )
        url = websocket_url(self.public_base, "/twilio/stream")
        params = self.stream_params(setup.caller, setup.call_sid, setup.call_id, setup.purpose)
        document = twiml.play_digits_then(digits, url, params)
        await asyncio.to_thread(lambda: self.client.calls(setup.call_sid).update(twiml=document))


def record_sid(session: Any, call_id: int, sid: str) -> None:
    """Store the SID unless a webhook that raced the REST answer already did."""
    from sqlalchemy import update
    from sqlmodel import col

    from tars.store.models import Call

    session.execute(
        update(Call).where(col(Call.id) == call_id, col(Call.sid).is_(None)).values(sid=sid)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
