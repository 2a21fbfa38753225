"""`tars serve --workers N`: N server processes on one listening socket and one database.

The parent binds the socket once and starts each worker with the ``spawn`` method (a fresh
interpreter: no event loop, thread or database connection is inherited), handing it the
socket as uvicorn's own multi-worker mode does; the kernel spreads connections among the
workers. Each worker is a whole TARS server with its own switchboard and scheduler: calls,
their messages and their sessions live in the database, so a webhook or stream for any call
may reach any worker (``tars sessions`` lists them all).

Metrics are counted across the workers: the parent gives them one fresh folder for
prometheus_client's multiprocess mode (``tars.metrics``), and a scrape of ``/metrics`` that
reaches any worker reports them all.

SIGTERM or Ctrl-C reaches every worker, which ends its calls gracefully; the parent waits for
them (a second signal stops them at once). A worker that dies on its own is started again,
and its calls are reaped by the others once their sessions lapse.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tars import metrics, telemetry

log = logging.getLogger("tars.server")

#: A worker that dies sooner than this after starting is not restarted (it would die again).
MIN_LIFETIME_SECONDS = 5.0
#: How long the parent waits for workers to end their calls after SIGTERM.
STOP_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class WorkerOptions:
    """What each worker needs to rebuild the server the parent was asked for (picklable)."""

    project_root: str
    public_base: str
    log_level: str
    log_format: str = "text"


def listen(host: str, port: int) -> socket.socket:
    """The one socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def worker_main(options: WorkerOptions, sock: socket.socket) -> None:
    """One worker process: the project loaded afresh, the server run on the shared socket."""
    import asyncio
    import os

    os.setpgrp()  # a Ctrl-C at the terminal reaches the parent alone, which stops each worker once

    from tars.endpoints import Endpoints
    from tars.loading import load_project
    from tars.logs import install
    from tars.server.run import running

    level = "DEBUG" if options.log_level.lower() == "trace" else options.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    project = load_project(Path(options.project_root))
    install(options.log_level, project.secrets, json_lines=options.log_format == "json")
    telemetry.install(project.section("telemetry"))
    endpoints = Endpoints.from_project(project)

    async def main() -> None:
        async with running(
            project,
            endpoints,
            public_base=options.public_base,
            sockets=[sock],
            watch=True,
        ) as server:
            while not server.uvicorn.should_exit:
                await asyncio.sleep(0.2)

    asyncio.run(main())


class Workers:
    """The parent: starts the workers, restarts one that dies, stops them all on a signal."""

    def __init__(self, options: WorkerOptions, sock: socket.socket, count: int):
        self.options = options
        self.sock = sock
        self.count = count
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[Any] = []
        self.started_at: dict[int, float] = {}
        self.stopping: int | None = None

    def _start(self) -> Any:
        process = self.context.Process(target=worker_main, args=(self.options, self.sock), daemon=False)
        process.start()
        self.started_at[process.pid] = time.monotonic()
        log.info("worker %s started", process.pid)
        return process

    def _signal(self, sig: int, frame: Any) -> None:
        first = self.stopping is None
        self.stopping = sig
        for process in self.processes:
            if not process.is_alive():
                continue
            if first:  # each worker ends its calls gracefully
                process.terminate()
            else:  # a second signal: at once
                process.kill()

    def run(self) -> int | None:
        """Until stopped; returns the signal that stopped the workers."""
        previous = {s: signal.signal(s, self._signal) for s in (signal.SIGTERM, signal.SIGINT)}
        # Set before any worker starts: prometheus_client picks its mode when first imported.
        figures = tempfile.mkdtemp(prefix="tars-metrics-")
        os.environ[metrics.MULTIPROCESS_ENV] = figures
        try:
            self.processes = [self._start() for _ in range(self.count)]
            while self.stopping is None:
                for index, process in enumerate(self.processes):
                    if process.is_alive() or self.stopping is not None:
                        continue
                    lived = time.monotonic() - self.started_at.pop(process.pid, 0.0)
                    metrics.worker_gone(process.pid)
                    if lived < MIN_LIFETIME_SECONDS:
                        log.error("worker %s exited (%s) %.1f s after starting; stopping", process.pid,
                                  process.exitcode, lived)  # fmt: skip
                        self._signal(signal.SIGTERM, None)
                        break
                    log.warning("worker %s exited (%s); starting another", process.pid, process.exitcode)
                    self.processes[index] = self._start()
                time.sleep(0.2)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for process in self.processes:
                process.join(max(0.0, deadline - time.monotonic()))
            for process in self.processes:
                if process.is_alive():
                    process.kill()
                    process.join(5)
            return self.stopping
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.sock.close()
            os.environ.pop(metrics.MULTIPROCESS_ENV, None)
            shutil.rmtree(figures, ignore_errors=True)
