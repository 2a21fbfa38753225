"""Fixtures every test area shares: a clean environment and golden-file updates."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from tars.cli.logs import send_loguru_to_stderr

# The developer's own settings must never leak into a test run.
_PRIVATE_PREFIXES = ("TARS_", "TWILIO_", "GEMINI_", "GOOGLE_", "N8N_")
# Read at import, before the autouse fixture below clears TARS_* variables.
_UPDATE_FROM_ENV = os.environ.get("TARS_UPDATE_GOLDENS") == "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="Rewrite golden files from the current output (or set TARS_UPDATE_GOLDENS=1).",
    )


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    """True when golden files should be rewritten instead of compared."""
    return bool(request.config.getoption("--update-goldens")) or _UPDATE_FROM_ENV


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_PRIVATE_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(autouse=True)
def _loguru_follows_the_test() -> Iterator[None]:
    """pipecat logs through loguru, whose default sink keeps the stream it started with; once
    pytest or CliRunner closes that stream every later line prints a "Logging error"
    traceback. Each test gets a sink on the standard error it has now (captured, shown when
    it fails), at WARNING: pipecat's per-frame DEBUG lines would cost CPU and say nothing."""
    if "loguru" in sys.modules:
        send_loguru_to_stderr("WARNING")
    yield
    if "loguru" in sys.modules:  # the test may have imported pipecat, or re-added a sink
        send_loguru_to_stderr("WARNING")


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A fresh copy of the shipped example project (what `tars init` creates)."""
    from tars.scaffold import scaffold

    root = tmp_path / "project"
    scaffold(root)
    return root


@pytest.fixture
def tars() -> Callable[..., Result]:
    """Run the real `tars` command in-process: ``tars("--project", dir, "validate")``."""
    from typer.testing import CliRunner

    from tars.cli.app import app

    def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)

    return run
