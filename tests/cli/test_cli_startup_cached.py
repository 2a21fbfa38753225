"""Start-up with the compiled-project cache: once a project has been loaded, commands that
never look at the graph import neither the validators nor networkx (tars.config.cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# What a full load imports and a cached one must not.
VALIDATION = ["networkx", "jsonschema", "jsonschema_rs"]

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


def _run(project: Path, home: Path, args: list[str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "TARS_NOW"}
    env["TARS_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(watched=json.dumps(VALIDATION)), "--project", str(project), *args],
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


@pytest.mark.parametrize(
    "args", [["remind", "list"], ["contacts", "list"], ["calls", "list"], ["config", "show"]], ids=" ".join
)
def test_a_cached_load_imports_no_validator_and_no_networkx(
    args: list[str], example_project: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    first = _run(example_project, home, args)
    assert "networkx" in first, "the first load is a full one (else this test proves nothing)"
    assert _run(example_project, home, args) == [], f"`tars {' '.join(args)}` with a warm cache"


def test_validate_still_checks_everything_with_a_warm_cache(example_project: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _run(example_project, home, ["remind", "list"])
    assert set(_run(example_project, home, ["validate"])) >= {"networkx", "jsonschema"}
