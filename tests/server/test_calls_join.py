"""`tars calls join N` when the owner does not take the call after all: TARS is on the phone
to the dentist, already asking for a slot; Alex asks to join, his phone rings, and he lets the
brief go by without a yes. The dentist comes back to TARS, which carries on where it was.
The real server between the Twilio and Gemini emulators; Alex's phone is an emulated party."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tars.emulators.gemini.emulator import Say
from tars.emulators.twilio.emulator import Party
from tars.telephony import transfers
from tests.server.harness import Line, Receptionist, make_project, place
from tests.waiting import eventually

DENTIST = "+442079460123"
ASKING = "Do you have anything on Wednesday?"
AGAIN = "Sorry to keep you waiting. Do you have anything on Wednesday?"


class BackFromTheJoin(Receptionist):
    """The receptionist's model, which, told where the call stands once it is back with it,
    asks again for the slot it was asking for."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[str] = []

    async def on_start(self, session: Any) -> list[Any]:
        opening = session.history[0]["text"] if session.history else ""
        if "is back with you" in opening:  # a new model session, the old one lost: told where the call is
            return await self.on_user(session, opening)
        return await super().on_start(session)

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "is back with you" in text:
            self.told.append(text)
            return [Say(AGAIN)]
        return await super().on_user(session, text)


def step_of(line: Line, call_id: int) -> str | None:
    from tars.store.calls import get_call

    with line.db() as db, db.session() as s:
        return get_call(s, call_id).step


@pytest.mark.parametrize("model_session", ["resumed", "lost"])
async def test_a_join_the_owner_declines_goes_back_to_tars_at_the_step_it_was_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_session: str
) -> None:
    from tars.cli.app import app
    from tars.store.calls import call_details
    from tars.store.transfers import transfers_of

    project = make_project(tmp_path / "p", monkeypatch)
    brain = BackFromTheJoin()
    async with Line(project, lambda: brain) as line:
        assert line.server is not None
        monkeypatch.setenv("TARS_SERVER_URL", line.server.local_url)
        line.twilio.set_party(project.owner.phone, Party(gather=[]))  # hears the brief, presses nothing
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call = await line.twilio.next_call(timeout=10)
        assert call.to == DENTIST
        # The greeting and step 2's question (find_slot) run together as one stretch of speech.
        assert (await call.wait_for_agent_utterance(timeout=20)).text.startswith("Hello, this is TARS")
        await eventually(lambda: step_of(line, placed["call_id"]) == "find_slot", 10, "the call row at find_slot")
        await line.gemini.wait_for(lambda: ASKING in line.gemini.sessions[0].model_texts(), what="the question")
        argv = ["--project", str(project.root), "calls", "join", str(placed["call_id"])]
        joined = await asyncio.to_thread(CliRunner().invoke, app, argv)
        assert joined.exit_code == 0, joined.output
        line.gemini.refuse_resumption = model_session == "lost"  # (expired, or ended by the service)
        heard = await call.wait_for_agent_utterance(timeout=60)
        while heard.text == transfers.HOLD_TEXT:  # holding while Alex's phone rings
            heard = await call.wait_for_agent_utterance(timeout=60)
        back_with_tars = heard.text
        step_when_back = step_of(line, placed["call_id"])
        await call.say("Yes, Wednesday at 3 works.")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        models = list(line.gemini.sessions)
        reports = [m.body for m in line.twilio.messages if m.to == project.owner.phone]

    with line.db() as db, db.session() as s:
        details = call_details(s, placed["call_id"])
        [transfer] = transfers_of(s, placed["call_id"])
    assert back_with_tars == AGAIN and step_when_back == "find_slot"
    # The model is told where the call stands, not the first step again: in the same session,
    # resumed, or in a new one that is told what was said so far.
    assert len(brain.told) == 1 and "[Playbook step: find_slot]" in brain.told[0]
    assert "Alex Morgan was going to take this call over, but Alex Morgan could not take it now." in brain.told[0]
    if model_session == "resumed":
        assert len(models) == 1
    else:
        [_first, fresh] = models
        assert "The call so far (you are continuing it; do not greet again)" in fresh.system_instruction
        assert f"assistant: {models[0].model_texts()[0]}" in fresh.system_instruction
    assert (transfer.kind, transfer.result) == ("join", "declined")
    assert details.call.status == "completed"
    assert details.call.outcome == {"status": "booked", "when": "2026-11-25T15:00:00+00:00"}
    moves = [line.text for line in details.transcript if line.speaker == "system" and "Alex Morgan" in line.text]
    assert moves[-2:] == [
        "Alex Morgan is joining the call to take it over",
        "Alex Morgan did not take the call (declined): TARS carries on",
    ]
    said = " / ".join(line.text for line in details.transcript if line.speaker == "assistant")
    assert said.count("Hello, this is TARS") == 1  # greeted once: the call went on, it did not start over
    assert said.index(ASKING) < said.index(AGAIN) < said.index("Wonderful: Wednesday at three")
    assert len(reports) == 1 and "booked" in reports[0].lower()
