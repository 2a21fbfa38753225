"""Goal calls: TARS calls the dentist and books a check-up, following the playbook step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tars.emulators.twilio.emulator import Party
from tests.server.harness import Line, Receptionist, make_project, place

DENTIST = "+442079460123"


def stored(line: Line, call_id: int) -> Any:
    from tars.store.calls import call_details

    with line.db() as db, db.session() as s:
        return call_details(s, call_id)


async def test_the_dentist_call_books_a_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = Receptionist()
    async with Line(project, lambda: brain) as line:
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        assert placed["http"] == 201, placed
        assert (placed["number"], placed["callee"]) == (DENTIST, "Bright Smile Dental")
        call = await line.twilio.next_call(timeout=10)
        assert call.to == DENTIST and call.params.get("MachineDetection") == "DetectMessageEnd"
        # The greeting and the question run together as one stretch of speech.
        heard = await call.wait_for_agent_utterance(timeout=20)
        assert heard.text.startswith("Hello, this is TARS")
        assert line.gemini.sessions[0].model_texts()[:2] == [heard.text, "Do you have anything on Wednesday?"]
        await call.say("We have Wednesday at 3pm")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        session = line.gemini.sessions[0]
        sms = [m for m in line.twilio.messages if m.to == project.owner.phone]

    assert session.tool_names == [
        "current_time",
        "record_outcome",
        "ask_owner",
        "tell_owner",
        "press_digits",
        "end_call",
        "goto_step",
    ]
    assert "Book a check-up appointment for Alex Morgan on Wednesday" in session.system_instruction
    record = stored(line, placed["call_id"])
    assert record.call.direction == "outbound" and record.call.status == "completed"
    assert record.call.outcome == {"status": "booked", "when": "2026-11-25T15:00:00+00:00"}
    assert record.call.outcome_source == "recorded"
    assert record.call.summary
    steps = [line.text.split("]")[0] for line in record.transcript if line.text.startswith("[Playbook step:")]
    assert steps == ["[Playbook step: find_slot", "[Playbook step: confirm", "[Playbook step: wrap_up"]
    assert [r[1].get("next_step") for r in brain.results if r[0] == "record_outcome"] == ["confirm"]
    assert len(sms) == 1 and "book_appointment" in sms[0].body and "done" in sms[0].body


async def test_no_slot_takes_the_fallback_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = Receptionist()
    async with Line(project, lambda: brain) as line:
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("Sorry, there is nothing on Wednesday")
        await call.wait_ended(timeout=30)
        await line.settle()
    record = stored(line, placed["call_id"])
    assert record.call.outcome == {"status": "no_slot", "notes": "Thursday 10am or Friday 2pm"}
    assert any(t.text.startswith("[Playbook step: alternatives]") for t in record.transcript)


async def test_a_tool_the_step_forbids_is_refused_and_the_call_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = Receptionist(forbidden="ask_owner")  # granted to the role, not allowed in 'introduce'
    async with Line(project, lambda: brain) as line:
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("We have Wednesday at 3pm")
        await call.wait_ended(timeout=30)
        await line.settle()
    record = stored(line, placed["call_id"])
    denied = [(t.tool, t.reason) for t in record.tools if not t.allowed]
    assert denied == [
        ("ask_owner", "'ask_owner' is not allowed in step 'introduce' (allowed: press_digits); follow the current step")
    ]
    assert record.call.outcome["status"] == "booked"


async def test_voicemail_hears_the_declared_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line:
        line.twilio.set_party(DENTIST, Party(answer="voicemail"))
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call = await line.twilio.next_call(timeout=10)
        await call.wait_ended(timeout=30)
        heard = [u.text for u in call.heard]
        # The model session opened while the phone rang was never used (tars.calls.preopen).
        assert all(not s.started and not s.transcript for s in line.gemini.sessions)
    assert heard == [
        "Hello, this is TARS calling for Alex Morgan to book a check-up. We'll try again later. Thank you."
    ]
    assert stored(line, placed["call_id"]).call.status == "voicemail"


async def test_bad_requests_say_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line:
        missing = await place(line, "dentist", "book_appointment", {})
        assert missing["http"] == 400 and "input 'preferred_day' is required" in missing["error"]
        unknown = await place(line, "dentist", "book_apointment", {})
        assert unknown["http"] == 404 and "did you mean 'book_appointment'" in unknown["error"]
        nobody = await place(line, "the plumber", "book_appointment", {"preferred_day": "Wed"})
        assert nobody["http"] == 404
        async with aiohttp.ClientSession() as http, http.post(f"{line.server.local_url}/api/calls", json={}) as r:
            assert r.status == 401
        assert line.twilio.calls == {}


class MenuThenPerson:
    """A phone menu first (press 2 for opening hours), then a person on the new stream: the same
    model session, resumed, told which keys were pressed."""

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Hello."), CallTool("press_digits", {"digits": "2"})]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "You pressed 2" in text:
            return [
                Say("Hello, what are your opening hours on Saturday?"),
                CallTool("goto_step", {"step": "note_answer"}),
            ]
        if "nine to five" in text:
            return [CallTool("record_outcome", {"status": "answered", "answer": "Saturday 9 to 5"})]
        return []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        if name == "record_outcome":
            return [CallTool("goto_step", {"step": "wrap_up"})]
        if response.get("next_step") == "wrap_up":
            return [Say("Thank you, goodbye."), CallTool("end_call", {})]
        return []


async def test_phone_menus_get_keys_through_twilio_and_the_playbook_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    brain = MenuThenPerson()
    async with Line(project, lambda: brain) as line:
        placed = await place(line, "la_piazza", "business_inquiry", {"question": "opening hours on Saturday"})
        call = await line.twilio.next_call(timeout=10)
        [session] = await line.gemini.wait_for(lambda: line.gemini.sessions, what="the model session")
        await line.gemini.wait_for(lambda: session.connections == 2, what="the session resumed", timeout=30)
        heard = await call.wait_for_agent_utterance(timeout=20)
        while "opening hours" not in heard.text:
            heard = await call.wait_for_agent_utterance(timeout=20)
        await call.say("we are open nine to five")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        digits = call.agent_digits
        sms = [m for m in line.twilio.messages if m.to == project.owner.phone]
    assert digits == ["2"]
    # The fresh stream continued the same model session: its conversation holds the menu's turn.
    assert len(line.gemini.sessions) == 1 and session.setups[1]["sessionResumption"]["handle"] in session.handles
    assert session.model_texts()[0] == "Hello." and any("You pressed 2" in t for t in session.user_texts())
    record = stored(line, placed["call_id"])
    assert record.call.status == "completed"
    assert record.call.outcome == {"status": "answered", "answer": "Saturday 9 to 5"}
    assert any(t.text == "pressed 2 on the phone menu" for t in record.transcript)
    assert len(sms) == 1, "one report for the whole call, not one per stream"


class Guest:
    """Dinner invitation: the guest proposes another time; TARS checks with the owner first."""

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Hi Helen, it's TARS for Alex. Dinner at La Piazza on Friday at eight?")]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "Saturday at seven" in text:
            return [CallTool("goto_step", {"step": "negotiate"})]
        return []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        if response.get("next_step") == "negotiate":
            return [
                Say("Let me check with Alex."),
                CallTool("ask_owner", {"question": "Helen suggests Saturday at 7. OK?"}),
            ]
        if name == "ask_owner" and "yes" in str(response.get("owner_said", "")).lower():
            return [CallTool("goto_step", {"step": "agree"})]
        if response.get("next_step") == "agree":
            return [CallTool("record_outcome", {"status": "accepted", "when": "Saturday 7pm"})]
        if name == "record_outcome":
            return [CallTool("goto_step", {"step": "wrap_up"})]
        if response.get("next_step") == "wrap_up":
            return [Say("Lovely, see you Saturday."), CallTool("end_call", {})]
        return []


async def owner_texts(line: Line, body: str) -> None:
    """The owner answers by SMS, as Twilio posts it (signed)."""
    from twilio.request_validator import RequestValidator

    from tests.server.harness import PUBLIC, TOKEN

    assert line.server is not None
    form = {"From": line.project.owner.phone, "To": line.number, "Body": body, "MessageSid": "SM" + "1" * 32}
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio/sms", form)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{line.server.local_url}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}) as r,
    ):
        assert r.status == 200


def with_helen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The example project, with Helen Price among the contacts (added with the CLI)."""
    from typer.testing import CliRunner

    from tars.cli.app import app

    project = make_project(tmp_path / "p", monkeypatch)
    added = CliRunner().invoke(app, ["--project", str(project.root), "contacts", "add", "Helen Price", "+447700900456"])
    assert added.exit_code == 0
    return project


async def invite_helen(line: Line) -> tuple[dict[str, Any], Any]:
    """Helen is invited to dinner on Friday, proposes Saturday, and TARS texts the owner."""
    placed = await place(line, "Helen", "dinner_invitation", {"guest_name": "Helen", "proposed_time": "Friday 8pm"})
    call = await line.twilio.next_call(timeout=10)
    await call.wait_for_agent_utterance(timeout=20)
    await call.say("Friday is tricky. How about Saturday at seven?")
    await line.gemini.wait_for(lambda: any("asks:" in m.body for m in line.twilio.messages), what="the question")
    return placed, call


async def test_the_dinner_call_asks_the_owner_mid_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = with_helen(tmp_path, monkeypatch)
    async with Line(project, Guest) as line:
        placed, call = await invite_helen(line)
        question = next(m for m in line.twilio.messages if "asks:" in m.body)
        assert question.to == project.owner.phone and "Saturday at 7" in question.body
        await owner_texts(line, "Yes, fine")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    record = stored(line, placed["call_id"])
    assert record.call.outcome == {"status": "accepted", "when": "Saturday 7pm"}
    said = [t.text for t in record.transcript if t.speaker == "system"]
    assert "the owner answered: Yes, fine" in said


class ChattyGuest(Guest):
    """The guest asks whether anyone is still there while TARS waits for the owner."""

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "still there" in text:
            return [Say("Yes, I am checking with Alex, one moment.")]
        return await super().on_user(session, text)


async def test_the_owners_answer_reaches_the_model_though_the_guest_spoke_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the 3.x models new input cancels a BLOCKING call (tars.emulators.gemini.cancellation): the
    guest speaking while ask_owner waits would lose the owner's answer. ask_owner is declared
    NON_BLOCKING, so the model talks on and takes the answer when it comes (WHEN_IDLE)."""
    project = with_helen(tmp_path, monkeypatch)
    async with Line(project, ChattyGuest) as line:
        placed, call = await invite_helen(line)
        [session] = line.gemini.sessions
        await call.say("Hello? Are you still there?")
        heard = await call.wait_for_agent_utterance(timeout=20)
        while "checking with Alex" not in heard.text:
            heard = await call.wait_for_agent_utterance(timeout=20)
        await owner_texts(line, "Yes, fine")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
    assert session.tools["ask_owner"]["behavior"] == "NON_BLOCKING"
    assert session.tools["goto_step"]["behavior"] == "BLOCKING"
    assert session.cancellations == []
    [answer] = [r for r in session.tool_results if r.get("name") == "ask_owner"]
    assert answer["scheduling"] == "WHEN_IDLE" and answer["response"]["owner_said"] == "Yes, fine"
    record = stored(line, placed["call_id"])
    assert record.call.outcome == {"status": "accepted", "when": "Saturday 7pm"}


async def test_a_call_for_later_is_stored_not_dialled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line:
        later = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday", **{}})
        assert later["http"] == 201  # without "at": dialled now
        await line.twilio.next_call(timeout=10)
        assert line.server is not None
        async with aiohttp.ClientSession() as http:
            body = {
                "target": "dentist",
                "playbook": "book_appointment",
                "inputs": {"preferred_day": "Friday"},
                "at": "tomorrow 10am",
            }
            headers = {"Authorization": f"Bearer {line.server.api_token}"}
            async with http.post(f"{line.server.local_url}/api/calls", json=body, headers=headers) as r:
                scheduled = await r.json()
                assert r.status == 202, scheduled
            async with http.post(
                f"{line.server.local_url}/api/calls", json={**body, "at": "yesterday 3pm"}, headers=headers
            ) as r:
                assert r.status == 400 and "past" in (await r.json())["error"]
        assert len(line.twilio.calls) == 1
    record = stored(line, scheduled["call_id"])
    assert record.call.status == "queued" and record.call.sid is None
    assert record.call.scheduled_at is not None and scheduled["scheduled"].endswith("10:00")


async def test_the_report_says_outcomes_in_words() -> None:
    """A report is a text a person reads: yes/no rather than True/False, no underscores."""
    from tars.calls.aftercall import report_text
    from tars.calls.playbook_run import PlaybookRun
    from tars.graph.call_plan import prepare_call
    from tars.loading import load_project

    async def unheard(text: str) -> None:
        return None

    plan = prepare_call(load_project(), "book_appointment", {"preferred_day": "Wednesday"}, {"target_name": "Dr Lee"})
    outcome = {"status": "cancelled", "cancelled": True, "new_patient": False, "notes": None, "bring": ["card", "list"]}
    text = report_text(PlaybookRun(plan, announce=unheard), "Dr Lee", outcome, "They cancelled.")
    assert text == (
        "TARS call to Dr Lee (book_appointment): not done. They cancelled. "
        "[status: cancelled, cancelled: yes, new patient: no, notes: not known, bring: card and list]"
    )
