"""The servers under test, each in its own process so its CPU and memory are its own.

``tars``: ``tars serve`` as shipped, on a scaffolded example project whose tars.yaml points
at the emulators (``telephony.api_base_url``, ``model.base_url``; the emulator's CA via
``TARS_GEMINI_CA_FILE``). ``pipecat``: ``bench.bare_pipecat``. ``floor``: ``bench.floor``.
All three answer ``POST /twilio/voice`` with ``<Connect><Stream>`` and ``GET /healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml

from bench import procstat
from bench.common import ROOT, python_env
from bench.upstream import Upstream

VARIANTS = ("tars", "pipecat", "floor")
LABELS = {
    "tars": "TARS (`tars serve`)",
    "pipecat": "bare Pipecat",
    "floor": "floor (hand-written bridge)",
    # A second reference: bare Pipecat with TARS's two audio settings (bench.tuning), so that
    # TARS against it is the cost of TARS's own layers alone.
    "pipecat-tuned": "bare Pipecat + TARS's audio settings",
    # The same server as two processes on one port and one database (`tars serve --workers 2`).
    "tars-2w": "TARS, 2 workers (`tars serve --workers 2`)",
    # The same server with someone watching: the web view open on every live call and /metrics
    # scraped every second (bench.watcher).
    "tars-watched": "TARS, watched (web view on every live call, /metrics each second)",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tars_command() -> list[str]:
    script = Path(sys.executable).with_name("tars")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tars"]


def tars_project(root: Path, upstream: Upstream) -> Path:
    """The shipped example project, pointed at the emulators and allowed many calls at once."""
    from tars.scaffold import scaffold

    scaffold(root)
    config = yaml.safe_load((root / "tars.yaml").read_text())
    config["telephony"]["api_base_url"] = upstream.twilio_base_url
    config["model"]["base_url"] = upstream.gemini_base_url
    config["server"]["max_concurrent_calls"] = 1000
    (root / "tars.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


@dataclass
class Server:
    """One server process: started, timed to ready, measured, stopped."""

    variant: str
    upstream: Upstream
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    ready_seconds: float = 0.0
    log: Path | None = None
    workdir: Path | None = None  # None: a fresh temporary folder (project, state, log)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def local_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self, workdir: Path) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in python_env().items() if not k.startswith(("TARS_", "TWILIO_", "GEMINI_", "GOOGLE_"))}
        env |= self.upstream.env() | {
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONPATH": str(ROOT),
            "NO_COLOR": "1",
        }
        if self.variant.startswith("tars"):
            project = workdir / "project"
            if not (project / "tars.yaml").exists():
                tars_project(project, self.upstream)
            env |= {"TARS_HOME": str(workdir / "state"), "TARS_GEMINI_CA_FILE": self.upstream.gemini_ca_file}
            argv = [
                *tars_command(),
                "--project",
                str(project),
                "serve",
                "--port",
                str(self.port),
                "--public-url",
                self.upstream.public_url,
                "--log-level",
                "warning",
                *(["--workers", "2"] if self.variant == "tars-2w" else []),
            ]
        elif self.variant == "floor":
            argv = [sys.executable, "-m", "bench.floor", "--port", str(self.port)]
        else:
            main = "import bench.tuning as t; t.apply(); " if self.variant == "pipecat-tuned" else ""
            main += "import bench.bare_pipecat as b; b.main()"
            argv = [sys.executable, "-c", main, "--port", str(self.port)]
        return argv, env

    async def start(self, timeout: float = 60) -> float:
        """Start the process; return the seconds until ``/healthz`` answered."""
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"tars-bench-{self.variant}-")
        workdir = self.workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        argv, env = self.command(workdir)
        self.log = workdir / "server.log"
        started = time.perf_counter()
        with self.log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                *argv, env=env, cwd=str(ROOT), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.variant} server exited ({self.process.returncode}):\n{self.tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{self.local_url}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status == 200:
                            break
                if time.perf_counter() - started > timeout:
                    raise TimeoutError(f"{self.variant} server not ready after {timeout:.0f} s:\n{self.tail()}")
                await asyncio.sleep(0.01)
        self.ready_seconds = time.perf_counter() - started
        return self.ready_seconds

    @property
    def state_dir(self) -> Path:
        """TARS's state folder (the API token, the database), once started."""
        return (self.workdir or Path(self._tmp.name)) / "state"  # type: ignore[union-attr]

    def tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """The server's CPU time: its process and, with workers, theirs."""
        return sum(procstat.cpu_seconds(pid) for pid in procstat.tree(self.pid))

    def rss_bytes(self) -> int:
        return sum(procstat.rss_bytes(pid) for pid in procstat.tree(self.pid))

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
