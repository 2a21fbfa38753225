"""Start-up and the CLI, each against the least a program doing the same job must pay.

* ``tars serve`` → ``/healthz`` answers, against the bare Pipecat server and the floor
  bridge doing the same (starts alternate; the project and its database already exist,
  as on any restart after the first).
* ``tars --help`` against ``python -c pass`` and against ``python -c "import typer"``;
  ``tars validate`` against the typer import; ``tars remind add`` against python + typer
  + sqlmodel + one insert (``bench.remind_add``'s floor). Fresh subprocesses, taking
  turns, after one warm-up each; medians compared.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.callers import Emulators
from bench.common import Row, python_env
from bench.remind_add import FLOOR, _interleaved
from bench.report import Section
from bench.servers import LABELS, VARIANTS, Server, tars_command

TARGET = "≤ 1.2×"
# Typer's own share: a one-command app whose option holds a path (Typer ≥ 0.29 coerces option
# values through pydantic, and renders --help with rich), doing nothing else.
TYPER_APP = """
from pathlib import Path
from typing import Annotated, Optional
import typer
app = typer.Typer(rich_markup_mode="rich", add_completion=False)
@app.command()
def main(project: Annotated[Optional[Path], typer.Option(help="The project folder.")] = None) -> None:
    \"\"\"Do nothing, the Typer way.\"\"\"
app()
"""


async def serve_to_ready(runs: int) -> Section:
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    # Nothing is contacted while a server starts, but TARS reads the emulator's CA file.
    async with Emulators() as emulators:
        upstream = emulators.upstream()
        with tempfile.TemporaryDirectory(prefix="tars-bench-startup-") as tmp:
            for round_ in range(runs + 1):  # round 0 warms the disk cache and creates TARS's database
                for variant in VARIANTS:
                    workdir = Path(tmp) / variant
                    workdir.mkdir(exist_ok=True)
                    server = Server(variant, upstream, workdir=workdir)
                    try:
                        seconds = await server.start()
                    finally:
                        await server.stop()
                    if round_:
                        times[variant].append(seconds)
    median = {v: statistics.median(t) * 1000 for v, t in times.items()}
    section = Section("startup", "Start-up: server start to ready")
    section.rows = [
        Row(f"{LABELS['pipecat']}: start → /healthz", median["pipecat"], "ms"),
        Row(f"{LABELS['floor']}: start → /healthz", median["floor"], "ms"),
        Row("tars serve: start → /healthz", median["tars"], "ms", LABELS["pipecat"], median["pipecat"], TARGET),
        Row("tars serve: start → /healthz", median["tars"], "ms", LABELS["floor"], median["floor"]),
    ]
    section.data = {"runs": runs, "seconds": times}
    section.body = f"Median of {runs} starts each, taking turns."
    return section


def cli(runs: int) -> Section:
    from tars.scaffold import scaffold

    tmp = Path(tempfile.mkdtemp(prefix="tars-bench-cli-"))
    try:
        project, home = tmp / "project", tmp / "home"
        scaffold(project)
        env = {k: v for k, v in python_env().items() if not k.startswith(("TARS_", "TWILIO_", "GEMINI_"))}
        env |= {"TARS_HOME": str(home), "NO_COLOR": "1"}
        floor = FLOOR.format(db=tmp / "floor.db")
        subprocess.run([sys.executable, "-c", floor, "--create"], check=True, env=env)
        tars = [*tars_command(), "--project", str(project)]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import typer'": [sys.executable, "-c", "import typer"],
            "typer app --help": [sys.executable, "-c", TYPER_APP, "--help"],
            "typer app --project .": [sys.executable, "-c", TYPER_APP, "--project", "."],
            "python + typer + sqlmodel + one insert": [sys.executable, "-c", floor],
            "tars --help": [*tars_command(), "--help"],
            "tars validate": [*tars, "validate"],
            "tars remind add 'bench' --at 'in 1 hour'": [*tars, "remind", "add", "bench", "--at", "in 1 hour"],
        }
        timings = dict(zip(commands, _interleaved(list(commands.values()), runs, env), strict=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ms = {name: statistics.median(t) * 1000 for name, t in timings.items()}
    section = Section("cli", "The command line against its floors")
    section.rows = [
        Row("python -c pass (floor)", ms["python -c pass"], "ms"),
        Row("python -c 'import typer' (floor)", ms["python -c 'import typer'"], "ms"),
        Row("python + typer + sqlmodel + one insert (floor)", ms["python + typer + sqlmodel + one insert"], "ms"),
        Row("one-command Typer app: --help (Typer's share)", ms["typer app --help"], "ms"),
        Row("one-command Typer app: --project . (Typer's share)", ms["typer app --project ."], "ms"),
        Row("tars --help", ms["tars --help"], "ms", "python -c pass", ms["python -c pass"], TARGET),
        Row("tars --help", ms["tars --help"], "ms", "Typer app --help", ms["typer app --help"], TARGET),
        Row("tars validate", ms["tars validate"], "ms", "import typer", ms["python -c 'import typer'"], TARGET),
        Row("tars validate", ms["tars validate"], "ms", "Typer app --project .", ms["typer app --project ."], TARGET),
        Row(
            "tars remind add",
            ms["tars remind add 'bench' --at 'in 1 hour'"],
            "ms",
            "typer + sqlmodel + insert",
            ms["python + typer + sqlmodel + one insert"],
            TARGET,
        ),
    ]
    section.data = {"runs": runs, "seconds": timings}
    section.body = f"Median of {runs} runs each, fresh subprocesses taking turns after one warm-up each."
    return section
