"""Start-up with the compiled-project cache: once a project has been loaded, commands that
never look at the graph import neither the validators nor networkx (tars.project_cache)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.startup_helpers import imported

# What a full load imports and a cached one must not.
VALIDATION = ["networkx", "jsonschema", "jsonschema_rs"]


def _run(project: Path, home: Path, args: list[str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "TARS_NOW"}
    env["TARS_HOME"] = str(home)
    return imported(project, args, VALIDATION, env)


@pytest.mark.parametrize(
    "args", [["remind", "list"], ["contacts", "list"], ["calls", "list"], ["config", "show"]], ids=" ".join
)
def test_a_cached_load_imports_no_validator_and_no_networkx(
    args: list[str], example_project: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    first = _run(example_project, home, args)
    # A full load checks with jsonschema-rs (networkx and jsonschema only come in to draw the
    # graph or explain an error); a cached one does not check at all.
    assert "jsonschema_rs" in first, "the first load is a full one (else this test proves nothing)"
    assert _run(example_project, home, args) == [], f"`tars {' '.join(args)}` with a warm cache"


def test_validate_still_checks_everything_with_a_warm_cache(example_project: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _run(example_project, home, ["remind", "list"])
    assert "jsonschema_rs" in _run(example_project, home, ["validate"])
