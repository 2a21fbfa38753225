"""Start-up is a feature: `tars remind add` loads only what it needs, and the bench runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from tars.cli.app import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
roots = ("pipecat", "twilio", "fastapi", "uvicorn", "google.genai", "dateparser", "alembic", "phonenumbers")
loaded = sorted({r for r in roots for m in sys.modules if m == r or m.startswith(r + ".")})
print(json.dumps({"code": code, "loaded": loaded}))
"""


def _probe(root: Path, home: Path, *args: str) -> dict[str, object]:
    env = {**os.environ, "TARS_HOME": str(home), "NO_COLOR": "1"}
    argv = [sys.executable, "-c", PROBE, "--project", str(root), *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_remind_add_loads_no_call_machinery(example: Path, tmp_path: Path) -> None:
    root, home = tmp_path / "project", tmp_path / "home"
    shutil.copytree(example, root)
    first = _probe(root, home, "remind", "add", "water the plants", "--at", "tomorrow 2pm")
    assert first["code"] == 0
    assert not {"pipecat", "twilio", "fastapi", "uvicorn", "google.genai"} & set(first["loaded"])  # type: ignore[arg-type]
    # Once the database is current: no Alembic, and a plain time needs no dateparser.
    second = _probe(root, home, "remind", "add", "call mum", "--at", "in 20 minutes")
    assert second == {"code": 0, "loaded": []}


def test_the_remind_add_bench_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.remind_add", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TARS_")},
    )
    assert "tars remind add" in done.stdout and "floor" in done.stdout
    assert "×" in done.stdout
