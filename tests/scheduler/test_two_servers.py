"""Two `tars serve`s on one database (SQLite, and the local PostgreSQL): Twilio's webhooks and
streams for one call may reach either, and nothing about the call lives in one server's memory.

Each server here is the real app under uvicorn with its own switchboard and scheduler (its own
server id); what they share is only the database, as two processes would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, make_project, place
from tests.server.test_goal_calls import MenuThenPerson
from tests.waiting import eventually

DENTIST = "+442079460123"
HELEN = "+447700900456"


def shared_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Any:
    storage = f"version: 1\n\nstorage:\n  url: '{database_url}'\n"
    return make_project(tmp_path / "p", monkeypatch, [("tars.yaml", "version: 1\n", storage)])


def open_hours(line: Line, *servers: Any) -> None:
    """Every server's switchboard clock inside the practices' hours (a Wednesday, 10:00)."""
    wednesday = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
    for running in (line.server, *servers):
        running.server.clock = lambda: wednesday


class MenuOnOneServerPersonOnTheOther(MenuThenPerson):
    """A phone menu (press 2), pressed while Twilio's traffic is moved to the other server; the
    fresh stream then reaches that server, which resumes the same model session, and a person
    answers."""

    def __init__(self, move: Callable[[], None]):
        super().__init__()
        self.move = move
        self.openings: list[str] = []

    async def on_start(self, session: Any) -> list[Any]:
        self.move()
        return await super().on_start(session)

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "You pressed 2" in text:
            self.openings.append(text)
        return await super().on_user(session, text)


async def test_a_keypad_handover_continues_at_the_same_step_on_the_other_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    from tars.store.calls import call_details

    project = shared_project(tmp_path, monkeypatch, database_url)
    holder: dict[str, Any] = {}
    brain = MenuOnOneServerPersonOnTheOther(lambda: holder["line"].send_twilio_to(holder["second"]))
    async with Line(project, lambda: brain) as line:
        second = await line.another_server()
        holder.update(line=line, second=second)
        placed = await place(line, "la_piazza", "business_inquiry", {"question": "opening hours on Saturday"})
        assert placed["http"] == 201, placed
        call = await line.twilio.next_call(timeout=10)
        [session] = await line.gemini.wait_for(lambda: line.gemini.sessions, what="the model session")
        await line.gemini.wait_for(lambda: session.connections == 2, what="the stream after the keys", timeout=30)
        on_second = await eventually(lambda: second.server.session_for(placed["call_id"]), 10, "the call on server 2")
        assert line.server is not None
        first = line.server.server
        await eventually(lambda: first.session_for(placed["call_id"]) is None, 10, "server 1 to let the call go")
        resumed_at = list(on_second.playbook.visited)
        heard = await call.wait_for_agent_utterance(timeout=20)
        while "opening hours" not in heard.text:
            heard = await call.wait_for_agent_utterance(timeout=20)
        await call.say("we are open nine to five")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        sms = [m for m in line.twilio.messages if m.to == project.owner.phone]
    assert call.agent_digits == ["2"]
    assert resumed_at == ["ask"]  # the run stored by server 1, continued by server 2 at its step
    # Server 2 continued the model session server 1 had (its handle stored with the run).
    assert "You pressed 2 on the phone menu" in brain.openings[0] and "[Playbook step: ask]" in brain.openings[0]
    assert len(line.gemini.sessions) == 1 and session.model_texts()[0] == "Hello."
    with line.db() as db, db.session() as s:
        record = call_details(s, placed["call_id"])
    assert record.call.outcome == {"status": "answered", "answer": "Saturday 9 to 5"}
    assert record.call.resume_digits is None
    assert len(sms) == 1, "one report for the whole call"


class AsksTheOwner:
    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Hello, this is TARS for Alex."), CallTool("goto_step", {"step": "find_slot"})]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "three or four" in text:
            return [CallTool("ask_owner", {"question": "Wednesday at three or at four?"})]
        return []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        if name == "ask_owner":
            self.answer = response
            return [CallTool("record_outcome", {"status": "booked", "when": "2026-11-25T15:00:00+00:00"})]
        if response.get("next_step") == "find_slot":
            return [Say("Do you have anything on Wednesday?")]
        if response.get("next_step") == "confirm":
            return [CallTool("goto_step", {"step": "wrap_up"})]
        if response.get("next_step") == "wrap_up":
            return [Say("Thank you, goodbye."), CallTool("end_call", {})]
        return []


async def test_the_owners_text_reaching_the_other_server_answers_the_question(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    project = shared_project(tmp_path, monkeypatch, database_url)
    brain = AsksTheOwner()
    async with Line(project, lambda: brain) as line:
        second = await line.another_server()
        open_hours(line, second)
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        assert placed["http"] == 201, placed
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("We could do three or four")
        [question] = await eventually(line.questions_texted, 20, "the question texted to the owner")
        line.send_twilio_to(second)  # the owner's reply reaches the server not holding the call
        code = question.rsplit(" ", 1)[1]
        reply = await line.owner_texts(f"{code} three")
        assert reply.status == 200 and "<Message>" not in reply.body
        assert reply.local_url.startswith(second.local_url)
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    assert brain.answer == {"owner_said": "three"}


async def test_tars_calls_join_on_one_server_while_the_other_holds_the_stream_keeps_the_call_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """`tars calls join` asks server 1; the goal call's stream is on server 2, and ends when the
    call moves into the conference. While Alex talks to the dentist the call is live (not
    completed, not orphaned for any server's reaper), and it ends, taken over, when they hang up."""
    from typer.testing import CliRunner

    from tars.cli.app import app
    from tars.emulators.twilio.emulator import Party
    from tars.store.call_queue import reap_lapsed
    from tars.store.calls import call_details, get_call
    from tars.telephony.reconcile import orphaned
    from tests.server.harness import Receptionist

    project = shared_project(tmp_path, monkeypatch, database_url)
    async with Line(project, Receptionist) as line:
        assert line.server is not None
        second = await line.another_server()
        open_hours(line, second)
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)  # `tars calls join` asks server 1
        line.twilio.set_party(project.owner.phone, Party(gather=["1"], script=[{"say": "Alex here, I'll take it."}]))
        line.send_twilio_to(second)  # the goal call's webhooks and stream reach server 2
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call_id = placed["call_id"]
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        assert second.server.session_for(call_id) is not None and line.server.server.session_for(call_id) is None
        argv = ["--project", str(project.root), "calls", "join", str(call_id)]
        joined = await asyncio.to_thread(CliRunner().invoke, app, argv)
        assert joined.exit_code == 0, joined.output
        heard = await call.wait_for_agent_utterance(timeout=30)
        while heard.text != "Alex here, I'll take it.":
            heard = await call.wait_for_agent_utterance(timeout=30)
        await eventually(lambda: second.server.session_for(call_id) is None, 10, "server 2's stream to end")
        await line.settle()  # every server done with the stream (its row written)
        with line.db() as db, db.session() as s:
            during = get_call(s, call_id)
            later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # every heartbeat long lapsed
            reaped = reap_lapsed(s, later, dt.timedelta(seconds=30))
            taken_for_orphans = [c.id for c in orphaned(s, "a third server", later)]
        await call.hang_up()
        await line.settle()

    assert (during.status, during.ended_at, during.live_on) == ("in-progress", None, None)
    assert during.outcome == {"status": "taken_over", "reason": "the owner joined the call and took it over"}
    assert call_id not in reaped and call_id not in taken_for_orphans
    with line.db() as db, db.session() as s:
        details = call_details(s, call_id)
    assert details.call.status == "completed" and details.call.ended_at is not None
    assert [(t.kind, t.result) for t in details.transfers] == [("join", "completed")]
    joining = [line.text for line in details.transcript if "joining the call" in line.text]
    assert joining == ["Alex Morgan is joining the call to take it over"]  # written by server 1


async def test_a_join_declined_on_one_server_comes_back_to_the_other_at_the_same_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """Server 2 holds the goal call's stream, at step 2; Alex asks server 1 to join, and lets
    the brief go by. The call comes back on a stream that reaches server 1, which carries on at
    the step server 2 was on, in the model session server 2 had (both stored on the call)."""
    from typer.testing import CliRunner

    from tars.cli.app import app
    from tars.emulators.twilio.emulator import Party
    from tars.store.calls import get_call
    from tests.server.test_calls_join import AGAIN, ASKING, BackFromTheJoin

    project = shared_project(tmp_path, monkeypatch, database_url)
    brain = BackFromTheJoin()
    async with Line(project, lambda: brain) as line:
        assert line.server is not None
        second = await line.another_server()
        open_hours(line, second)
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        line.twilio.set_party(project.owner.phone, Party(gather=[]))  # hears the brief, presses nothing
        line.send_twilio_to(second)
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call_id = placed["call_id"]
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        await line.gemini.wait_for(lambda: ASKING in said_by_the_model(line), what="step 2's question")
        assert second.server.session_for(call_id) is not None
        argv = ["--project", str(project.root), "calls", "join", str(call_id)]
        joined = await asyncio.to_thread(CliRunner().invoke, app, argv)
        assert joined.exit_code == 0, joined.output
        line.send_twilio_to(line.server)  # the transfer's webhooks and the stream back reach server 1
        heard = await call.wait_for_agent_utterance(timeout=60)
        while heard.text != AGAIN:  # the hold message while Alex's phone rings
            heard = await call.wait_for_agent_utterance(timeout=60)
        back_on = line.server.server.session_for(call_id)
        await call.say("Yes, Wednesday at 3 works.")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        models = len([m for m in line.gemini.sessions if m.started])  # (server 1 opened one ahead, unused)
        reports = [m for m in line.twilio.messages if m.to == project.owner.phone]
    assert back_on is not None and back_on.playbook.step != "introduce"
    assert models == 1 and len(brain.told) == 1 and "[Playbook step: find_slot]" in brain.told[0]
    with line.db() as db, db.session() as s:
        row = get_call(s, call_id)
    assert (row.status, row.outcome) == ("completed", {"status": "booked", "when": "2026-11-25T15:00:00+00:00"})
    assert len(reports) == 1, "one report for the whole call"


def said_by_the_model(line: Line) -> list[str]:
    """Everything the model said, in every session (one opened ahead on another server included)."""
    return [text for session in line.gemini.sessions for text in session.model_texts()]


async def test_sessions_lists_the_live_calls_of_both_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, tars: Any
) -> None:
    from tars.emulators.gemini.emulator import EchoBrain

    project = shared_project(tmp_path, monkeypatch, database_url)
    async with Line(project, EchoBrain) as line:
        second = await line.another_server()
        owner = await line.call_in(from_=project.owner.phone)
        await owner.wait_for_agent_utterance(timeout=20)
        line.send_twilio_to(second)
        helen = await line.call_in(from_=HELEN)
        await helen.wait_for_agent_utterance(timeout=20)

        def listed() -> list[dict[str, Any]] | None:
            result = tars("--project", tmp_path / "p", "sessions", "--json")
            found = json.loads(result.output)
            return found if len(found) == 2 else None

        live = await eventually(lambda: asyncio.to_thread(listed), 15, "both calls in tars sessions")
        table = await asyncio.to_thread(tars, "--project", tmp_path / "p", "sessions")
        await owner.hang_up()
        await helen.hang_up()
    assert line.server is not None
    assert [(s["name"], s["role"], s["purpose"]) for s in live] == [
        ("the call with Alex Morgan", "owner", "inbound"),
        (f"the call with {HELEN}", "unknown", "inbound"),
    ]
    assert [s["server"] for s in live] == [line.server.server.scheduler.id, second.server.scheduler.id]
    assert table.exit_code == 0 and "owner" in table.output and "unknown" in table.output


async def test_the_sessions_of_a_server_that_died_are_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, tars: Any
) -> None:
    """A server killed mid-call stops renewing its sessions; another server finishes them."""
    from tars.emulators.gemini.emulator import EchoBrain
    from tars.store.call_queue import mark_live
    from tars.store.calls import get_call, start_call, update_call
    from tars.store.database import connect

    project = shared_project(tmp_path, monkeypatch, database_url)
    with connect(project.database_url) as db, db.session() as s:
        dead = start_call(s, direction="inbound", from_number=HELEN, to_number="+447700900999", role="unknown")
        update_call(s, dead.id, status="in-progress")
        mark_live(s, [dead.id], "dead-host:4242:abcdef", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    assert json.loads(tars("--project", tmp_path / "p", "sessions", "--json").output) == []  # lapsed: not live
    async with Line(project, EchoBrain):

        def finished() -> Any:
            with connect(project.database_url) as db, db.session() as s:
                row = get_call(s, dead.id)
            return row if row.status == "failed" else None

        row = await eventually(lambda: asyncio.to_thread(finished), 15, "the dead server's call reaped")
    assert row.failure_reason == "the server holding the call stopped (its live session lapsed)"
    assert row.ended_at is not None and row.live_on is None


async def test_the_call_limit_counts_the_calls_of_every_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    from tars.emulators.gemini.emulator import EchoBrain

    storage = f"version: 1\n\nstorage:\n  url: '{database_url}'\n"
    edits = [
        ("tars.yaml", "version: 1\n", storage),
        ("tars.yaml", "max_concurrent_calls: 4", "max_concurrent_calls: 1"),
    ]
    project = make_project(tmp_path / "p", monkeypatch, edits)
    async with Line(project, EchoBrain) as line:
        second = await line.another_server()
        owner = await line.call_in(from_=project.owner.phone)
        await owner.wait_for_agent_utterance(timeout=20)
        assert line.server is not None
        first = line.server.server
        await eventually(lambda: second.server.scheduler.ticks > 1 and first.scheduler.ticks > 1, 10, "ticks")
        await eventually(lambda: asyncio.to_thread(lambda: _live_count(project)), 10, "the owner's session row")
        line.send_twilio_to(second)
        helen = await line.call_in(from_=HELEN)
        assert await helen.wait_ended(timeout=20) == "completed"
        heard = [u.text for u in helen.heard]
        await owner.hang_up()
    assert heard == ["Sorry, the assistant is busy on other calls right now. Please try again in a few minutes."]


def _live_count(project: Any) -> int:
    from tars.store.call_queue import live_sessions
    from tars.store.database import connect

    with connect(project.database_url) as db, db.session() as s:
        return len(live_sessions(s, dt.datetime.now(dt.UTC)))


@pytest.mark.postgresql
async def test_on_postgresql_work_stored_elsewhere_wakes_the_server_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """LISTEN/NOTIFY: a server that would next look in a minute looks when another process
    commits work (here: a NOTIFY from a connection of its own, as `tars remind add` sends)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    import psycopg

    from tars.emulators.gemini.emulator import EchoBrain
    from tars.scheduler.listen import conninfo
    from tars.store.database import connect
    from tars.store.reminders import add_reminder

    storage = f"version: 1\n\nstorage:\n  url: '{database_url}'\n\nscheduler:\n  poll_seconds: 60\n"
    project = make_project(tmp_path / "p", monkeypatch, [("tars.yaml", "version: 1\n", storage)])
    async with Line(project, EchoBrain) as line:
        assert line.server is not None
        scheduler = line.server.server.scheduler
        await eventually(lambda: scheduler.ticks >= 1, 10, "the first tick")
        with connect(project.database_url) as db:
            url = conninfo(db.engine)
        ticks = scheduler.ticks
        with psycopg.connect(url, autocommit=True) as other:  # another process's connection
            other.execute("NOTIFY tars_wake")
        await eventually(lambda: scheduler.ticks > ticks, 30, "a tick woken by NOTIFY")

    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN tars_wake")
        with connect(project.database_url) as db, db.session() as s:  # what `tars remind add` does
            add_reminder(s, text="call Helen", due=now + dt.timedelta(hours=1), timezone="UTC", now=now)
            assert list(listener.notifies(timeout=0.2, stop_after=1)) == []  # not before the commit
            s.commit()
        [heard] = list(listener.notifies(timeout=10, stop_after=1))
    assert heard.channel == "tars_wake"
