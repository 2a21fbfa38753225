"""Committing one file TARS changed, when the project is a git repository (``persona.autocommit``).

The git command line rather than a library: it is what the project's owner uses on the same
repository, it honours their configuration and hooks, and it is on every machine that has a
repository to commit to. Only the named file is committed; whatever else is staged or edited
stays as it was.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

TIMEOUT = 30


def repository_of(path: Path) -> Path | None:
    """The top of the git work tree ``path`` is in, or None (no git, or not a repository)."""
    if shutil.which("git") is None:
        return None
    done = _git(path.parent, "rev-parse", "--show-toplevel")
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def commit_file(path: Path, message: str) -> str:
    """Commit ``path`` alone with ``message``; the new commit's id. Raises RuntimeError with
    git's own words when git refuses (a hook, a lock)."""
    top = repository_of(path)
    if top is None:
        raise RuntimeError(f"{path.parent} is not in a git repository")
    identity: list[str] = []
    if not _git(top, "config", "user.email").stdout.strip():
        identity = ["-c", "user.name=TARS", "-c", "user.email=tars@localhost"]  # a machine without one set
    for args in (["add", "--", str(path)], [*identity, "commit", "--quiet", "-m", message, "--", str(path)]):
        done = _git(top, *args)
        if done.returncode != 0:
            raise RuntimeError((done.stderr or done.stdout).strip() or f"git {args[0]} failed")
    return _git(top, "rev-parse", "HEAD").stdout.strip()


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(["git", *args], 1, "", str(exc))
