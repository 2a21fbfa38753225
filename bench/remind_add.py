"""`tars remind add` wall time against its floor (target: at most 1.2 times).

The floor is what any Python CLI that stores a row with SQLModel must pay: start Python,
import typer and sqlmodel, open an SQLite file, insert one row, commit. TARS additionally
loads and validates the project (YAML, JSON Schema, graph), parses the time and checks the
schema revision. Each is run N times as a fresh subprocess, the two alternating (after one
warm-up run each; TARS's also creates the database); medians are compared.

    python -m bench.remind_add            # N = 15
    python -m bench.remind_add --runs 1   # smoke test
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Row, machine, median_ms, table

FLOOR = """
import typer, sqlmodel
from sqlmodel import Field, Session, SQLModel, create_engine

class Reminder(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    text: str

engine = create_engine("sqlite:///{db}")
if "--create" in __import__("sys").argv:
    SQLModel.metadata.create_all(engine)
with Session(engine) as session:
    session.add(Reminder(text="bench"))
    session.commit()
"""


def _tars_command() -> list[str]:
    script = Path(sys.executable).with_name("tars")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tars"]


def _interleaved(commands: list[list[str]], runs: int, env: dict[str, str]) -> list[list[float]]:
    """Wall seconds of ``runs`` runs of each command, taking turns (after one warm-up each), so
    a busy machine slows them all alike, not whichever ran during the busy spell."""
    times: list[list[float]] = [[] for _ in commands]
    for argv in commands:
        subprocess.run(argv, env=env, capture_output=True, check=True)
    for _ in range(runs):
        for argv, into in zip(commands, times, strict=True):
            start = time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True, check=False)
            into.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return times


def run(runs: int = 15) -> list[Row]:
    from tars.scaffold import scaffold

    tmp = Path(tempfile.mkdtemp(prefix="tars-bench-"))
    try:
        project, home = tmp / "project", tmp / "home"
        scaffold(project)
        env = {"TARS_HOME": str(home), "NO_COLOR": "1"}
        env = {k: v for k, v in {**os.environ, **env}.items() if k != "TARS_NOW"}
        floor = FLOOR.format(db=tmp / "floor.db")
        subprocess.run([sys.executable, "-c", floor, "--create"], check=True, env=env)
        tars = [*_tars_command(), "--project", str(project)]
        floor_times, add_times, validate_times = _interleaved(
            [
                [sys.executable, "-c", floor],
                [*tars, "remind", "add", "bench", "--at", "in 1 hour"],
                [*tars, "validate"],
            ],
            runs,
            env,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    floor_ms = median_ms(floor_times)
    return [
        Row("python + typer + sqlmodel + one insert (floor)", floor_ms, "ms"),
        Row(
            "tars remind add 'bench' --at 'in 1 hour'",
            median_ms(add_times),
            "ms",
            reference="floor",
            reference_value=floor_ms,
            target="≤ 1.2×",
        ),
        # Where the rest goes: every command loads and checks the project (YAML, JSON Schema,
        # networkx graph) before it does anything; `validate` is that and nothing else.
        Row("tars validate (project load only, no store)", median_ms(validate_times), "ms"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="subprocess runs of each (median is reported)")
    args = parser.parse_args(argv)
    rows = run(args.runs)
    print(f"{machine()}; median of {args.runs} runs each\n")
    print(table(rows))


if __name__ == "__main__":
    main()
