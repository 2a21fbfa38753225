"""Every refused inbound request is a security event: a warning in the log with no secret in
it, a row in the database, and a text to the owner, at most one per kind an hour."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import aiohttp
import pytest

from tars.emulators.gemini.emulator import ScriptedBrain
from tests.server.harness import Line, make_project
from tests.server.test_attacks import CLOSED, events, open_stream, signed
from tests.server.test_callers import STRANGER

FORGED = "Zm9yZ2VkLXNpZ25hdHVyZQ=="  # what a forger presents as X-Twilio-Signature
WRONG_TOKEN = "not-the-api-token-5f3a"


async def test_refused_requests_are_recorded_and_the_owner_is_told_once_per_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    project = make_project(tmp_path / "p", monkeypatch)
    owner = project.owner.phone
    async with Line(project, ScriptedBrain) as line, aiohttp.ClientSession() as http:
        assert line.server is not None
        base = line.server.local_url
        form = {"CallSid": "CA" + "f" * 32, "From": STRANGER, "To": line.number, "AccountSid": "AC" + "1" * 32}
        for path in ("/twilio/voice", "/twilio/voice", "/twilio/sms"):
            async with http.post(f"{base}{path}", data=form, headers={"X-Twilio-Signature": FORGED}) as response:
                assert response.status == 403
        async with http.post(
            f"{base}/api/calls", json={}, headers={"Authorization": f"Bearer {WRONG_TOKEN}"}
        ) as response:
            assert response.status == 401
        # Genuine stream parameters, presented a second time.
        genuine = {**form, "CallSid": "CA" + "a" * 32}
        async with http.post(f"{base}/twilio/voice", data=genuine, headers=signed("/twilio/voice", genuine)) as got:
            params = {p.get("name"): p.get("value") for p in ET.fromstring(await got.text()).iter("Parameter")}
        first = await open_stream(http, line, params)
        again = await open_stream(http, line, params)
        assert (await again.receive(timeout=10)).type in CLOSED
        await again.close()
        await first.close()
        await line.settle()
        texts = [m.body for m in line.twilio.messages if m.to == owner and m.body.startswith("Security:")]
    assert events(line) == [
        ("twilio_signature", "a webhook to /twilio/voice with a missing or invalid Twilio signature"),
        ("twilio_signature", "a webhook to /twilio/voice with a missing or invalid Twilio signature"),
        ("twilio_signature", "a webhook to /twilio/sms with a missing or invalid Twilio signature"),
        ("api_token", "a local API request (POST /api/calls) with a missing or wrong API token"),
        ("stream_token", "a media stream: stream parameters were already used"),
    ]
    # One text per kind, however many were refused: the first of each.
    assert sorted(texts) == sorted(
        f"Security: {detail} (from 127.0.0.1). Further refusals of this kind within the hour are recorded, "
        "not texted: `tars security` lists them."
        for detail in (
            "a webhook to /twilio/voice with a missing or invalid Twilio signature",
            "a local API request (POST /api/calls) with a missing or wrong API token",
            "a media stream: stream parameters were already used",
        )
    )
    warnings = [r.getMessage() for r in caplog.records if r.name == "tars.security"]
    assert len(warnings) == 5 and all(r.levelno == logging.WARNING for r in caplog.records if r.name == "tars.security")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert FORGED not in logged and WRONG_TOKEN not in logged and params["sig"] not in logged
    # The owner, told to look, finds them all with `tars security`.
    from typer.testing import CliRunner

    from tars.cli.app import app

    shown = CliRunner().invoke(app, ["--project", str(project.root), "security", "--json"])
    assert shown.exit_code == 0, shown.output
    listed = json.loads(shown.output)
    assert [(e["kind"], e["source"]) for e in listed][:2] == [("stream_token", "127.0.0.1"), ("api_token", "127.0.0.1")]
    assert len(listed) == 5
    table = CliRunner().invoke(app, ["--project", str(project.root), "security"])
    assert table.exit_code == 0 and all(kind in table.output for kind in ("stream_token", "twilio_signature"))


async def test_the_hourly_limit_holds_across_servers_sharing_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit is a row in the database: a second server refusing within the hour texts nothing."""
    import datetime as dt

    from tars.store.database import connect
    from tars.store.security_events import claim_alert

    project = make_project(tmp_path / "p", monkeypatch)
    now = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    with connect(project.database_url) as one, connect(project.database_url) as two:
        with one.session() as s:
            assert claim_alert(s, "twilio_signature", now) is True
        with two.session() as s:
            assert claim_alert(s, "twilio_signature", now + dt.timedelta(minutes=59)) is False
            assert claim_alert(s, "api_token", now + dt.timedelta(minutes=59)) is True
        with one.session() as s:
            assert claim_alert(s, "twilio_signature", now + dt.timedelta(minutes=61)) is True
