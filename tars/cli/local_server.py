"""Where this project's `tars serve` answers on this machine, and whether it does now (for
`tars call`, and for `tars remind add` to say when no server would deliver a reminder)."""

from __future__ import annotations

from typing import Any


def server_base(project: Any) -> str:
    """Where this project's `tars serve` answers on this machine ($TARS_SERVER_URL wins)."""
    import os

    settings = project.section("server")
    host = settings.get("host", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return os.environ.get("TARS_SERVER_URL") or f"http://{host}:{settings.get('port', 8080)}"


def server_running(project: Any, timeout: float = 1.0) -> bool:
    """Whether a TARS server answers ``/healthz`` for this project now."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(server_base(project).rstrip("/") + "/healthz", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
