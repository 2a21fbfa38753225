"""Google Search grounding per role: a role granted ``google_search`` gets Gemini's own search
tool in its Live setup, and the pages a searched answer rests on are stored with the call and
shown by `tars calls show`; a role without it is not offered the tool."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tars.cli.app import app
from tars.emulators.gemini.emulator import CallTool, Say, Search
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then

HELEN = "+447700900456"
REDIRECT = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQH3kq"
ANSWER = "Bright Smile Dental opens at nine on Saturdays, sir."
OWNER_SEARCHES = ("tars.yaml", "      - search_calls\n", "      - search_calls\n      - google_search\n")


async def test_a_role_granted_google_search_gets_it_and_the_sources_are_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tars.store.calls import call_details

    project = make_project(tmp_path / "p", monkeypatch, [OWNER_SEARCHES])
    brain = greet_then(
        [
            Search(("Bright Smile Dental Saturday opening hours",), ((REDIRECT, "brightsmile.example"),), ANSWER),
            CallTool("end_call", {"reason": "done"}),
        ]
    )
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("when does the dentist open on Saturday?")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        [session] = line.gemini.sessions

    assert {"googleSearch": {}} in session.setup["tools"]
    assert "google_search" not in session.tool_names  # Gemini's own tool, not a function of TARS
    with line.db() as db, db.session() as s:
        stored = call_details(s, call.sid).call
    assert stored.sources == [{"uri": REDIRECT, "title": "brightsmile.example", "supports": [ANSWER]}]
    shown = CliRunner().invoke(app, ["--project", str(project.root), "calls", "show", str(stored.id)])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert f"Sources (Google Search) 1. brightsmile.example — {REDIRECT}" in text
    assert ANSWER in text


async def test_a_role_without_google_search_is_not_offered_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tars.store.contacts import Rules, add_contact
    from tars.store.database import connect

    project = make_project(tmp_path / "p", monkeypatch, [OWNER_SEARCHES])
    with connect(project.database_url) as db, db.session() as s:
        add_contact(s, Rules.of(project), name="Helen Price", phone=HELEN)
    brain = greet_then([Say("I can take a message."), CallTool("end_call", {"reason": "done"})])
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=HELEN)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("can you look up the dentist's hours?")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        [session] = line.gemini.sessions

    assert not session.google_search
    assert all("googleSearch" not in tool for tool in session.setup.get("tools", []))
