"""Several real `tars serve` processes on one database: each reminder delivered exactly once,
and a process killed between claiming and delivering loses nothing.

The servers are real OS processes (the installed ``tars`` command); reminders go out by
signed webhook to a loopback receiver in the test, which answers slowly enough that both
servers are busy at once. Runs on SQLite and, when reachable, on PostgreSQL at 127.0.0.1:5432.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tars.emulators.gemini.emulator import GeminiEmulator
from tars.scaffold import scaffold
from tars.scenarios.line import API_KEY, PUBLIC, environment
from tars.tools.webhook import verify
from tests.scheduler.helpers import eventually

SECRET = "hook-secret"
PRIVATE = ("TARS_", "TWILIO_", "GEMINI_", "GOOGLE_", "N8N_")


@dataclass
class Receiver:
    """The webhook endpoint: records each request's raw body; answers after ``delay`` seconds."""

    delay: float = 0.0
    hang: bool = False  # never answer (the request stays open)
    bodies: list[bytes] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        headers = request.headers
        self.valid.append(verify(SECRET, headers.get("X-TARS-Timestamp", ""), body,
                                 headers.get("X-TARS-Signature", "")))  # fmt: skip
        await asyncio.sleep(3600 if self.hang else self.delay)
        return web.json_response({"ok": True})

    def reminder_ids(self) -> list[int]:
        import json

        return [json.loads(body)["reminder"]["id"] for body in self.bodies]


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/delivery", receiver.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.port = runner.addresses[0][1]
    try:
        yield receiver
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Setup:
    root: Path
    state: Path
    url: str  # the database both servers use
    gemini_ca_file: str = ""

    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE)}
        extra = {"HOOK_SECRET": SECRET, "TARS_GEMINI_CA_FILE": self.gemini_ca_file}
        return {**clean, **environment(self.state), **extra}


@pytest.fixture
def setup(tmp_path: Path, database_url: str) -> Iterator[Setup]:
    """A project whose reminders go by webhook, on SQLite or a fresh PostgreSQL schema; its
    model settings point at a Gemini emulator, which `tars serve` asks about them at start-up."""
    root = tmp_path / "p"
    scaffold(root)
    with GeminiEmulator(api_key=API_KEY).running_in_thread() as gemini:
        config = root / "tars.yaml"
        config.write_text(
            config.read_text().replace("  voice: Charon\n", f"  voice: Charon\n  base_url: {gemini.base_url}\n")
        )
        yield Setup(root, tmp_path / "state", database_url, gemini.ca_file)


def configure(setup: Setup, receiver: Receiver) -> None:
    config = setup.root / "tars.yaml"
    text = config.read_text().replace("  reminders: call\n", "  reminders: webhook\n").replace(
        "  late_reminders:\n",
        f"  webhook:\n    url: http://127.0.0.1:{receiver.port}/delivery\n    secret: ${{HOOK_SECRET}}\n"
        "    timeout_seconds: 30\n    retries: 0\n  late_reminders:\n",
    )  # fmt: skip
    # Reminders added by another process are seen at the next poll (2 s by default); servers
    # that poll often all get a share of a batch (one that finishes it alone proves nothing).
    config.write_text(text + f"\nstorage:\n  url: '{setup.url}'\n\nscheduler:\n  poll_seconds: 0.2\n")


def add_due(setup: Setup, count: int) -> list[int]:
    from tars.store.database import connect
    from tars.store.models import Reminder

    due = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with connect(setup.url) as db, db.session() as session:
        rows = [Reminder(text=f"reminder {i}", due=due, timezone="Europe/London", channel="webhook")
                for i in range(count)]  # fmt: skip
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows if r.id is not None]


def states(setup: Setup) -> dict[str, int]:
    from sqlalchemy import func
    from sqlmodel import select

    from tars.store.database import connect
    from tars.store.models import Reminder

    with connect(setup.url) as db, db.session() as session:
        rows = session.exec(select(Reminder.status, func.count()).group_by(Reminder.status)).all()
        return {status: count for status, count in rows}


class Servers:
    """Real `tars serve` processes; each is ended (SIGTERM, then SIGKILL) by its own pid."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.killed = 0

    def start(self) -> int:
        port = free_port()
        log = self.setup.root.parent / f"serve-{len(self.processes)}.log"
        tars = Path(sys.executable).with_name("tars")
        argv = [str(tars), "--project", str(self.setup.root), "serve", "--port", str(port), "--public-url", PUBLIC,
                "--log-level", "info"]  # fmt: skip
        with log.open("wb") as out:
            self.processes.append(subprocess.Popen(argv, env=self.setup.env(), stdout=out, stderr=subprocess.STDOUT))
        self.logs.append(log)
        return port

    async def healthy(self, port: int, timeout: float = 60) -> None:
        async def ok() -> bool:
            try:
                async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                if any(p.poll() is not None for p in self.processes):
                    raise AssertionError("a server exited:\n" + self.output()) from None
                return False

        await eventually(ok, timeout, f"the server on port {port}")

    def delivered_by(self) -> list[int]:
        return [len(re.findall(r"reminder \d+ delivered", log.read_text())) for log in self.logs]

    def output(self) -> str:
        return "\n".join(log.read_text()[-3000:] for log in self.logs)

    def stop(self) -> None:
        self.killed = 0
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                self.killed += 1
                process.kill()
                process.wait(5)

    def exited_gracefully(self) -> bool:
        """Every server ended on SIGTERM by itself (none had to be killed)."""
        return self.killed == 0 and all(p.returncode == 0 for p in self.processes)


async def test_two_servers_deliver_200_reminders_exactly_once(setup: Setup) -> None:
    async with receiving(Receiver(delay=0.2)) as receiver:
        configure(setup, receiver)
        servers = Servers(setup)
        try:
            ports = [servers.start(), servers.start()]
            for port in ports:
                await servers.healthy(port)
            ids = await asyncio.to_thread(add_due, setup, 200)

            async def all_delivered() -> bool:
                return (await asyncio.to_thread(states, setup)) == {"delivered": 200}

            await eventually(all_delivered, 60, "every reminder delivered")
        finally:
            # A graceful stop (SIGTERM) ends each server only after the deliveries it has claimed:
            # once both have exited, every delivery there will ever be has reached the receiver.
            await asyncio.to_thread(servers.stop)
        assert servers.exited_gracefully()
    received = receiver.reminder_ids()
    assert sorted(received) == sorted(ids)  # each one, once
    assert all(receiver.valid)
    counts = servers.delivered_by()
    assert sum(counts) == 200 and all(counts), f"deliveries per server: {counts}"


KILLED_AFTER_CLAIM = textwrap.dedent("""
    import asyncio, os, signal, sys
    from pathlib import Path

    import tars.scheduler.reminders as reminders
    from tars.loading import load_project
    from tars.scheduler import Scheduler
    from tars.endpoints import Endpoints
    from tars.server.run import open_server


    async def die(scheduler, reminder, lease, slot=None):  # the claim is committed; delivery never starts
        print(f"claimed {reminder.id} under {lease}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


    async def main():
        project = load_project(Path(sys.argv[1]))
        server = open_server(project, Endpoints.from_project(project))
        reminders.deliver = die
        server.scheduler = Scheduler(server, lease_seconds=float(sys.argv[2]))
        await server.scheduler.tick()
        await asyncio.sleep(60)

    asyncio.run(main())
""")


async def test_a_server_killed_after_claiming_loses_nothing(setup: Setup) -> None:
    async with receiving(Receiver()) as receiver:
        configure(setup, receiver)
        [rid] = await asyncio.to_thread(add_due, setup, 1)
        doomed = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", KILLED_AFTER_CLAIM, str(setup.root), "3"],
            env=setup.env(), capture_output=True, timeout=60,
        )  # fmt: skip
        assert doomed.returncode == -signal.SIGKILL, doomed.stderr.decode()[-2000:]
        assert doomed.stdout.decode().startswith(f"claimed {rid} under ")
        assert await asyncio.to_thread(states, setup) == {"delivering": 1}
        servers = Servers(setup)
        try:
            await servers.healthy(servers.start())

            async def delivered() -> bool:
                return (await asyncio.to_thread(states, setup)) == {"delivered": 1}

            await eventually(delivered, 30, "the reminder delivered after the restart")
        finally:
            await asyncio.to_thread(servers.stop)  # graceful: nothing can arrive after it
        assert servers.exited_gracefully()
    assert receiver.reminder_ids() == [rid] and all(receiver.valid)
    from tars.store.database import connect
    from tars.store.reminders import get_reminder

    with connect(setup.url) as db, db.session() as session:
        row = get_reminder(session, rid)
    assert row.attempts == 2 and row.lease_owner is None  # the dead claim, then the delivery
