"""Start-up is a feature: `tars validate` and `tars --help` never import the heavy SDKs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ["pipecat", "google.genai", "twilio", "fastapi", "sqlmodel", "sqlalchemy", "uvicorn"]

PROBE = """
import json, sys
import tars.cli.app
try:
    tars.cli.app.app(sys.argv[1:], prog_name="tars")
    code = 0
except SystemExit as exc:
    code = exc.code
heavy = json.loads({heavy!r})
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print("\\n" + json.dumps({{"code": code, "loaded": loaded}}))
"""


@pytest.mark.parametrize("args", [["validate"], ["validate", "--json"], ["--help"], ["--version"]], ids=" ".join)
def test_no_heavy_imports(args: list[str], example_project: Path) -> None:
    script = PROBE.format(heavy=json.dumps(HEAVY))
    done = subprocess.run(
        [sys.executable, "-c", script, "--project", str(example_project), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=example_project,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stdout
    assert report["loaded"] == [], f"`tars {' '.join(args)}` imported {report['loaded']}"
