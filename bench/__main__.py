"""Measure TARS side by side with its references, in one run.

    python -m bench                  # everything (~15 min): bench/results/latest.{md,json} + dated copies
    python -m bench --quick          # fewer calls, turns and runs (~2 min)
    python -m bench --only latency,cli

Benchmarks: latency (added latency of the call path: TARS, bare Pipecat, the hand-written
floor), first_words (answer → the greeting's first audio with a 700 ms model connect,
TARS vs bare Pipecat), capacity (1 … 100 concurrent calls), startup (``tars serve`` to ready), cli
(``tars --help``/``validate``/``remind add`` against their floors), compile (a large project).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.report import Section

NAMES = ("latency", "first_words", "capacity", "startup", "cli", "compile")


def _compile(quick: bool) -> Section:
    from bench import compile as compile_bench

    return Section("compile", "Compile a large project", rows=compile_bench.run(quick))


def suites(mode: str) -> dict[str, Callable[[], Any]]:
    from bench import calls, first_words, startup

    plan = calls.PLANS[mode]
    quick = mode != "full"
    return {
        "latency": lambda: calls.latency(plan),
        "first_words": lambda: first_words.first_words(3 if quick else 9),
        "capacity": lambda: calls.capacity(plan),
        "startup": lambda: startup.serve_to_ready(1 if quick else 5),
        "cli": lambda: startup.cli(3 if quick else 15),
        "compile": lambda: _compile(quick),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, turns and runs (~2 min)")
    parser.add_argument("--only", metavar="NAME[,NAME]", help=f"run only these: {', '.join(NAMES)}")
    parser.add_argument("--out", type=Path, default=report.RESULTS, help="where results go (default: %(default)s)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # the test suite's tiny run
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.smoke and not args.only:
        names = ["latency"]
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    info = report.machine_info()
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    sections = []
    for name in names:
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        begun = time.monotonic()
        result = suites(mode)[name]()
        section = asyncio.run(result) if asyncio.iscoroutine(result) else result
        section.seconds = time.monotonic() - begun
        sections.append(section)
        print(f"bench: {name} done in {section.seconds:.0f} s", file=sys.stderr, flush=True)
    markdown, data = report.write(sections, command, info, started, time.monotonic() - clock, args.out)
    print(markdown.read_text())
    print(f"written: {markdown} and {data}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
