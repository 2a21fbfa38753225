"""Start-up is a feature: `tars validate` and `tars --help` never import the heavy SDKs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.startup_helpers import imported

HEAVY = ["pipecat", "google.genai", "twilio", "fastapi", "sqlmodel", "sqlalchemy", "uvicorn"]


@pytest.mark.parametrize("args", [["validate"], ["validate", "--json"], ["--help"], ["--version"]], ids=" ".join)
def test_no_heavy_imports(args: list[str], example_project: Path) -> None:
    loaded = imported(example_project, args, HEAVY)
    assert loaded == [], f"`tars {' '.join(args)}` imported {loaded}"
