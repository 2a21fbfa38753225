"""Start-up probes: run one `tars` command in a fresh interpreter and see what it imported."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PROBE = """
import json, sys
import tars.cli.app
try:
    tars.cli.app.app(sys.argv[1:], prog_name="tars")
    code = 0
except SystemExit as exc:
    code = exc.code
watched = json.loads({watched!r})
loaded = sorted(m for m in sys.modules if any(m == w or m.startswith(w + ".") for w in watched))
print("\\n" + json.dumps({{"code": code, "loaded": loaded}}))
"""


def imported(project: Path, args: list[str], watched: list[str], env: Mapping[str, str] | None = None) -> list[str]:
    """The ``watched`` modules (and submodules) `tars --project <project> <args>` imported,
    run in a fresh Python in ``project`` (with ``env``, else this one); the command must succeed."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(watched=json.dumps(watched)), "--project", str(project), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stdout
    return report["loaded"]
