"""CPU time and resident memory of one process: /proc on Linux, else psutil if installed."""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds used so far by ``pid`` (default: this process)."""
    if pid is None or pid == os.getpid():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return _psutil(pid).cpu_times().user + _psutil(pid).cpu_times().system


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the workers of `tars serve --workers N`), on Linux; else ``[pid]``."""
    proc = Path("/proc")
    if not proc.exists():
        return [pid]
    parents: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of ``pid`` (default: this process) right now."""
    pid = os.getpid() if pid is None else pid
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return int(_psutil(pid).memory_info().rss)


def _psutil(pid: int):  # type: ignore[no-untyped-def]
    try:
        import psutil
    except ImportError as exc:  # pragma: no cover - only off Linux without psutil
        raise RuntimeError("CPU and memory figures need /proc (Linux) or `pip install psutil`") from exc
    return psutil.Process(pid)


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot (None off Linux): the load of every
    process, ours and anyone else's."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None
    fields = [int(v) for v in stat.read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICKS
