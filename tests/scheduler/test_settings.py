"""The ``scheduler:`` section of tars.yaml: its defaults are the scheduler's, a setting takes
effect, and how soon the scheduler sees new work — at once when this process adds it, at the
next poll when another process does (`tars remind add`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import EchoBrain
from tars.scheduler import core
from tests.scheduler.helpers import add_due, eventually, reminder, status_becomes
from tests.server.harness import Line, make_project

WEBHOOK = ("tars.yaml", "  late_reminders:\n", "  webhook:\n    url: http://127.0.0.1:9/hook\n"
           "    retries: 0\n  late_reminders:\n")  # fmt: skip


def scheduler_section(**settings: float) -> tuple[str, str, str]:
    """An edit adding ``scheduler:`` with ``settings`` to the example's tars.yaml."""
    lines = "".join(f"  {key}: {value}\n" for key, value in settings.items())
    return ("tars.yaml", "directory:\n", f"scheduler:\n{lines}\ndirectory:\n")


def test_the_schema_documents_the_schedulers_defaults() -> None:
    schema = json.loads((Path(core.__file__).parents[2] / "schemas" / "tars.schema.json").read_text())
    section = schema["properties"]["scheduler"]["properties"]
    defaults = core.Settings()  # the module's constants as imported (this folder's conftest patches one)
    assert {key: spec["default"] for key, spec in section.items()} == {
        "poll_seconds": defaults.poll_seconds,
        "lease_seconds": defaults.lease_seconds,
        "backoff_seconds": defaults.backoff_seconds,
        "max_concurrent_deliveries": defaults.concurrency,
        "late_after_seconds": defaults.late_after_seconds,
    }
    assert all(spec.get("description") and "minimum" in spec and "maximum" in spec for spec in section.values())


async def test_scheduler_settings_take_effect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = scheduler_section(
        poll_seconds=0.5, lease_seconds=300, backoff_seconds=7, max_concurrent_deliveries=3, late_after_seconds=600
    )
    project = make_project(tmp_path / "p", monkeypatch, [settings, WEBHOOK])
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        scheduler = line.server.server.scheduler
        assert (scheduler.poll_seconds, scheduler.lease_seconds, scheduler.backoff_seconds, scheduler.concurrency) == (
            0.5, 300, 7, 3
        )  # fmt: skip
        # Five minutes after it fell due is not late with late_after_seconds: 600 (60 s by default).
        on_time = add_due(project, "feed the cat", via="sms", ago=5 * 60)
        # A failed delivery is retried backoff_seconds later.
        line.webhooks.reply("delivery", 500, {"error": "n8n is down"})
        failing = add_due(project, "pay the rent", via="webhook")
        delivered = await status_becomes(project, on_time, "delivered", timeout=60)

        def retry_planned() -> Any:
            found = reminder(project, failing)
            return found if found.retry_at is not None else None

        waiting = await eventually(lambda: asyncio.to_thread(retry_planned), 60, "the retry")
        bodies = [m.body for m in line.twilio.messages]
    assert bodies == ["Reminder: feed the cat"] and delivered.late is False
    assert waiting.attempts == 1 and (waiting.retry_at - waiting.updated_at).total_seconds() == 7


async def test_work_added_in_this_process_wakes_the_scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [scheduler_section(poll_seconds=60)])
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        scheduler = line.server.server.scheduler
        await eventually(lambda: scheduler.ticks > 0, 30, "the first tick")  # found nothing: sleeps a minute
        rid = add_due(project, "stretch", via="sms")  # committed in this process: wakes it
        done = await status_becomes(project, rid, "delivered", timeout=45)  # well before the next poll
        assert [m.body for m in line.twilio.messages] == ["Reminder: stretch"]
    assert done.attempts == 1


async def test_a_reminder_added_by_another_process_is_seen_at_the_next_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tars remind add` in its own process cannot wake the server: the server finds the
    reminder at its next look at the database (every second here) and from then on knows when
    it falls due (it sleeps until then, not a poll longer)."""
    project = make_project(tmp_path / "p", monkeypatch, [scheduler_section(poll_seconds=1)])
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        scheduler = line.server.server.scheduler
        tars = Path(sys.executable).with_name("tars")
        argv = [str(tars), "--project", str(project.root), "remind", "add", "stretch", "--at", "in 1 hour",
                "--via", "sms", "--json"]  # fmt: skip
        added = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stderr
        rid = json.loads(added.stdout)["id"]
        due = reminder(project, rid).due
        await eventually(lambda: scheduler.next_due == due, 30, "the server seeing the new reminder")
        assert scheduler.poll_seconds == 1
        scheduler.clock = lambda: due  # an hour passes: it falls due
        done = await status_becomes(project, rid, "delivered", timeout=60)
        assert [m.body for m in line.twilio.messages] == ["Reminder: stretch"]
    assert done.delivered_at == due and done.late is False


def tars_yaml_with(root: Path, section: str) -> None:
    config = root / "tars.yaml"
    config.write_text(config.read_text().replace("directory:\n", f"{section}\ndirectory:\n"))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "scheduler:\n  poll_seconds: 0\n",
            "$.scheduler.poll_seconds  0 is too small; must be >= 0.1",
        ),
        ("scheduler:\n  lease_seconds: forever\n", "$.scheduler.lease_seconds  expected a number, got 'forever'"),
        ("scheduler:\n  poll_second: 5\n", "did you mean 'poll_seconds'?"),
    ],
)
def test_a_bad_setting_is_a_validation_error(tmp_path: Path, tars: Any, section: str, message: str) -> None:
    from tars.scaffold import scaffold

    scaffold(tmp_path / "p")
    tars_yaml_with(tmp_path / "p", section)
    result = tars("--project", tmp_path / "p", "validate")
    assert result.exit_code == 1
    assert message in result.output, result.output
