"""`tars simulate` plays the shipped scenarios against the real server; `tars sim` runs one emulator.

The scenario runs are whole calls (the twilio and google-genai SDKs and pipecat against
the loopback emulators), a few seconds each.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

SCENARIOS = Path(__file__).parents[1] / "scenarios"


def test_the_shipped_scenarios_pass(example_project: Path, tars: Any) -> None:
    files = sorted(SCENARIOS.glob("*.yaml"))
    result = tars("--project", example_project, "simulate", *files)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "✗" not in out
    assert f"{len(files)} passed" in out
    # The transcript names the speakers; tool calls show what the gate decided.
    assert re.search(r"TARS  Good \w+\. You've reached Alex Morgan's assistant", out)
    assert re.search(r"caller  Hello, this is Sam from Hilltop Garage", out)
    flat = " ".join(out.split())  # long transcript lines wrap
    assert "list_contacts() → refused: 'list_contacts' is not available to the unknown role" in flat
    assert "✓ offered exactly take_message, end_call" in out
    assert "✓ tool calls list_contacts (refused), take_message (allowed), end_call (allowed)" in out
    assert "✓ SMS sent: 2" in out
    # Simulations never touch the project's own state folder.
    assert not (example_project / ".tars" / "tars.db").exists()


def test_a_wrong_expectation_fails_and_says_why(example_project: Path, tars: Any, tmp_path: Path) -> None:
    text = (SCENARIOS / "owner_reminder.yaml").read_text()
    assert "due: tomorrow at 2pm" in text
    wrong = tmp_path / "wrong_time.yaml"
    wrong.write_text(text.replace("due: tomorrow at 2pm", "due: tomorrow at 3pm"))
    state = tmp_path / "state"
    result = tars("--project", example_project, "simulate", "--keep-state", state, wrong)
    assert result.exit_code == 1, result.output
    failures = [line.strip() for line in result.output.splitlines() if line.strip().startswith("✗")]
    assert len(failures) == 1, result.output
    assert failures[0].startswith("✗ reminders created: 1  none matches")
    assert re.search(
        r"due \w{3} \d\d \w{3} \d{4} 14:00, expected \w{3} \d\d \w{3} \d{4} 15:00 "
        r"\(tomorrow at 3pm, Europe/London\)",
        failures[0],
    )
    assert "failed (1 of 10 checks)" in result.output
    assert "0 passed, 1 failed" in result.output
    # --keep-state leaves the scenario's database for `tars calls show` and friends.
    assert (state / "wrong_time" / "tars.db").is_file()
    assert f"state kept in {state / 'wrong_time'}" in result.output


def assert_next_wednesday_at_ten(when: str) -> None:
    """The example books `{$time: Wednesday at 10am}`: the coming Wednesday, whenever it runs."""
    booked = dt.datetime.fromisoformat(when)
    now = dt.datetime.now(ZoneInfo("Europe/London"))
    assert (booked.strftime("%A %H:%M"), booked.utcoffset()) == ("Wednesday 10:00", now.utcoffset())
    assert dt.timedelta(0) < booked - now <= dt.timedelta(days=7)


def test_a_goal_call_scenario_places_the_call_through_the_api(example_project: Path, tars: Any) -> None:
    goal = SCENARIOS / "goal_calls" / "book_dentist.yaml"
    result = tars("--project", example_project, "simulate", "--json", goal)
    assert result.exit_code == 0, result.output
    [played] = json.loads(result.stdout)["scenarios"]
    assert (played["status"], played["call_status"], played["playbook"]) == ("passed", "completed", "book_appointment")
    assert played["steps"] == ["introduce", "find_slot", "confirm", "wrap_up"]
    assert played["outcome"]["status"] == "booked"
    assert_next_wednesday_at_ten(played["outcome"]["when"])
    refused = [e for e in played["transcript"] if e["speaker"] == "tool" and not e["allowed"]]
    assert [e["text"].split("(")[0] for e in refused] == ["ask_owner"]


# ------------------------------------------------------------------------------ tars sim


@pytest.mark.parametrize("emulator", ["gemini", "twilio"])
def test_an_emulator_runs_in_the_foreground_until_ctrl_c(emulator: str, tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "300"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tars", "sim", emulator, "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = _read_banner(process)
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", banner)[1])  # type: ignore[index]
        if emulator == "gemini":
            ca_file = re.search(r"CA file\s+(\S+)", banner)[1]  # type: ignore[index]
            assert _https_status(port, ca_file) == 404  # TLS with its own CA; unknown paths are 404
        else:
            assert "Auth token   test-token" in banner
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "stopped" in err and "Traceback" not in err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    if emulator == "gemini":
        assert not Path(ca_file).exists(), "the throw-away CA should be removed"


def _read_banner(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the emulator exited early: {process.stderr.read() if process.stderr else ''}")
        lines.append(line)
        if line.lstrip().startswith("tars serve:"):
            return "".join(lines)
    raise AssertionError("no banner: " + "".join(lines))


def _https_status(port: int, ca_file: str) -> int:
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=ca_file)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), urllib.request.ProxyHandler({}))
    try:
        opener.open(f"https://127.0.0.1:{port}/nothing-here", timeout=10)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200
