"""Shared pieces for benchmarks: timing subprocesses, percentiles, the result table."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One measurement, optionally against a reference measured in the same run."""

    name: str
    value: float
    unit: str
    reference: str | None = None
    reference_value: float | None = None
    target: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.reference_value:
            return self.value / self.reference_value
        return None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def time_command(
    argv: Sequence[str], runs: int, env: dict[str, str] | None = None, cwd: Path | None = None
) -> list[float]:
    """Wall seconds for each of ``runs`` runs of a command (after one warm-up run)."""
    full_env = {**os.environ, **(env or {})}
    subprocess.run(argv, env=full_env, cwd=cwd, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, env=full_env, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return times


def median_ms(times: Sequence[float]) -> float:
    return statistics.median(times) * 1000


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def machine() -> str:
    mem = ""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores{mem}, {platform.platform()}, Python {sys.version.split()[0]}"


def table(rows: Sequence[Row]) -> str:
    lines = ["| measurement | value | reference | ratio | target |", "|---|---|---|---|---|"]
    for r in rows:
        has_ref = r.reference and r.reference_value is not None
        ref = f"{r.reference}: {_number(r.reference_value, r.unit)} {r.unit}" if has_ref else "—"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "—"
        lines.append(f"| {r.name} | {_number(r.value, r.unit)} {r.unit} | {ref} | {ratio} | {r.target or '—'} |")
    return "\n".join(lines)


PYCACHE = Path(tempfile.gettempdir()) / "tars-bench-pycache"


def python_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a measured Python subprocess: bytecode cached, as in any normal
    install (outside the checkout, in ``PYCACHE``), even where ``PYTHONDONTWRITEBYTECODE``
    is set; without it, every run would compile every module of TARS from source first."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"PYTHONPYCACHEPREFIX": str(PYCACHE)}


def _number(value: float | None, unit: str) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    return f"{value:.0f}" if unit == "calls" else f"{value:.1f}"
