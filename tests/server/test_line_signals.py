"""A server running inside another program (a test, `tars call --simulate`) leaves that
program its signals: pytest-timeout and xdist can still stop a test whose call hangs."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.server.harness import Line, Receptionist, make_project


async def test_an_in_process_server_leaves_sigterm_and_ctrl_c_to_its_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    async with Line(make_project(tmp_path / "p", monkeypatch), Receptionist) as line:
        assert line.server is not None and line.server.uvicorn.started
        assert {sig: signal.getsignal(sig) for sig in before} == before
