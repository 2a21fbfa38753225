"""Reminders delivered by SMS and by signed webhook through a running server; repeats, retries,
failures and reminders that fell due while no server was running."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tars.emulators.gemini.emulator import EchoBrain
from tars.tools.webhook import verify
from tests.scheduler.helpers import add_due, reminder, status_becomes
from tests.server.harness import Line, make_project

WEBHOOK = ("tars.yaml", "  late_reminders:\n", "  webhook:\n    url: http://127.0.0.1:9/hook\n"
           "    secret: ${HOOK_SECRET}\n    retries: 0\n  late_reminders:\n")  # fmt: skip


@pytest.fixture(autouse=True)
def _hook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "hook-secret")


async def test_a_reminder_due_now_goes_out_by_sms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, EchoBrain) as line:
        rid = add_due(project, "call Helen", via="sms")
        done = await status_becomes(project, rid, "delivered")
        sms = [m for m in line.twilio.messages if m.to == project.owner.phone]
        assert line.twilio.calls == {}
    assert [m.body for m in sms] == ["Reminder: call Helen"]
    assert sms[0].from_ == project.section("telephony")["number"]
    assert done.attempts == 1 and done.delivered_at is not None and not done.late


async def test_a_reminder_goes_out_as_a_signed_webhook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [WEBHOOK])
    async with Line(project, EchoBrain) as line:
        rid = add_due(project, "water the plants", via="webhook")
        await status_becomes(project, rid, "delivered")
        [request] = line.webhooks.requests
    assert request.name == "delivery" and request.method == "POST"
    payload = request.payload
    assert payload["kind"] == "reminder" and payload["text"] == "Reminder: water the plants"
    assert payload["reminder"]["id"] == rid and payload["late"] is False
    # The receiver's check: HMAC-SHA256 of "{timestamp}.{body}" with the shared secret. The body
    # is re-serialised exactly as TARS sends it (compact JSON, keys in order).
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = request.headers
    assert verify("hook-secret", headers["X-TARS-Timestamp"], body, headers["X-TARS-Signature"])
    assert not verify("wrong-secret", headers["X-TARS-Timestamp"], body, headers["X-TARS-Signature"])


async def test_the_default_channel_comes_from_tars_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [("tars.yaml", "  reminders: call\n", "  reminders: sms\n")])
    async with Line(project, EchoBrain) as line:
        rid = add_due(project, "stretch")
        await status_becomes(project, rid, "delivered")
        assert [m.body for m in line.twilio.messages] == ["Reminder: stretch"]


async def test_a_weekly_reminder_gets_its_next_occurrence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tars import timeparse

    project = make_project(tmp_path / "p", monkeypatch)
    rid = add_due(project, "put the bins out", via="sms", every="weekly")
    first = reminder(project, rid)
    async with Line(project, EchoBrain) as line:
        moved = await _wait_moved(project, rid, first.due)
        assert [m.body for m in line.twilio.messages] == ["Reminder: put the bins out"]
    tz = project.owner.timezone
    assert moved.status == "pending" and moved.delivered_at is not None and moved.attempts == 0
    before, after = timeparse.local(first.due, tz), timeparse.local(moved.due, tz)
    assert after.date() - before.date() == dt.timedelta(days=7)
    assert after.time() == before.time()  # the wall-clock time is kept, whatever DST does


async def _wait_moved(project, rid, due):  # type: ignore[no-untyped-def]
    import asyncio

    from tests.scheduler.helpers import eventually

    def check():  # type: ignore[no-untyped-def]
        found = reminder(project, rid)
        return found if found.due != due else None

    return await eventually(lambda: asyncio.to_thread(check), 15, "the next occurrence")


async def test_failures_are_retried_then_end_failed_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tars
) -> None:  # type: ignore[no-untyped-def]
    edits = [WEBHOOK, ("tars.yaml", "  retries: 3\n", "  retries: 1\n")]
    project = make_project(tmp_path / "p", monkeypatch, edits)
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        line.server.server.scheduler.backoff_seconds = 0.2
        line.webhooks.reply("delivery", 500, {"error": "n8n is down"})
        rid = add_due(project, "pay the rent", via="webhook")
        gone = await status_becomes(project, rid, "failed")
        assert len(line.webhooks.requests) == 2  # the attempt and one retry (delivery.retries: 1)
    assert gone.attempts == 2 and "HTTP 500" in gone.last_error and "n8n is down" in gone.last_error
    listed = tars("--project", project.root, "remind", "list")
    assert listed.exit_code == 0
    assert "failed:" in listed.stdout and "HTTP 500" in listed.stdout


async def test_reminders_missed_while_no_server_ran_are_delivered_late_or_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edits = [("tars.yaml", "    action: deliver\n", "    action: skip\n    skip_after_hours: 2\n")]
    project = make_project(tmp_path / "p", monkeypatch, edits)
    recent = add_due(project, "feed the cat", via="sms", ago=30 * 60)  # half an hour late: delivered
    stale = add_due(project, "buy bread", via="sms", ago=3 * 3600)  # three hours late: skipped
    daily = add_due(project, "take the pills", via="sms", ago=3 * 3600, every="daily")  # skipped, moves on
    missed = reminder(project, daily).due
    async with Line(project, EchoBrain) as line:
        late = await status_becomes(project, recent, "delivered")
        skipped = await status_becomes(project, stale, "failed")
        moved = await _wait_moved(project, daily, missed)
        bodies = [m.body for m in line.twilio.messages]
    assert len(bodies) == 1 and bodies[0].startswith("Reminder: feed the cat (late: it was due ")
    assert late.late is True
    assert skipped.last_error.startswith("skipped: it fell due at ") and "skip after 2 h" in skipped.last_error
    assert moved.status == "pending" and moved.due > dt.datetime.now(dt.UTC) and moved.last_error.startswith("skipped")
