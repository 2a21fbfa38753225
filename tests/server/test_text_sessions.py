"""TARS by text: the owner's SMS and n8n tasks run through the same role, tools and gate as a
call, on the text model's function calling (the Gemini emulator's REST side), recorded as
calls of kind ``text``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tars.emulators.gemini.transcript_reader import default_responder
from tars.scenarios.scenario import ModelTurn, PartyTurn
from tars.scenarios.text_script import TextScript
from tars.tools.webhook import signature, verify
from tests.server.harness import ACCOUNT, PUBLIC, Line, make_project
from tests.waiting import eventually

SECRET = "n8n-shared-secret-for-tests"
HELEN = "+447700900456"
STRANGER = "+12025550143"
FAST = [
    ("tars.yaml", "idle_seconds: 60", "idle_seconds: 1"),
    # Helen may be called whenever the test runs (her window is tried in tests/scheduler).
    (
        "playbooks/dinner_invitation.yaml",
        'calling_window:\n  - days: [mon, tue, wed, thu, fri, sat, sun]\n    from: "09:00"\n    to: "21:00"',
        "calling_window: any",
    ),
]


def project_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *edits: tuple[str, str, str]) -> Any:
    monkeypatch.setenv("N8N_HOOK_SECRET", SECRET)
    return make_project(tmp_path / "p", monkeypatch, [*FAST, *edits])


async def text_in(line: Line, sender: str, body: str) -> Any:
    """``sender`` texts the TARS number (Twilio's signed SMS webhook)."""
    from tars.emulators.twilio.rest import new_sid

    sid = new_sid("SM")
    form = {"AccountSid": ACCOUNT, "MessageSid": sid, "SmsSid": sid, "From": sender, "To": line.number,
            "Body": body, "NumMedia": "0", "NumSegments": "1"}  # fmt: skip
    return await line.twilio.webhooks.send(f"{PUBLIC}/twilio/sms", form)


def texts_to(line: Line, number: str) -> list[str]:
    return [m.body for m in line.twilio.messages if m.to == number]


def text_sessions(line: Line) -> list[Any]:
    from tars.store.calls import call_details, list_calls

    with line.db() as db, db.session() as s:
        return [call_details(s, c.id) for c in list_calls(s, kind="text")]


def reminders(line: Line) -> list[Any]:
    from tars.store.reminders import list_reminders

    with line.db() as db, db.session() as s:
        return list_reminders(s)


async def test_the_owner_texts_a_reminder_and_gets_a_confirmation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tars: Callable[..., Any]
) -> None:
    project = project_for(tmp_path, monkeypatch, ("tars.yaml", "idle_seconds: 1", "idle_seconds: 30"))
    owner = project.owner.phone
    async with Line(project, lambda: None) as line:
        await text_in(line, owner, "remind me at 5pm to call mum")
        [confirmation] = await eventually(lambda: texts_to(line, owner), what="the confirmation SMS")
        listed = tars("--project", project.root, "sessions", "--json")
        assert listed.exit_code == 0, listed.output
        [live] = json.loads(listed.stdout)  # tars sessions lists it while it is open
        assert (live["name"], live["purpose"], live["role"]) == (
            "the text conversation with Alex Morgan", "text", "owner"
        )  # fmt: skip
        await line.server.server.texts.shutdown()
        await line.settle()
    [reminder] = reminders(line)
    london = ZoneInfo("Europe/London")
    due = reminder.due.astimezone(london)
    assert reminder.text == "call mum" and (due.hour, due.minute) == (17, 0)
    assert confirmation.startswith("Done: I'll remind you to call mum at ")
    [session] = text_sessions(line)
    assert (session.call.kind, session.call.role, session.call.status) == ("text", "owner", "completed")
    assert (session.transcript[0].speaker, session.transcript[0].text) == ("caller", "remind me at 5pm to call mum")
    assert [(t.tool, t.allowed) for t in session.tools] == [("create_reminder", True)]
    assert "Tools used: create_reminder" in (session.call.summary or "")
    request = next(r for r in line.gemini.rest_requests if r.tools)
    assert list(request.tools) == [t for t in project.roles["owner"].tools if t != "end_call"]
    assert "by text message (SMS)" in request.system_instruction


async def test_a_follow_up_continues_the_same_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_for(tmp_path, monkeypatch, ("tars.yaml", "idle_seconds: 1", "idle_seconds: 30"))
    owner = project.owner.phone
    async with Line(project, lambda: None) as line:
        await text_in(line, owner, "remind me at 5pm to call mum")
        await eventually(lambda: texts_to(line, owner), what="the first answer")
        await text_in(line, owner, "what reminders do I have?")
        answers = await eventually(lambda: texts_to(line, owner)[1:], what="the second answer")
        assert answers[0].startswith("You have 1 reminder: call mum")
        await line.server.server.texts.shutdown()
        await line.settle()
    [session] = text_sessions(line)  # one conversation, both messages
    assert [t.text for t in session.transcript if t.speaker == "caller"] == [
        "remind me at 5pm to call mum", "what reminders do I have?"
    ]  # fmt: skip
    last = [r for r in line.gemini.rest_requests if r.tools][-1]
    assert len(last.contents) == 7  # the whole conversation so far goes with each request


async def test_tars_send_texts_the_running_server_and_a_follow_up_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tars: Callable[..., Any]
) -> None:
    """`tars send` without --simulate: the served text session (its model, its tools, its store)."""
    import asyncio

    project = project_for(tmp_path, monkeypatch, ("tars.yaml", "idle_seconds: 1", "idle_seconds: 30"))
    async with Line(project, lambda: None) as line:
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

        def send(*args: str) -> Any:  # the CLI blocks; the server runs on in this loop meanwhile
            return asyncio.to_thread(tars, "--project", project.root, "send", *args)

        first = await send("remind me at 5pm to call mum")
        assert first.exit_code == 0, first.output
        assert "tool create_reminder" in first.stdout
        assert "TARS  Done: I'll remind you to call mum at " in first.stdout
        second = json.loads((await send("what reminders do I have?", "--json")).stdout)
        assert second["answer"].startswith("You have 1 reminder: call mum")
        assert f"Stored as text session {second['session_id']}" in first.stdout  # the same conversation
        await line.server.server.texts.shutdown()
        await line.settle()
    [session] = text_sessions(line)
    assert [t.text for t in session.transcript if t.speaker == "caller"] == [
        "remind me at 5pm to call mum", "what reminders do I have?"
    ]  # fmt: skip
    request = next(r for r in line.gemini.rest_requests if r.tools)
    assert "make_goal_call" in request.tools, "the served session offers every owner tool, goal calls included"


async def test_an_unknown_number_gets_no_reminder_and_is_offered_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_for(tmp_path, monkeypatch)
    # The model is talked into trying anyway: the gate refuses what the role does not grant.
    script = TextScript(
        [
            PartyTurn(0, say="remind me at 5pm to call mum"),
            ModelTurn(1, tool="create_reminder", args={"text": "call mum", "when": "5pm"}, refused=True),
            ModelTurn(2, say="I can't set reminders, but I can take a message for Alex. What should I tell them?"),
        ],
        fallback=default_responder,
    )
    async with Line(project, lambda: None) as line:
        line.gemini.responder = script
        await text_in(line, STRANGER, "remind me at 5pm to call mum")
        [answer] = await eventually(lambda: texts_to(line, STRANGER), what="the answer to the stranger")
        await line.settle()
    assert reminders(line) == []
    assert "take a message" in answer
    assert all(c.passed for c in script.checks), script.checks
    [session] = text_sessions(line)
    assert session.call.role == "unknown"
    [refusal] = session.tools
    assert (refusal.tool, refusal.allowed) == ("create_reminder", False)
    assert "not available to the unknown role" in (refusal.reason or "")
    offered = next(r for r in line.gemini.rest_requests if r.tools)
    assert list(offered.tools) == ["take_message"]


async def test_a_goal_call_by_sms_needs_the_owner_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARS_OWNER_PIN", "4821")
    project = project_for(tmp_path, monkeypatch, ("tars.yaml", "idle_seconds: 1", "idle_seconds: 30"))
    owner = project.owner.phone
    script = TextScript(
        [
            PartyTurn(0, say="call Helen and invite her to dinner on Saturday"),
            ModelTurn(1, tool="make_goal_call", args=DINNER, refused=True),
            ModelTurn(2, say="I need your PIN for that."),
            PartyTurn(3, say="it's go ahead"),  # what the model sees of 'PIN 4821 it's go ahead'
            ModelTurn(4, tool="make_goal_call", args=DINNER, result={"placed": True}),
            ModelTurn(5, say="Calling Helen now."),
        ],
        fallback=default_responder,
    )
    async with Line(project, Helen) as line:
        line.gemini.responder = script
        add_helen(line)
        await text_in(line, owner, "call Helen and invite her to dinner on Saturday")
        await eventually(lambda: texts_to(line, owner), what="the answer")
        assert line.twilio.calls == {}
        await text_in(line, owner, "PIN 4821 it's go ahead")
        phone = await line.twilio.next_call(timeout=10)
        await phone.wait_for_agent_utterance(timeout=20)
        await phone.say("Yes, lovely")
        assert await phone.wait_ended(timeout=30) == "completed"
        await eventually(lambda: len(texts_to(line, owner)) >= 3, timeout=30, what="the call report")
        await line.server.server.texts.shutdown()
        await line.settle()
    assert all(c.passed for c in script.checks), script.checks
    [session] = text_sessions(line)
    first, second = session.tools
    assert (first.allowed, second.allowed) == (False, True)
    assert "needs the owner's PIN (sms.require_pin_for in tars.yaml)" in (first.reason or "")
    said = [t.text for t in session.transcript if t.speaker == "caller"]
    assert said[1] == "it's go ahead" and not any("4821" in t.text for t in session.transcript)


async def test_wrong_pins_by_sms_lock_the_owner_number_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guessing the PIN by text counts as it does on calls: after five wrong PINs from the
    owner's number, even the right one unlocks nothing (the lockout is in the database)."""
    from tars.store import pin_attempts

    monkeypatch.setenv("TARS_OWNER_PIN", "4821")
    project = project_for(tmp_path, monkeypatch)
    owner = project.owner.phone
    script = TextScript(
        [
            PartyTurn(0, say="call Helen and invite her to dinner on Saturday"),
            ModelTurn(1, tool="make_goal_call", args=DINNER, refused=True),
            ModelTurn(2, say="I can't place that call right now."),
        ],
        fallback=default_responder,
    )
    async with Line(project, Helen) as line:
        line.gemini.responder = script
        add_helen(line)
        for n in range(pin_attempts.PER_NUMBER):
            await text_in(line, owner, f"PIN {1000 + n}")
            await eventually(lambda n=n: len(texts_to(line, owner)) > n, what=f"the answer to wrong PIN {n + 1}")
        await text_in(line, owner, "PIN 4821 call Helen and invite her to dinner on Saturday")
        await eventually(lambda: "can't place" in " ".join(texts_to(line, owner)), what="the refusal")
        assert line.twilio.calls == {}
        await line.server.server.texts.shutdown()
        await line.settle()
    assert all(c.passed for c in script.checks), script.checks
    with line.db() as db, db.session() as s:
        assert pin_attempts.locked(s, owner) is not None
    sessions = text_sessions(line)
    [refusal] = [t for session in sessions for t in session.tools]
    assert refusal.tool == "make_goal_call" and not refusal.allowed
    assert f"needs the owner's PIN: PIN entry is locked for {owner}" in (refusal.reason or "")
    lines = [t.text for session in sessions for t in session.transcript]
    assert not any(digits in text for text in lines for digits in ("4821", "1000", "1004"))
    assert lines.count("a wrong PIN was sent") == pin_attempts.PER_NUMBER


# ------------------------------------------------------------------------------ n8n


def signed(body: bytes, *, secret: str = SECRET, at: int | None = None, request_id: str = "task-1") -> dict[str, str]:
    stamp = str(at if at is not None else int(time.time()))
    return {"Content-Type": "application/json", "X-TARS-Timestamp": stamp,
            "X-TARS-Signature": signature(secret, stamp, body), "X-TARS-Request-Id": request_id}  # fmt: skip


async def post_task(line: Line, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    assert line.server is not None
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.post(f"{line.server.local_url}/hooks/n8n", data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


class Helen:
    """Helen on the dinner invitation: yes to Saturday."""

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Hi Helen, it's TARS for Alex Morgan. Are you free for dinner on Saturday?")]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        return [CallTool("goto_step", {"step": "agree"})] if "yes" in text.lower() else []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        step = response.get("next_step")
        if step == "agree":
            return [CallTool("record_outcome", {"status": "accepted", "when": "Saturday at 8pm"})]
        if name == "record_outcome":
            return [Say("Lovely, Saturday it is."), CallTool("goto_step", {"step": "wrap_up"})]
        if step == "wrap_up":
            return [Say("Bye for now!"), CallTool("end_call", {"reason": "accepted"})]
        return []


DINNER = {"target": "Helen Price", "playbook": "dinner_invitation",
          "inputs": {"guest_name": "Helen", "proposed_time": "Saturday at 8pm"}}  # fmt: skip


def add_helen(line: Line) -> None:
    from tars.store.contacts import Rules, add_contact

    with line.db() as db, db.session() as s:
        add_contact(s, Rules.of(line.project), name="Helen Price", phone=HELEN)
        s.commit()


async def test_a_signed_n8n_task_places_the_goal_call_and_posts_the_signed_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_for(tmp_path, monkeypatch)
    script = TextScript(
        [
            PartyTurn(0, say="call Helen and ask if she is free for dinner on Saturday"),
            ModelTurn(1, tool="make_goal_call", args=DINNER, result={"placed": True, "callee": "Helen Price"}),
            ModelTurn(2, say="Calling Helen Price now; I will report back."),
        ],
        fallback=default_responder,
    )
    async with Line(project, Helen) as line:
        line.gemini.responder = script
        add_helen(line)
        reply_to = f"{line.webhooks.base_url}/n8n_result"
        task = {"message": "call Helen and ask if she is free for dinner on Saturday", "reply_to": reply_to}
        body = json.dumps(task).encode()
        status, text = await post_task(line, body, signed(body))
        assert status == 200, text
        answer = json.loads(text)
        assert answer["answer"] == "Calling Helen Price now; I will report back."
        phone = await line.twilio.next_call(timeout=10)
        assert phone.to == HELEN
        await phone.wait_for_agent_utterance(timeout=20)
        await phone.say("Oh yes, I'd love to")
        assert await phone.wait_ended(timeout=30) == "completed"
        [result] = await eventually(
            lambda: [r for r in line.webhooks.requests if r.name == "n8n_result"], timeout=30, what="the result"
        )
        await line.settle()
    assert all(c.passed for c in script.checks), script.checks
    raw = json.dumps(result.payload, separators=(",", ":")).encode()
    assert verify(SECRET, result.headers["X-TARS-Timestamp"], raw, result.headers["X-TARS-Signature"])
    assert result.payload["session_id"] == answer["session_id"]
    [goal] = result.payload["calls"]
    assert (goal["callee"], goal["playbook"], goal["status"]) == ("Helen Price", "dinner_invitation", "completed")
    assert goal["outcome"] == {"status": "accepted", "when": "Saturday at 8pm"}
    [session] = text_sessions(line)
    assert (session.call.role, session.call.from_number) == ("automation", "n8n")
    assert [(t.tool, t.allowed) for t in session.tools] == [("make_goal_call", True)]


async def test_a_slow_answer_is_202_and_the_result_follows_to_reply_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_for(tmp_path, monkeypatch, ("tars.yaml", "answer_within_seconds: 10", "answer_within_seconds: 0"))
    async with Line(project, Helen) as line:
        reply_to = f"{line.webhooks.base_url}/n8n_result"
        body = json.dumps({"message": "what reminders do I have?", "reply_to": reply_to}).encode()
        status, text = await post_task(line, body, signed(body))
        assert status == 202, text
        accepted = json.loads(text)
        assert accepted["status"] == "running"
        [result] = await eventually(
            lambda: [r for r in line.webhooks.requests if r.name == "n8n_result"], what="the result"
        )
        await line.settle()
    assert result.payload["session_id"] == accepted["session_id"]
    assert result.payload["answer"] == "You have no reminders."


def test_answers_are_shortened_and_split_for_sms() -> None:
    from tars.texts.sms import parts

    assert parts("Done.") == ["Done."]
    long = " ".join(["word"] * 100)  # 499 characters
    texted = parts(long, 320)
    assert len(texted) == 3 and all(len(p) <= 160 for p in texted)
    assert texted[0].endswith(" (1/3)") and texted[-1].endswith("… (3/3)")
    assert sum(len(p.rsplit(" (", 1)[0]) for p in texted) <= 320


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("bad signature", 401, "bad signature"),
        ("no signature", 401, "missing X-TARS-Signature"),
        ("old timestamp", 401, "X-TARS-Timestamp is more than 300 s from now"),
        ("replay", 401, "was already used: a replay is refused"),
        ("replay under a new id", 401, "was already used: a replay is refused"),
        ("not JSON", 400, "the body is not JSON"),
        ("no message", 400, "message is missing or empty"),
        ("too big", 413, "request body too large"),
    ],
)
async def test_a_bad_n8n_task_is_refused_and_nothing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, status: int, reason: str
) -> None:
    project = project_for(tmp_path, monkeypatch)
    body = json.dumps({"message": "call Helen and ask if she is free for dinner on Saturday"}).encode()
    async with Line(project, Helen) as line:
        add_helen(line)
        headers = signed(body)
        if case.startswith("replay"):
            script = TextScript([PartyTurn(0, say="call Helen and ask if she is free for dinner on Saturday"),
                                 ModelTurn(1, say="I'll see to it.")])  # fmt: skip
            line.gemini.responder = script
            first, _ = await post_task(line, body, headers)
            assert first == 200
            if case == "replay under a new id":
                headers = {**headers, "X-TARS-Request-Id": "task-2"}
        elif case == "bad signature":
            headers = signed(body, secret="not-the-secret")
        elif case == "no signature":
            headers.pop("X-TARS-Signature")
        elif case == "old timestamp":
            headers = signed(body, at=int(time.time()) - 3600)
        elif case == "not JSON":
            body = b"call Helen"
            headers = signed(body)
        elif case == "no message":
            body = b'{"reply_to": "https://n8n.example.com/hook"}'
            headers = signed(body)
        elif case == "too big":
            body = json.dumps({"message": "x" * 20000}).encode()
            headers = signed(body)
        sessions_before = len(text_sessions(line))
        got, text = await post_task(line, body, headers)
        await line.settle()
        assert (got, reason in text) == (status, True), text
        assert len(text.strip().splitlines()) == 1
        assert len(text_sessions(line)) == sessions_before
        assert line.twilio.calls == {}
