"""Exit codes and the error boundary every command runs inside.

0 ok · 1 a user-fixable error (the message says how) · 2 usage · 3 crash (a crash log in
the state folder is a ready bug report) · 130 interrupted.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import tempfile
import traceback
from pathlib import Path

from tars.errors import USER_ERROR, UserError

__all__ = ["CRASH", "INTERRUPTED", "OK", "USAGE", "USER_ERROR", "UserError", "write_crash_log"]

OK, USAGE, CRASH, INTERRUPTED = 0, 2, 3, 130

_SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD", "PIN", "AUTH")


def write_crash_log(exc: BaseException, argv: list[str], project: Path | None = None) -> Path:
    """Write a bug report for an unexpected exception; returns its path.

    ``project`` is the folder given with ``--project``, if any: the log goes to that
    project's state folder (``$TARS_HOME`` wins, as everywhere).
    """
    from tars import __version__

    folder = _crash_folder(project)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"crash-{stamp}.log"
    env = {
        k: ("••••••" if any(w in k.upper() for w in _SECRET_WORDS) else v)
        for k, v in sorted(os.environ.items())
        if k.startswith(("TARS_", "TWILIO_", "GEMINI_", "GOOGLE_"))
    }
    body = "\n".join(
        [
            f"TARS {__version__} crashed; please attach this file to a bug report.",
            f"command: tars {' '.join(argv)}",
            f"python: {sys.version.split()[0]} on {platform.platform()}",
            "environment: " + ", ".join(f"{k}={v}" for k, v in env.items()),
            "",
            "".join(traceback.format_exception(exc)),
        ]
    )
    path.write_text(_mask(body))
    return path


def _mask(text: str) -> str:
    from tars.config.secrets import mask_text

    secrets = {v for k, v in os.environ.items() if any(w in k.upper() for w in _SECRET_WORDS) and v}
    return mask_text(text, secrets)


def _crash_folder(project: Path | None = None) -> Path:
    home = os.environ.get("TARS_HOME")
    if home:
        return Path(home).expanduser()
    try:
        from tars.config.discovery import find_root, state_dir

        return state_dir(find_root(project))
    except Exception:
        return Path(tempfile.gettempdir()) / "tars"
