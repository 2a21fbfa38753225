"""The owner's greeting names the right part of the day at every hour, in the owner's time zone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tars.calls.instructions import greeting, local_now, template_values
from tests.server.harness import make_project

# Hour by hour from midnight: the small hours are evening, never afternoon.
EXPECTED = dict(enumerate(["evening"] * 5 + ["morning"] * 7 + ["afternoon"] * 6 + ["evening"] * 6))


def test_every_hour_of_the_owners_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    zone = ZoneInfo(project.owner.timezone)
    said = {}
    for hour in range(24):
        local = dt.datetime(2026, 12, 2, hour, 30, tzinfo=zone)
        now = local_now(project, local.astimezone(dt.UTC))
        said[hour] = greeting(project, "owner", template_values(project, now))
    assert said[1] == "Good evening, sir. TARS at your service. What can I do for you?"
    assert said == {
        hour: f"Good {part}, sir. TARS at your service. What can I do for you?" for hour, part in EXPECTED.items()
    }
