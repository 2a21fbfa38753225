"""Memory across calls: a contact who rings again is remembered, briefly, and only by roles
that declare `memory` in tars.yaml."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tars.calls.memory import recall, recollection
from tars.emulators.gemini.emulator import CallTool, Say
from tars.store.calls import start_call, update_call
from tars.store.contacts import Rules, add_contact
from tars.store.database import connect
from tests.server.harness import Line, Receptionist, make_project, place
from tests.server.test_owner_calls import greet_then

HELEN = "+447700900456"


def past_call(project: Any, contact_id: int | None, summary: str, number: str = HELEN) -> int:
    with connect(project.database_url) as db, db.session() as s:
        call = start_call(s, direction="inbound", from_number=number, to_number="+15005550001", contact_id=contact_id)
        update_call(s, int(call.id), summary=summary, status="completed")
        s.commit()
        return int(call.id)


def helen(project: Any) -> int:
    with connect(project.database_url) as db, db.session() as s:
        contact = add_contact(s, Rules.of(project), name="Helen Price", phone=HELEN)
        s.commit()
        return int(contact.id)


async def test_a_contact_who_calls_again_is_told_what_happened_last_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    past_call(project, helen(project), "Helen asked Alex to call back about the boat; TARS promised he would.")
    brain = greet_then(CallTool("end_call", {}), Say("Bye."))
    async with Line(project, lambda: brain) as line:
        call = await line.call_in(from_=HELEN)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("bye")
        await call.wait_ended(timeout=30)
        instruction = line.gemini.sessions[0].system_instruction
    assert "What happened on your last calls with them" in instruction
    assert "they called: Helen asked Alex to call back about the boat; TARS promised he would." in instruction


async def test_only_roles_that_remember_are_told_and_only_within_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    contact = helen(project)
    for n in range(1, 6):
        past_call(project, contact, f"Call number {n}: " + "words " * 20)
    later = past_call(project, contact, "this call")
    contact_role, unknown = project.roles["contact"], project.roles["unknown"]
    with connect(project.database_url) as db:
        told = await recall(project, db, contact_role, later, contact, "")
        assert await recall(project, db, unknown, later, contact, "") == ""  # no memory declared
        assert await recall(project, db, contact_role, later, None, "") == ""  # nobody known
        short = await recall(project, db, dataclasses.replace(contact_role, memory_chars=300), later, contact, "")
    assert contact_role.memory_calls == 3 and len(told) <= contact_role.memory_chars
    assert [line.split(": ", 2)[1] for line in told.splitlines()[1:]] == ["Call number 5", "Call number 4"]
    assert len(short) <= 300 and "Call number 5" in short and "Call number 4" not in short


def test_the_newest_call_alone_too_long_is_cut_not_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    role = dataclasses.replace(project.roles["contact"], memory_chars=200)

    @dataclasses.dataclass
    class Past:
        summary: str
        playbook: str | None = None
        direction: str = "inbound"
        outcome: Any = None
        started_at: Any = None
        created_at: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.UTC))

    text = recollection(project, role, [Past("x" * 500)])
    assert len(text) <= 200 and text.endswith("…")


async def test_a_second_goal_call_to_the_dentist_recalls_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line:
        for _ in range(2):
            await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
            call = await line.twilio.next_call(timeout=10)
            await call.wait_for_agent_utterance(timeout=20)
            await call.say("We have Wednesday at 3pm")
            await call.wait_ended(timeout=30)
            await line.settle()
        first, second = (s.system_instruction for s in line.gemini.sessions)
    assert "What happened on your last calls" not in first
    assert "goal call (book_appointment): The call ended booked" in second
