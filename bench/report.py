"""The results: one markdown page and one JSON file, latest and dated, in ``bench/results/``."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, table

RESULTS = ROOT / "bench" / "results"


@dataclass
class Section:
    """One benchmark's part of the report: headline rows plus its own tables and notes."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    body: str = ""  # markdown after the rows: detail tables, notes
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "processor": platform.processor() or platform.machine(),
    }
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = next(int(line.split()[1]) for line in meminfo.read_text().splitlines() if line.startswith("MemTotal"))
        info["memory_gib"] = round(kb / 2**20, 1)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            None,
        )
        if model:
            info["cpu_model"] = model
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    loadavg = Path("/proc/loadavg")
    if loadavg.exists():
        info["loadavg_at_start"] = loadavg.read_text().split()[:3]
    return info


def describe_machine(info: dict[str, Any]) -> str:
    parts = [f"{info['cores']} cores"]
    if "cpu_model" in info:
        parts[0] += f" ({info['cpu_model']})"
    if "memory_gib" in info:
        parts.append(f"{info['memory_gib']:.0f} GiB RAM")
    parts += [info["platform"], f"Python {info['python']}"]
    return ", ".join(parts)


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def render(
    sections: Sequence[Section], command: str, info: dict[str, Any], started: dt.datetime, seconds: float
) -> str:
    lines = [
        "# TARS benchmarks",
        "",
        f"- **command:** `{command}`",
        f"- **machine:** {describe_machine(info)}",
        f"- **when:** {started:%Y-%m-%d %H:%M} UTC, {seconds / 60:.1f} min; revision {git_revision()}",
        f"- **load average at start:** {' '.join(info.get('loadavg_at_start', ['?']))}",
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.rows:
            lines += [table(section.rows), ""]
        if section.body:
            lines += [section.body.rstrip(), ""]
    return "\n".join(lines)


def write(
    sections: Sequence[Section],
    command: str,
    info: dict[str, Any],
    started: dt.datetime,
    seconds: float,
    out: Path = RESULTS,
) -> tuple[Path, Path]:
    """Write ``latest.md``/``latest.json`` and a dated copy of each; return the latest pair."""
    out.mkdir(parents=True, exist_ok=True)
    markdown = render(sections, command, info, started, seconds)
    payload = {
        "command": command,
        "machine": info,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "revision": git_revision(),
        "sections": {
            s.name: {
                "title": s.title,
                "seconds": round(s.seconds, 1),
                "rows": [r.to_json() for r in s.rows],
                "data": s.data,
            }
            for s in sections
        },
    }
    text = json.dumps(_finite(payload), indent=2, ensure_ascii=False) + "\n"
    stamp = started.strftime("%Y-%m-%dT%H%M")
    for name in ("latest", stamp):
        (out / f"{name}.md").write_text(markdown)
        (out / f"{name}.json").write_text(text)
    return out / "latest.md", out / "latest.json"


def _finite(value: Any) -> Any:
    """JSON has no NaN: missing figures become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
