"""`tars serve` start-up mistakes: one sentence naming the fix, exit 1 or 2, never a traceback.

Each case runs `tars serve` as a real process (as a user would) against a fresh example
project with the emulators' credentials; ``golden/serve_<case>.txt`` is exactly what it
prints, with the temporary folder and the port written as ``<DIR>`` and ``<PORT>``
(regenerate with ``pytest --update-goldens``, then read the diff).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tars.scaffold import scaffold
from tars.scenarios.line import environment

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def listening() -> Iterator[int]:
    """A port another program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def serve(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    root = tmp_path / "p"
    scaffold(root)
    variables = {**os.environ, **environment(root / ".tars"), "NO_COLOR": "1", "COLUMNS": "100", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tars", "--project", str(root), "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=variables,
    )


def check(
    done: subprocess.CompletedProcess[str], code: int, case: str, update: bool, tmp_path: Path, port: int = 0
) -> None:
    printed = done.stdout + done.stderr
    assert "Traceback" not in printed
    assert "crashed" not in printed
    assert done.returncode == code, printed
    shown = printed.replace(str(tmp_path), "<DIR>")
    if port:
        shown = shown.replace(str(port), "<PORT>")
    golden = GOLDEN / f"serve_{case}.txt"
    if update:
        golden.write_text(shown, encoding="utf-8")
    assert shown == golden.read_text(encoding="utf-8")


def test_a_port_in_use_says_so(tmp_path: Path, listening: int, update_goldens: bool) -> None:
    done = serve(tmp_path, ["--port", str(listening)])
    check(done, 1, "port_in_use", update_goldens, tmp_path, listening)


def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, update_goldens: bool) -> None:
    check(serve(tmp_path, ["--port", "99999"]), 2, "port_out_of_range", update_goldens, tmp_path)


def test_an_unknown_log_level_is_a_usage_error(tmp_path: Path, update_goldens: bool) -> None:
    check(serve(tmp_path, ["--log-level", "loud"]), 2, "log_level", update_goldens, tmp_path)


def test_a_missing_gemini_ca_file_is_named(tmp_path: Path, update_goldens: bool) -> None:
    done = serve(tmp_path, [], {"TARS_GEMINI_CA_FILE": str(tmp_path / "gone.pem")})
    check(done, 1, "ca_file_missing", update_goldens, tmp_path)


def test_an_invalid_gemini_ca_file_is_named(tmp_path: Path, update_goldens: bool) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    done = serve(tmp_path, [], {"TARS_GEMINI_CA_FILE": str(tmp_path / "junk.pem")})
    check(done, 1, "ca_file_invalid", update_goldens, tmp_path)
