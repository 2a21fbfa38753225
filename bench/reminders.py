"""Reminder lateness: due time → delivery request, for many reminders due in the same minute.

A real `tars serve` with its scheduler, on an SQLite file (or ``--database-url``), delivers N
reminders by signed webhook to a loopback receiver; each request's arrival time at the
receiver minus the reminder's due time is its lateness. The reminders are added while the
server is idle and fall due over ``--spread`` seconds from a few seconds later (``--spread
0``: all at the same instant, as "at 2pm" reminders are). Target: p95 under 2 s.

By default the server is its own process (the installed ``tars serve``), as in production,
and the receiver runs here; ``--inline`` runs the server in this process instead (the
test harness's ``Line``), sharing one event loop with the receiver.

    python -m bench.reminders                      # 1,000 reminders over one minute
    python -m bench.reminders --spread 0           # 1,000 due at once
    python -m bench.reminders --count 20 --spread 1 --inline  # smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Row, machine, percentile, table

TARGET_P95 = 2.0
LEAD = 3.0  # seconds: the first reminder falls due this long after they are all added


class _Env:
    """``make_project`` wants a monkeypatch-like ``setenv``."""

    def __init__(self, setenv: Callable[[str, str], None]):
        self.setenv = setenv


def _project(root: Path, setenv: Callable[[str, str], None], database_url: str | None) -> Any:
    from tars.scenarios.line import make_project

    edits = [
        ("tars.yaml", "  reminders: call\n", "  reminders: webhook\n"),
        ("tars.yaml", "  late_reminders:\n",
         "  webhook:\n    url: http://127.0.0.1:9/delivery\n    secret: ${BENCH_HOOK_SECRET}\n    retries: 0\n"
         "  late_reminders:\n"),
    ]  # fmt: skip
    if database_url:
        edits.append(("tars.yaml", "directory:\n", f"storage:\n  url: '{database_url}'\n\ndirectory:\n"))
    setenv("BENCH_HOOK_SECRET", "bench-secret")
    return make_project(root, _Env(setenv), edits)


def _add(project: Any, count: int, first_due: dt.datetime, spread: float, seed: int) -> dict[int, dt.datetime]:
    from tars.store.database import connect
    from tars.store.models import Reminder

    rng = random.Random(seed)
    dues = [first_due + dt.timedelta(seconds=rng.uniform(0, spread)) for _ in range(count)]
    now = dt.datetime.now(dt.UTC)
    with connect(project.database_url) as db, db.session() as session:
        rows = [Reminder(text=f"bench {i}", due=due, timezone="UTC", channel="webhook", created_at=now, updated_at=now)
                for i, due in enumerate(dues)]  # fmt: skip
        session.add_all(rows)
        session.flush()
        return {r.id: r.due for r in rows if r.id is not None}


async def _inline(
    project: Any, count: int, spread: float, seed: int, timeout: float, lead: float = LEAD
) -> list[tuple[int, float]]:
    """(reminder id, arrival time) for each request, the server in this process."""
    from tars.emulators.gemini.emulator import EchoBrain
    from tars.scenarios.line import Line

    async with Line(project, EchoBrain) as line:
        offset = time.time() - time.monotonic()  # receiver stamps are monotonic
        first_due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead)
        dues = await asyncio.to_thread(_add, line.project, count, first_due, spread, seed)
        deadline = time.monotonic() + lead + spread + timeout
        while len(line.webhooks.requests) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        arrivals = [(r.payload["reminder"]["id"], r.at + offset) for r in line.webhooks.requests]
    return _late(arrivals, dues)


async def _process(
    project: Any, count: int, spread: float, seed: int, timeout: float, env: dict[str, str], lead: float = LEAD
) -> list[tuple[int, float]]:
    """(reminder id, lateness) for each request, the server a `tars serve` process."""
    import signal
    import socket
    import subprocess
    import sys

    import aiohttp
    from aiohttp import web

    arrivals: list[tuple[int, float]] = []

    async def receive(request: web.Request) -> web.Response:
        at = time.time()
        arrivals.append((json.loads(await request.read())["reminder"]["id"], at))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/delivery", receive)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    from tars.emulators.gemini.emulator import GeminiEmulator
    from tars.scenarios.line import API_KEY

    gemini = GeminiEmulator(api_key=API_KEY)  # `tars serve` asks it about its models at start-up
    await gemini.start()
    env = {**env, "TARS_GEMINI_CA_FILE": gemini.ca_file}
    config = project.root / "tars.yaml"
    config.write_text(config.read_text().replace("http://127.0.0.1:9/delivery",
                                                 f"http://127.0.0.1:{runner.addresses[0][1]}/delivery")
                      .replace("  voice: Charon\n", f"  voice: Charon\n  base_url: {gemini.base_url}\n"))  # fmt: skip
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tars = Path(sys.executable).with_name("tars")
    argv = [str(tars), "--project", str(project.root), "serve", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    if server.poll() is not None:
                        raise RuntimeError(f"tars serve exited: {server.stderr.read().decode()[-2000:]}") from None
                await asyncio.sleep(0.1)
        first_due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead)
        dues = await asyncio.to_thread(_add, project, count, first_due, spread, seed)
        deadline = time.monotonic() + lead + spread + timeout
        while len(arrivals) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(server.wait, 20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        await runner.cleanup()
        await gemini.stop()
    return _late(arrivals, dues)


def _late(arrivals: list[tuple[int, float]], dues: dict[int, dt.datetime]) -> list[tuple[int, float]]:
    return [(rid, at - dues[rid].timestamp()) for rid, at in arrivals]


def _summary(results: list[tuple[int, float]], count: int, spread: float) -> dict[str, Any]:
    lateness = [late for _, late in results]
    ids = [rid for rid, _ in results]
    return {
        "count": count,
        "spread_seconds": spread,
        "delivered": len(set(ids)),
        "duplicates": len(ids) - len(set(ids)),
        "p50": percentile(lateness, 50),
        "p95": percentile(lateness, 95),
        "max": max(lateness) if lateness else float("nan"),
        "mean": statistics.fmean(lateness) if lateness else float("nan"),
        "early": sum(1 for x in lateness if x < 0),
    }


def run(
    count: int = 1000,
    spread: float = 60.0,
    *,
    inline: bool = False,
    lead: float = LEAD,
    seed: int = 1,
    timeout: float = 60.0,
    database_url: str | None = None,
    setenv: Callable[[str, str], None] = os.environ.__setitem__,
) -> dict[str, Any]:
    """Measure once; ``setenv`` sets the credentials the server needs (the emulators' fakes: a
    test passes monkeypatch.setenv)."""
    import logging

    logging.getLogger("tars").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="tars-bench-") as folder:
        env: dict[str, str] = {}

        def remember(name: str, value: str) -> None:
            env[name] = value
            setenv(name, value)

        project = _project(Path(folder) / "project", remember, database_url)
        if inline:
            results = asyncio.run(_inline(project, count, spread, seed, timeout, lead))
        else:
            private = ("TARS_", "TWILIO_", "GEMINI_", "GOOGLE_", "N8N_")
            clean = {k: v for k, v in os.environ.items() if not k.startswith(private)}
            results = asyncio.run(_process(project, count, spread, seed, timeout, {**clean, **env}, lead))
        return {**_summary(results, count, spread), "server": "inline" if inline else "process"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which they fall due")
    parser.add_argument("--database-url", default=None, help="default: an SQLite file in a temporary folder")
    parser.add_argument("--inline", action="store_true", help="run the server in this process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    _quiet()
    result = run(args.count, args.spread, inline=args.inline, database_url=args.database_url)
    if args.json:
        print(json.dumps({**result, "machine": machine()}, indent=2))
        return
    what = f"{result['count']} due over {result['spread_seconds']:g} s, server {result['server']}"
    rows = [Row(f"lateness p50 ({what})", result["p50"] * 1000, "ms"),
            Row("lateness p95", result["p95"] * 1000, "ms", target=f"< {TARGET_P95 * 1000:.0f} ms"),
            Row("lateness max", result["max"] * 1000, "ms")]  # fmt: skip
    print(table(rows))
    print(f"\ndelivered {result['delivered']}/{result['count']}, duplicates {result['duplicates']}, "
          f"early {result['early']}; {machine()}")  # fmt: skip


def _quiet() -> None:
    import sys

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")


if __name__ == "__main__":
    main()
