"""A model that stops answering (``tars.calls.watchdog``): nudged once, then its session
reconnected once, then the apology.

The emulator scripts both kinds of stall (``Stall``): one that belongs to the connection, which
a new connection cures, and one of the service, which nothing cures. ``model.stall_seconds``
is 1.5 s here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tars.calls.watchdog import AnswerWatchdog
from tars.emulators.gemini.emulator import CallTool, Say, Stall
from tests.server.harness import Line, make_project, place
from tests.server.test_model_handover import HELEN, stored

QUICK = ("tars.yaml", "  voice: Charon\n", "  voice: Charon\n  stall_seconds: 1.5\n")
QUESTION = "What time is it?"
ANSWER = "Sorry, sir: it is ten o'clock."


class Stalls:
    """Greets; goes quiet (``Stall(lasting)``) on the first question; answers where it is heard again."""

    def __init__(self, lasting: str):
        self.lasting = lasting
        self.stalled = False
        self.heard: list[tuple[str, int, str]] = []  # (session, connection, text) the brain was asked about

    async def on_start(self, session: Any) -> list[Any]:
        if not self.stalled:
            return [Say("Good morning, sir.")]
        self.heard.append((session.id, session.connections, session.history[-1]["text"]))
        return [Say(ANSWER)]  # a new session taking over, told the call so far

    async def on_user(self, session: Any, text: str) -> list[Any]:
        self.heard.append((session.id, session.connections, text))
        if "Goodbye" in text:
            return [Say("Goodbye, sir."), CallTool("end_call", {"reason": "done"})]
        if not self.stalled:
            self.stalled = True
            return [Stall(self.lasting)]
        return [Say(ANSWER)] if QUESTION in text else []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        return []


def system_lines(record: Any) -> list[str]:
    return [t.text for t in record.transcript if t.speaker == "system"]


def in_order(lines: list[tuple[str, str]], expected: list[tuple[str, str]]) -> None:
    where = [lines.index(entry) for entry in expected]
    assert where == sorted(where), lines


async def owner_asks_the_time(line: Line, project: Any) -> Any:
    call = await line.call_in(from_=project.owner.phone)
    assert (await call.wait_for_agent_utterance(timeout=20)).text == "Good morning, sir."
    [session] = await line.gemini.wait_for(lambda: line.gemini.sessions, what="the model session")
    await line.gemini.wait_for(lambda: session.handles, what="a resumption handle")
    await call.say(QUESTION)
    return call


async def test_a_stall_of_the_connection_is_cured_by_resuming_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [QUICK])
    brain = Stalls("connection")
    async with Line(project, lambda: brain) as line:
        call = await owner_asks_the_time(line, project)
        assert (await call.wait_for_agent_utterance(timeout=30)).text == ANSWER
        await call.say("Thank you. Goodbye.")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    [session] = line.gemini.sessions
    assert line.gemini.violations == [] and line.gemini.errors == []
    # Resumed with its latest handle; the caller's words reached the new connection in the
    # audio sent again, so they were not told to it in words as well.
    assert session.connections == 2 and session.setups[1]["sessionResumption"]["handle"] in session.handles
    assert brain.heard[:2] == [(session.id, 1, QUESTION), (session.id, 2, QUESTION)]
    assert [c for c, _ in session.unanswered] == [1]  # the nudge, on the stalled connection
    texts = [f.data["text"] for f in session.frames_of("realtimeInput") if f.connection == 2 and "text" in f.data]
    assert not any(QUESTION in t for t in texts), texts
    record = stored(line, call.sid)
    assert (record.call.status, record.call.failure_reason) == ("completed", None)
    lines = [(t.speaker, t.text) for t in record.transcript]
    in_order(
        lines,
        [
            ("caller", QUESTION),
            ("system", "the model did not answer the caller; it is nudged once"),
            ("system", "the model did not answer the nudge either; its session is reconnected"),
            ("system", "the model session goes on over a new connection (resumed)"),
            ("assistant", ANSWER),
            ("system", "the model stalled; the session was reconnected"),
            ("assistant", "Goodbye, sir."),
        ],
    )


async def test_a_session_that_cannot_be_resumed_is_replaced_by_one_told_the_call_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [QUICK])
    brain = Stalls("session")  # a resumed session would stay quiet: only a new one answers
    async with Line(project, lambda: brain) as line:
        line.gemini.refuse_resumption = True
        call = await owner_asks_the_time(line, project)
        assert (await call.wait_for_agent_utterance(timeout=30)).text == ANSWER
        await call.say("Thank you. Goodbye.")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    first, second = line.gemini.sessions
    assert line.gemini.violations == [] and line.gemini.errors == []
    assert [reason for _, _, reason in line.gemini.live.rejected] == [
        "Session resumption handle is invalid or expired."
    ]
    # The new session's first message is the call so far and the caller's unanswered words.
    [seed] = [text for sid, _, text in brain.heard if sid == second.id and "call so far" in text]
    assert f"caller: {QUESTION}" in seed and f'The caller said "{QUESTION}"' in seed
    assert "Good morning, sir." in seed
    assert all(QUESTION not in text for text in second.user_texts())  # not sent again as audio or text
    record = stored(line, call.sid)
    assert (record.call.status, record.call.failure_reason) == ("completed", None)
    in_order(
        [(t.speaker, t.text) for t in record.transcript],
        [
            ("system", "the model did not answer the nudge either; its session is reconnected"),
            ("system", "the stalled model session could not be resumed; a new session is told the call so far"),
            ("system", "the model session goes on over a new connection (a new session, told the call so far)"),
            ("assistant", ANSWER),
            ("system", "the model stalled; the session was reconnected"),
        ],
    )
    assert first.connections == 1 and [c for c, _ in first.unanswered] == [1]  # the nudge, left unanswered


async def test_a_stall_that_outlasts_the_reconnect_ends_the_call_with_the_apology(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [QUICK])
    brain = Stalls("service")
    async with Line(project, lambda: brain) as line:
        call = await owner_asks_the_time(line, project)
        assert await call.wait_ended(timeout=60) == "completed"
        heard = [u.text for u in call.heard]
        await line.settle()
    [session] = line.gemini.sessions
    assert any("technical trouble" in text for text in heard), heard
    # The caller's words reached the reconnected session too, which said nothing.
    assert session.connections == 2 and (2, QUESTION) in session.unanswered
    record = stored(line, call.sid)
    assert record.call.status == "failed"
    assert record.call.failure_reason == (
        "model session failed: the model stopped answering: a caller turn went unanswered, "
        "even after a nudge and a reconnect"
    )
    assert [t for t in system_lines(record) if "model" in t and "service" not in t] == [
        "the model did not answer the caller; it is nudged once",
        "the model did not answer the nudge either; its session is reconnected",
        "the model session goes on over a new connection (resumed)",
        "the reconnected model session did not answer either; the call ends with an apology",
    ]


class AsksTheOwner:
    """The dinner call: invites, asks the owner (NON_BLOCKING, unanswered), and goes quiet
    when the guest speaks meanwhile."""

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Hi Helen, it's TARS for Alex. Dinner on Friday?"), CallTool("goto_step", {"step": "negotiate"})]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        return [Stall("connection")] if "still there" in text else []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        if response.get("next_step") == "negotiate":
            return [CallTool("ask_owner", {"question": "Helen can only do Saturday at 7. OK?"})]
        return []


async def test_no_reconnect_while_a_tool_call_is_unanswered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [QUICK])
    async with Line(project, AsksTheOwner) as line:
        placed = await place(line, HELEN, "dinner_invitation", {"guest_name": "Helen", "proposed_time": "Friday 8pm"})
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        [session] = line.gemini.sessions
        await line.gemini.wait_for(lambda: any(c["name"] == "ask_owner" for c in session.tool_calls), what="ask")
        await call.say("Are you still there?")  # while the owner is being asked
        assert await call.wait_ended(timeout=60) == "completed"
        heard = [u.text for u in call.heard]
        await line.settle()
    assert any("technical trouble" in text for text in heard), heard
    assert session.connections == 1, "the session that asked the owner is the only one that takes the answer"
    record = stored(line, placed["call_id"])
    assert record.call.status == "failed"
    assert record.call.failure_reason == (
        "model session failed: the model stopped answering: a caller turn went unanswered, even after a nudge; "
        "the session was not reconnected: ask_owner had not been answered yet"
    )
    assert [t for t in system_lines(record) if "nudge" in t] == [
        "the model did not answer the caller; it is nudged once",
        "the model did not answer the nudge either, and its session is not reconnected "
        "(ask_owner had not been answered yet); the call ends with an apology",
    ]


async def test_a_call_has_one_reconnect_a_second_stall_ends_it_after_the_nudge() -> None:
    """The watchdog alone: reconnected once, answered, then a later stall gets only its nudge."""
    lines: list[tuple[str, str]] = []
    events: list[tuple[str, ...]] = []

    async def nudge(words: str) -> None:
        events.append(("nudge", words))

    async def recover(words: str, heard_at: float) -> str | None:
        events.append(("reconnect", words))
        lines.append(("assistant", ANSWER))  # the reconnected session answers
        return None

    async def recovered() -> None:
        events.append(("answered after the reconnect",))
        lines.append(("caller", "And the date?"))  # ... and later stalls again

    async def give_up(words: str, why: str | None) -> None:
        events.append(("apology", words, str(why)))

    watchdog = AnswerWatchdog(
        lines, busy=lambda: False, replies=lambda: 0, nudge=nudge, give_up=give_up,
        recover=recover, recovered=recovered, after_seconds=0.0, tick=0.001,
    )  # fmt: skip
    watching = asyncio.create_task(watchdog.run())
    await asyncio.sleep(0)  # it is watching the transcript from here on
    lines.append(("caller", QUESTION))
    await asyncio.wait_for(watching, timeout=30)
    assert events == [
        ("nudge", QUESTION),
        ("reconnect", QUESTION),
        ("answered after the reconnect",),
        ("nudge", "And the date?"),
        ("apology", "And the date?", "the session was reconnected once already"),
    ]


async def test_a_reconnect_that_fails_ends_the_call_with_the_apology_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [QUICK])
    brain = Stalls("connection")
    async with Line(project, lambda: brain) as line:
        call = await owner_asks_the_time(line, project)
        [session] = line.gemini.sessions
        await line.gemini.wait_for(lambda: session.unanswered, what="the nudge, unanswered", timeout=30)
        line.gemini.accepting = False  # the service is down: every connect is refused
        assert await call.wait_ended(timeout=60) == "completed"
        heard = [u.text for u in call.heard]
        await line.settle()
    assert any("technical trouble" in text for text in heard), heard
    assert session.connections == 1 and line.gemini.live.rejected
    record = stored(line, call.sid)
    assert record.call.status == "failed"
    reason = record.call.failure_reason or ""
    assert reason.startswith(
        "model session failed: the model stopped answering, and its session could not be reconnected: "
    ), reason
    system = system_lines(record)
    assert "the model did not answer the nudge either; its session is reconnected" in system
    assert "the stalled model session could not be resumed; a new session is told the call so far" in system
