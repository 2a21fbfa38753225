"""A goal call that outlives its model connection: on ``goAway`` TARS moves the session to a new
connection at a turn boundary (``tars.calls.handover``), losing none of the other party's words,
no tool result and not its place in the playbook. Without compression, the session's own limit
ends the call as the service ends it, and TARS says why.

The emulator's limits are the test's: a connection (or session) lasts 6 s, ``goAway`` 3 s ahead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import PUBLIC, TOKEN, Line, make_project, place
from tests.server.test_model_session import with_compression

HELEN = "+447700900456"


class Guest:
    """The dinner call: the model invites, moves to ``negotiate`` and asks the owner at once;
    once the owner has answered it says so, and waits for the guest."""

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Hi Helen, it's TARS for Alex. Dinner on Friday?"), CallTool("goto_step", {"step": "negotiate"})]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "see you then" in text:  # only allowed from negotiate: the step was kept
            return [CallTool("goto_step", {"step": "agree"})]
        return []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        step = response.get("next_step")
        if step == "negotiate":
            return [CallTool("ask_owner", {"question": "Helen can only do Saturday at 7. OK?"})]
        if name == "ask_owner":
            return [Say(f"Alex says: {response.get('owner_said')}.")]
        if step == "agree":
            return [CallTool("record_outcome", {"status": "accepted", "when": "Saturday 7pm"})]
        if name == "record_outcome":
            return [CallTool("goto_step", {"step": "wrap_up"})]
        if step == "wrap_up":
            return [Say("Lovely, see you Saturday."), CallTool("end_call", {})]
        return []


def stored(line: Line, call_id: int) -> Any:
    from tars.store.calls import call_details

    with line.db() as db, db.session() as s:
        return call_details(s, call_id)


async def owner_answers(line: Line, body: str) -> None:
    """The owner texts the answer to the question the call asked by SMS."""
    from twilio.request_validator import RequestValidator

    owner = line.project.owner.phone
    await line.gemini.wait_for(lambda: any("asks:" in m.body for m in line.twilio.messages), what="the question")
    form = {"From": owner, "To": line.number, "Body": body, "MessageSid": "SM" + "2" * 32}
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio/sms", form)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{line.server.local_url}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}) as r,
    ):
        assert r.status == 200


async def invited_until_go_away(line: Line) -> tuple[dict[str, Any], Any, Any]:
    """The dinner call placed and greeted, until the service's first goAway: the call's id, the
    emulated call and its model session."""
    placed = await place(line, HELEN, "dinner_invitation", {"guest_name": "Helen", "proposed_time": "Friday 8pm"})
    call = await line.twilio.next_call(timeout=10)
    await call.wait_for_agent_utterance(timeout=20)
    [session] = await line.gemini.wait_for(lambda: line.gemini.sessions, what="the model session")
    await line.gemini.wait_for(lambda: "goAway" in str(session.sent), what="goAway", timeout=20)
    return placed, call, session


async def test_a_goal_call_is_handed_over_on_go_away_with_nothing_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Guest, connection_limit_s=6.0, go_away_lead_s=3.0) as line:
        # The owner is being asked (a tool call in flight) when the service says goAway.
        placed, call, session = await invited_until_go_away(line)
        line.gemini.options.connection_limit_s = None  # the next connection lasts
        assert session.connections == 1, "no handover while the model waits for a tool's result"
        line.gemini.live.setup_hold = asyncio.Event()  # the new connection is slow to open
        await owner_answers(line, "Yes, Saturday at 7 is fine")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Alex says: Yes, Saturday at 7 is fine."
        # At the end of that turn TARS closes the old connection and opens the next one (held).
        await line.gemini.wait_for(lambda: not session.connected, what="the old connection closed", timeout=20)
        await call.say("Saturday at seven, see you then.")  # said while nothing is connected
        line.gemini.live.setup_hold.set()
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Lovely, see you Saturday."
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    assert line.gemini.violations == [] and session.ended is None
    assert session.connections == 2 and session.setups[1]["sessionResumption"]["handle"] in session.handles
    # The tool result reached the connection that asked for it, before the handover.
    [asked] = [r for r in session.tool_results if r["name"] == "ask_owner"]
    assert not asked.get("stale") and asked["response"]["owner_said"] == "Yes, Saturday at 7 is fine"
    [response] = [
        f
        for f in session.frames_of("toolResponse")
        if any(r.get("name") == "ask_owner" for r in f.data["functionResponses"])
    ]
    assert response.connection == 1
    # The words said while switching reached the model on the new connection.
    assert "Saturday at seven, see you then." in session.user_texts()
    record = stored(line, placed["call_id"])
    assert record.call.status == "completed"
    assert record.call.outcome == {"status": "accepted", "when": "Saturday 7pm"}
    # One transcript, in the order things happened, across both connections.
    lines = [(t.speaker, t.text) for t in record.transcript]
    order = [
        ("system", "the owner answered: Yes, Saturday at 7 is fine"),
        ("assistant", "Alex says: Yes, Saturday at 7 is fine."),  # its own turn, after the owner answered
        ("system", "the model session moves to a new connection (goAway)"),
        ("system", "the model session goes on over a new connection"),
        ("caller", "Saturday at seven, see you then."),
        ("assistant", "Lovely, see you Saturday."),
    ]
    assert [lines.index(entry) for entry in order] == sorted(lines.index(entry) for entry in order), lines
    assert any(speaker == "system" and text.endswith("(goAway)") and "close" in text for speaker, text in lines)


async def test_without_compression_the_session_limit_ends_the_handed_over_call_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [with_compression("    enabled: false\n")])
    async with Line(project, Guest, session_limit_s=6.0, go_away_lead_s=3.0) as line:
        placed, call, session = await invited_until_go_away(line)
        await owner_answers(line, "Yes, Saturday at 7 is fine")
        assert (await call.wait_for_agent_utterance(timeout=20)).text == "Alex says: Yes, Saturday at 7 is fine."
        assert await call.wait_ended(timeout=60) == "completed"
        heard = [u.text for u in call.heard]
        await line.settle()
    # The service ends the session at its limit (1011), whatever connection it is on; its
    # handles no longer resume it, so the call ends with Twilio's apology.
    assert session.ended == (1011, "Deadline expired before operation could complete.")
    assert session.connections == 2 and "contextWindowCompression" not in session.setup
    assert any("technical trouble" in text for text in heard), heard
    record = stored(line, placed["call_id"])
    assert record.call.status == "failed"
    reason = record.call.failure_reason or ""
    assert "the service ended the session at its limit (goAway, time left" in reason, reason
    assert "context_window_compression is off" in reason
    system = [t.text for t in record.transcript if t.speaker == "system"]
    assert "the model session moves to a new connection (goAway)" in system
    assert "the model session itself ends then: no new connection continues it" in system
