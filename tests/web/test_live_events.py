"""The live view reads the database, so any server sharing it streams any call: the call runs
on one `tars serve`, the owner's browser watches it through another."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from markupsafe import escape

from tests.server.harness import Line, Receptionist, make_project, place
from tests.web.helpers import Chatty, jar, next_event, sign_in


async def test_another_server_streams_the_live_call_line_by_line_until_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Chatty) as line, aiohttp.ClientSession(cookie_jar=jar()) as http:
        watcher = await line.another_server()  # Twilio keeps sending the call to line.server
        base = watcher.local_url
        assert (await sign_in(http, base, watcher.api_token)).status == 303
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=30)
        assert not watcher.server.sessions, "the watcher holds no call of its own"

        async with http.get(f"{base}/events") as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            name, live = await next_event(stream)
            while not live:  # the call's heartbeat reaches the database at the scheduler's next beat
                name, live = await next_event(stream)
        assert name == "live" and [c["role"] for c in live] == ["owner"]
        call_id = live[0]["id"]

        said: list[str] = []
        async with http.get(f"{base}/calls/{call_id}/events") as stream:
            name, update = await next_event(stream)
            assert name == "update" and update["call"]["status"] == "in-progress"
            said += [f"{line['label']}: {line['text']}" for line in update["lines"]]
            assert [t["tool"] for t in update["tools"]] == ["open_the_pod_bay_doors"]
            assert update["tools"][0]["allowed"] is False
            await call.say("Please water the plants at six.")
            while "TARS: Noted: Please water the plants at six." not in said:
                name, update = await next_event(stream)
                said += [f"{line['label']}: {line['text']}" for line in update["lines"]]
            await call.hang_up()
            while name != "end":
                name, update = await next_event(stream)
            assert update["status"] == "completed"
    assert said[:3] == [
        "TARS: Hello, TARS here.",
        "Alex Morgan: Please water the plants at six.",
        "TARS: Noted: Please water the plants at six.",
    ]


async def test_a_goal_call_shows_its_playbook_steps_tools_and_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line, aiohttp.ClientSession(cookie_jar=jar()) as http:
        base = line.server.local_url
        assert (await sign_in(http, base, line.server.api_token)).status == 303
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        steps: list[str] = []
        tools: list[tuple[str, bool]] = []
        async with http.get(f"{base}/calls/{placed['call_id']}/events") as stream:
            call = await line.twilio.next_call(timeout=10)
            await call.wait_for_agent_utterance(timeout=20)
            await call.say("We have Wednesday at 3pm")
            name, update = await next_event(stream)
            while name != "end":
                assert (update["call"]["playbook"], update["call"]["role"]) == ("book_appointment", "delegate")
                if update["call"]["step"] and update["call"]["step"] not in steps:
                    steps.append(update["call"]["step"])
                tools += [(t["tool"], t["allowed"]) for t in update["tools"]]
                final = update["call"]
                name, update = await next_event(stream)
        async with http.get(f"{base}/calls/{placed['call_id']}") as r:
            page = await r.text()
    assert steps and steps == [s for s in ("find_slot", "confirm", "wrap_up") if s in steps]  # in order
    assert steps[-1] == "wrap_up"
    assert ("goto_step", True) in tools and ("record_outcome", True) in tools
    assert final["status"] == "completed" and final["outcome_source"] == "recorded"
    assert final["outcome"] == "status: booked, when: 2026-11-25T15:00:00+00:00"
    assert "status: booked, when: 2026-11-25T15:00:00+00:00" in page and str(escape(final["summary"])) in page
