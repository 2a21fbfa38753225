"""The owner asks about a past call on the phone ("what did the dentist say last time?"): the
``search_calls`` tool answers from the stored calls. A contact's role is never offered it, and a
forged call to it is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, make_project
from tests.server.test_owner_calls import greet_then

HELEN = "+447700900456"
DENTIST_SAID = "The dentist says the filling can wait until spring."


def a_past_dentist_call(project: Any) -> int:
    from tars.store import calls
    from tars.store.database import connect

    started = dt.datetime.now(dt.UTC) - dt.timedelta(days=6)
    with connect(project.database_url) as db, db.session() as s:
        call = calls.start_call(
            s, direction="outbound", from_number=project.owner.phone, to_number="+442079460123",
            playbook="book_appointment", status="in-progress", started_at=started, callee="Bright Smile Dental",
        )  # fmt: skip
        assert call.id is not None
        calls.add_line(s, call.id, "caller", "Bright Smile Dental, good morning.", started)
        calls.add_line(s, call.id, "caller", DENTIST_SAID, started + dt.timedelta(seconds=20))
        calls.update_call(
            s, call.id, status="completed", ended_at=started + dt.timedelta(minutes=2),
            summary="Asked about the filling; it can wait until spring.",
        )  # fmt: skip
        return call.id


async def test_the_owner_asks_what_the_dentist_said_last_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    past = a_past_dentist_call(project)
    brain = greet_then(
        CallTool("search_calls", {"query": "dentist"}),
        [Say("The dentist said the filling can wait until spring, sir."), CallTool("end_call", {"reason": "done"})],
    )
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("what did the dentist say last time?")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        [session] = line.gemini.sessions

    assert "search_calls" in session.tool_names
    answer = brain.events[2].response
    assert answer["count"] == 1, answer
    [found] = answer["calls"]
    assert found["call_id"] == past and found["with"] == "Bright Smile Dental" and found["kind"] == "goal"
    assert found["line"] == f"caller: {DENTIST_SAID}"
    # Once summed up, every finished call (this one too) is embedded for search by meaning.
    from tars.store.database import connect
    from tars.store.embeddings import stored

    with connect(project.database_url) as db, db.session() as s:
        assert stored(s) == {"gemini-embedding-001/768": 2}


async def test_a_contacts_role_cannot_search_past_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tars.store.calls import call_details
    from tars.store.contacts import Rules, add_contact
    from tars.store.database import connect

    project = make_project(tmp_path / "p", monkeypatch)
    a_past_dentist_call(project)
    with connect(project.database_url) as db, db.session() as s:
        add_contact(s, Rules.of(project), name="Helen Price", phone=HELEN)
    brain = greet_then(
        CallTool("search_calls", {"query": "dentist"}),  # forged: never offered to a contact
        [Say("I cannot look that up."), CallTool("end_call", {"reason": "done"})],
    )
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=HELEN)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("what did Alex's dentist say?")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        [session] = line.gemini.sessions

    assert "search_calls" not in session.tool_names
    assert brain.events[2].response == {"refused": "'search_calls' is not available to the contact role on this call"}
    assert DENTIST_SAID not in str(brain.events)
    with line.db() as db, db.session() as s:
        record = call_details(s, call.sid)
    assert [(t.tool, t.allowed) for t in record.tools][:1] == [("search_calls", False)]


async def test_the_owner_finds_a_call_by_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    past = a_past_dentist_call(project)
    brain = greet_then(
        CallTool("search_calls", {"query": "tooth doctor filling", "semantic": True}),
        [Say("It can wait until spring, sir."), CallTool("end_call", {"reason": "done"})],
    )
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=project.owner.phone)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("what did the tooth doctor say about my filling?")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        embedded = list(line.gemini.embed_requests)

    answer = brain.events[2].response
    assert [c["call_id"] for c in answer["calls"]] == [past], answer
    assert answer["calls"][0]["line"] == f"caller: {DENTIST_SAID}"
    assert embedded, "the call and the question were embedded by the Gemini emulator"
