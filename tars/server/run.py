"""Running the server: under uvicorn for `tars serve`, or in-process for tests and simulations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from tars.endpoints import Endpoints
from tars.project import Project
from tars.server.app import create_app
from tars.server.limits import STREAM_MESSAGE_LIMIT
from tars.server.reload import follow
from tars.telephony.reconcile import reconcile
from tars.telephony.switchboard import Switchboard

log = logging.getLogger("tars.server")


@dataclass
class Running:
    server: Switchboard  # this process's switchboard: its live calls, its scheduler
    port: int
    uvicorn: uvicorn.Server
    api_token: str

    @property
    def local_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _GracefulUvicorn(uvicorn.Server):
    """On SIGTERM/SIGINT: stop taking calls, say goodbye on live ones, then stop uvicorn.

    A second signal stops at once. The process then exits normally (uvicorn would re-raise
    the signal and die by it); ``stopped_by`` tells the CLI which signal it was.
    """

    def __init__(self, config: uvicorn.Config, tars: Switchboard, *, handle_signals: bool = True):
        super().__init__(config)
        self.tars = tars
        self.handle_signals = handle_signals
        self.stopped_by: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, unless the server is one part of a bigger program (a test, a simulation):
        then SIGTERM and Ctrl-C stay that program's, and a test runner can still stop it."""
        if not self.handle_signals:
            yield
            return
        with super().capture_signals():
            yield

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.stopped_by is not None:  # a second signal: stop now
            self.should_exit = self.force_exit = True
            return
        self.stopped_by = sig
        log.info("stopping: ending %d live call(s) first", len(self.tars.sessions))

        async def graceful() -> None:
            try:
                await self.tars.shutdown()
            finally:
                self.should_exit = True

        self._graceful = asyncio.ensure_future(graceful())


async def _birthdays(server: Any) -> None:
    """Birthday reminders follow the contacts and tars.yaml's ``birthdays:`` (a changed
    ``days_before`` applies from this start)."""
    from tars.birthdays import sync
    from tars.timeparse import clock_now

    try:
        changes = await server.database.run(lambda s: sync(s, server.project, clock_now()))
    except Exception:
        log.exception("updating the birthday reminders failed")
        return
    if changes.added or changes.moved or changes.cancelled:
        log.info(
            "birthday reminders: %d added, %d moved, %d cancelled",
            len(changes.added), len(changes.moved), len(changes.cancelled),
        )  # fmt: skip


def open_server(project: Project, endpoints: Endpoints, public_base: str | None = None) -> Switchboard:
    """The switchboard a server runs on: the project's database open, its public URL set."""
    from tars.store.database import open_database

    database = open_database(project.database_url)
    base = public_base or project.section("telephony").get("public_url") or "http://127.0.0.1"
    return Switchboard(project, endpoints, database, base)


@contextlib.asynccontextmanager
async def running(
    project: Project,
    endpoints: Endpoints,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    public_base: str | None = None,
    handle_signals: bool = True,
    sockets: list[Any] | None = None,
    watch: bool = False,
    reloaded: Callable[[Project | None], None] | None = None,
    adapt: Callable[[Project], Project] | None = None,
) -> AsyncIterator[Running]:
    """Serve in this event loop until the block ends; always shut down cleanly.

    The scheduler (reminders, scheduled and retried goal calls) runs while the server does.
    ``handle_signals``: SIGTERM/SIGINT end calls gracefully (`tars serve`); False leaves the
    signals to the program the server runs in. ``sockets``: listen on these (already bound,
    shared by ``tars serve --workers``) instead of ``host``/``port``. ``watch``: follow saved
    edits to the YAML (tars.server.reload), telling ``reloaded`` the outcome of each.
    ``adapt``: applied to every project loaded while running (Switchboard.adapt)."""
    from tars.scheduler import Scheduler
    from tars.server.api import ensure_token

    server = open_server(project, endpoints, public_base)
    if adapt is not None:
        server.adapt = adapt
    server.scheduler = Scheduler(server)
    token = ensure_token(project)
    config = uvicorn.Config(
        create_app(server, token),
        host=host,
        port=port,
        # uvicorn's lines go through TARS's handlers (redacted, --log-format) at the levels
        # tars.logs.install chose: no logging config, no levels of its own.
        log_config=None,
        log_level=None,
        lifespan="off",
        ws="websockets-sansio" if _has_sansio() else "websockets",
        ws_max_size=STREAM_MESSAGE_LIMIT,
    )
    web = _GracefulUvicorn(config, server, handle_signals=handle_signals)
    task = asyncio.ensure_future(web.serve(sockets=sockets))
    stop_watching = asyncio.Event()
    follower: asyncio.Future[None] | None = None
    try:
        while not web.started:
            if task.done():
                task.result()  # raises the start-up error (port in use, …)
            await asyncio.sleep(0.01)
        bound = web.servers[0].sockets[0].getsockname()[1]
        await reconcile(server)  # calls a dead process left live, finished as Twilio saw them
        await _birthdays(server)
        await server.scheduler.prune_recordings()  # recordings past recording.keep_days
        server.scheduler.start()
        if watch:
            follower = asyncio.ensure_future(
                follow(project.root, lambda: server.project, server.use, stop_watching, loaded=reloaded or _ignore)
            )
        yield Running(server, bound, web, token)
    finally:
        stop_watching.set()
        if follower is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(follower, 5)
        await server.scheduler.stop()
        await server.shutdown(grace=5)
        await server.outbox.close()
        web.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        server.database.close()


def _ignore(_project: Project | None) -> None:
    pass


def _has_sansio() -> bool:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return False
    return True
