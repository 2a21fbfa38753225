"""The switchboard: the owner rings TARS and says "call the dentist and book me a check-up";
TARS places the call, the dentist's questions reach the owner, and the report comes back —
in the owner's live call, or by text once they have hung up. Real SDKs against the emulators."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, Receptionist, make_project
from tests.waiting import eventually

DENTIST = "+442079460123"
WEDNESDAY_1000 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)  # the practice is open
SATURDAY_1000 = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)  # it is not
MONDAY_0900 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
BOOK = {
    "target": "the dentist",
    "playbook": "book_appointment",
    "inputs": {"preferred_day": "Wednesday", "appointment_type": "check-up"},
}


class Owner:
    """The emulated model on the owner's own call: greets, asks the switchboard for the goal
    call when told to, and passes on what other calls send it (reports, questions)."""

    def __init__(self, request: dict[str, Any] = BOOK, hang_up_after_placing: bool = False):
        self.request = request
        self.hang_up_after_placing = hang_up_after_placing
        self.results: list[tuple[str, dict[str, Any]]] = []
        self.told: list[str] = []

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Good morning, sir. TARS at your service.")]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "book me a check-up" in text:
            return [CallTool("make_goal_call", self.request)]
        if text.startswith("[Report]"):
            self.told.append(text)
            report = text.split("next pause: ", 1)[1]
            return [Say("News from the dentist: " + report.split(". ", 1)[0] + ".")]
        if text.startswith("[Note]"):
            self.told.append(text)
            return [Say("A note: " + text.split("From the call with ", 1)[1].split(": ", 1)[1])]
        if text.startswith("[Question"):
            self.told.append(text)
            asked = text.split('answer: "', 1)[1].split('"', 1)[0]
            return [Say(f"The dentist asks: {asked}")]
        if "three please" in text:
            code = re.findall(r"\[Question (\d{4})\]", " ".join(self.told))[-1]
            return [CallTool("answer_question", {"code": code, "answer": "three o'clock, please"})]
        return []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        self.results.append((name, response))
        if name == "make_goal_call" and self.hang_up_after_placing:
            return [Say("I will text you what they say. Goodbye."), CallTool("end_call", {"reason": "owner is done"})]
        if name == "make_goal_call":
            return [Say(str(response.get("say") or response))]
        if name == "answer_question":
            return [Say("I have told them.")]
        return []


class AskingReceptionist(Receptionist):
    """The dentist call's model: offers two times, asks the owner which, books the answer;
    passes on a delay without waiting for an answer."""

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "running late" in text:
            return [CallTool("tell_owner", {"note": "the dentist is running ten minutes late"})]
        if "three or four" in text:
            return [CallTool("ask_owner", {"question": "Wednesday at three or at four?"})]
        return await super().on_user(session, text)

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        if name == "tell_owner":
            self.results.append((name, response))
            return [Say("Noted, thank you.")]
        if name == "ask_owner":
            self.results.append((name, response))
            if "three" in str(response.get("owner_said", "")):
                return [CallTool("record_outcome", {"status": "booked", "when": "2026-11-25T15:00:00+00:00"})]
            return [Say("I will confirm later."), CallTool("record_outcome", {"status": "no_slot"})]
        return await super().on_tool_result(session, name, response)


class Calls:
    """One brain per Gemini session: the dentist's for goal calls, the owner's otherwise."""

    def __init__(self, owner: Any, dentist: Any):
        self.owner, self.dentist = owner, dentist

    def __call__(self) -> Any:
        return self

    def _brain(self, session: Any) -> Any:
        return self.dentist if "goto_step" in session.tool_names else self.owner

    async def on_start(self, session: Any) -> list[Any]:
        return await self._brain(session).on_start(session)

    async def on_user(self, session: Any, text: str) -> list[Any]:
        return await self._brain(session).on_user(session, text)

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        return await self._brain(session).on_tool_result(session, name, response)


def rows(line: Line) -> list[Any]:
    from sqlmodel import col, select

    from tars.store.models import Call

    with line.db() as db, db.session() as s:
        return list(s.exec(select(Call).order_by(col(Call.id))))


def details(line: Line, call_id: int) -> Any:
    from tars.store.calls import call_details

    with line.db() as db, db.session() as s:
        return call_details(s, call_id)


async def heard_containing(call: Any, words: str, timeout: float = 20) -> str:
    while True:
        heard = await call.wait_for_agent_utterance(timeout=timeout)
        if words in heard.text:
            return heard.text


async def ring_and_ask(
    line: Line, clock: dt.datetime, words: str = "call the dentist and book me a check-up on Wednesday"
) -> Any:
    """The owner rings TARS (the switchboard's clock at ``clock``) and asks for ``words``."""
    assert line.server is not None
    board = line.server.server
    board.clock = board.scheduler.clock = lambda: clock
    owner = await line.call_in(from_=line.project.owner.phone)
    assert (await line.twilio.next_call(timeout=10)).sid == owner.sid
    await heard_containing(owner, "TARS at your service")
    await owner.say(words)
    return owner


async def test_a_goal_call_from_the_owners_call_reports_back_in_that_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    owner_brain = Owner()
    async with Line(project, Calls(owner_brain, Receptionist())) as line:
        owner = await ring_and_ask(line, WEDNESDAY_1000)
        dentist = await line.twilio.next_call(timeout=15)
        assert dentist.to == DENTIST
        await heard_containing(owner, "calling Bright Smile Dental now")
        await heard_containing(dentist, "Hello, this is TARS")
        await dentist.say("We have Wednesday at 3pm")
        assert await dentist.wait_ended(timeout=30) == "completed"
        news = await heard_containing(owner, "News from the dentist", timeout=30)
        await owner.hang_up()
        await line.settle()
        texts = [m.body for m in line.twilio.messages if m.to == project.owner.phone]

    assert news == "News from the dentist: TARS call to Bright Smile Dental (book_appointment): done."
    [report] = owner_brain.told
    assert "[status: booked, when: 2026-11-25T15:00:00+00:00]" in report
    assert texts == []  # the report was said, not texted
    owner_row, goal_row = rows(line)
    assert (goal_row.requested_by, goal_row.callee, goal_row.role) == (owner_row.id, "Bright Smile Dental", "delegate")
    assert goal_row.outcome == {"status": "booked", "when": "2026-11-25T15:00:00+00:00"}
    placed = dict(owner_brain.results)["make_goal_call"]
    assert placed["placed"] is True and placed["call_id"] == goal_row.id
    tools = [(t.tool, t.allowed) for t in details(line, owner_row.id).tools]
    assert tools == [("make_goal_call", True)]


async def test_with_the_owner_hung_up_the_report_arrives_by_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Calls(Owner(hang_up_after_placing=True), Receptionist())) as line:
        owner = await ring_and_ask(line, WEDNESDAY_1000)
        dentist = await line.twilio.next_call(timeout=15)
        assert await owner.wait_ended(timeout=20) == "completed"
        await heard_containing(dentist, "Hello, this is TARS")
        await dentist.say("We have Wednesday at 3pm")
        await dentist.wait_ended(timeout=30)
        await line.settle()
        texts = [m.body for m in line.twilio.messages if m.to == project.owner.phone]
    assert len(texts) == 1 and "Bright Smile Dental" in texts[0] and "done" in texts[0]


async def test_outside_the_practices_hours_the_call_is_scheduled_and_the_owner_told_when(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    owner_brain = Owner()
    async with Line(project, Calls(owner_brain, Receptionist())) as line:
        owner = await ring_and_ask(line, SATURDAY_1000)
        told = await heard_containing(owner, "cannot be called now")
        await owner.hang_up()
        await line.settle()
        dialled = [c.to for c in line.twilio.calls.values()]
    assert "Mon 30 Nov 2026 09:00" in told
    assert dialled == [project.section("telephony")["number"]]  # only the owner's own call
    owner_row, scheduled = rows(line)
    assert (scheduled.status, scheduled.scheduled_at, scheduled.requested_by) == ("queued", MONDAY_0900, owner_row.id)


async def test_a_fuzzy_name_is_read_back_before_anyone_is_dialled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    owner_brain = Owner({**BOOK, "target": "dentistt"})
    async with Line(project, Calls(owner_brain, Receptionist())) as line:
        owner = await ring_and_ask(line, WEDNESDAY_1000)
        await eventually(lambda: owner_brain.results, 20, "the make_goal_call result")
        await owner.hang_up()
        await line.settle()
        dialled = len(line.twilio.calls)
    result = dict(owner_brain.results)["make_goal_call"]
    assert result["confirm"] == "Bright Smile Dental (+442079460123)" and "Nothing was dialled" in result["hint"]
    assert dialled == 1 and len(rows(line)) == 1


#: A role that may start one playbook.
FAMILY = (
    "tars.yaml",
    "  delegate:\n",
    "  family:\n    tools: [make_goal_call, end_call]\n    playbooks: [dinner_invitation]\n  delegate:\n",
)


async def test_bad_requests_are_tool_results_and_nothing_is_placed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [FAMILY])
    async with Line(project, Calls(Owner(), Receptionist())) as line:
        assert line.server is not None
        from tars.scheduler.goal_requests import CallDesk
        from tars.tools.builtins import ToolError

        desk = CallDesk(line.server.server, 1, "owner")
        with pytest.raises(ToolError, match="there is no playbook called 'book_apointment'"):
            await desk.make_goal_call({**BOOK, "playbook": "book_apointment"})
        with pytest.raises(ToolError, match="nobody called 'Zebedee'"):
            await desk.make_goal_call({**BOOK, "target": "Zebedee"})
        with pytest.raises(ToolError, match="input 'preferred_day' is required"):
            await desk.make_goal_call({**BOOK, "inputs": {}})
        family = CallDesk(line.server.server, 1, "family")  # may start dinner_invitation only
        with pytest.raises(ToolError, match="the family role may not start the book_appointment playbook"):
            await family.make_goal_call(BOOK)
        assert line.twilio.calls == {} and rows(line) == []


def test_a_role_is_offered_only_the_playbooks_it_may_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tars.calls.session import function_schemas

    project = make_project(tmp_path / "p", monkeypatch, [FAMILY])

    def playbooks(role: str) -> list[str]:
        [schema] = function_schemas(project, ["make_goal_call"], role_name=role).standard_tools
        return schema.properties["playbook"]["enum"]

    assert playbooks("owner") == ["book_appointment", "business_inquiry", "dinner_invitation"]
    assert playbooks("family") == ["dinner_invitation"]


def test_a_role_naming_an_unknown_playbook_is_refused_by_validate(tmp_path: Path, tars: Any) -> None:
    from tars.scaffold import scaffold

    scaffold(tmp_path / "p")
    config = tmp_path / "p" / "tars.yaml"
    config.write_text(config.read_text().replace(*FAMILY[1:]).replace("[dinner_invitation]", "[diner_invitation]"))
    result = tars("--project", tmp_path / "p", "validate")
    assert result.exit_code == 1
    line = config.read_text().splitlines().index("    playbooks: [diner_invitation]") + 1
    assert result.output.startswith(
        f"tars.yaml:{line}:17  $.roles.family.playbooks[0]  'diner_invitation' is not a playbook; "
        "did you mean 'dinner_invitation'?\n"
    )


async def test_the_dentists_question_reaches_the_owners_live_call_and_the_spoken_answer_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    dentist_brain = AskingReceptionist()
    async with Line(project, Calls(Owner(), dentist_brain)) as line:
        owner = await ring_and_ask(line, WEDNESDAY_1000)
        dentist = await line.twilio.next_call(timeout=15)
        await heard_containing(dentist, "Hello, this is TARS")
        await dentist.say("We could do three or four")
        asked = await heard_containing(owner, "The dentist asks")
        await owner.say("three please")
        await heard_containing(owner, "I have told them")
        assert await dentist.wait_ended(timeout=30) == "completed"
        await heard_containing(owner, "News from the dentist", timeout=30)
        await owner.hang_up()
        await line.settle()
        texts = [m.body for m in line.twilio.messages if m.to == project.owner.phone]
    assert "three or at four" in asked
    assert ("ask_owner", {"owner_said": "three o'clock, please"}) in dentist_brain.results
    assert texts == []
    goal = rows(line)[1]
    assert goal.outcome["status"] == "booked"


async def test_with_no_owner_call_the_question_goes_by_text_and_only_its_code_answers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.server.harness import place

    project = make_project(tmp_path / "p", monkeypatch)
    dentist_brain = AskingReceptionist()
    async with Line(project, Calls(Owner(), dentist_brain)) as line:
        assert line.server is not None
        line.server.server.clock = lambda: WEDNESDAY_1000
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        assert placed["http"] == 201, placed
        dentist = await line.twilio.next_call(timeout=15)
        await heard_containing(dentist, "Hello, this is TARS")
        await dentist.say("We could do three or four")
        [question] = await eventually(line.questions_texted, 20, "the question texted to the owner")
        code = question.rsplit(" ", 1)[1]
        wrong = "0000" if code != "0000" else "1111"
        refused = await line.owner_texts(f"{wrong} three")
        assert refused.status == 200 and f"No open question has the code {wrong}" in refused.body
        answered = await line.owner_texts(f"{code} three, please")
        assert answered.status == 200 and "<Message>" not in answered.body
        assert await dentist.wait_ended(timeout=30) == "completed"
        await line.settle()
    assert "Wednesday at three or at four?" in question and f"reply starting with {code}" in question
    assert ("ask_owner", {"owner_said": "three, please"}) in dentist_brain.results


class HappyGuest:
    """Helen on the dinner call: accepts Friday at eight."""

    async def on_start(self, session: Any) -> list[Any]:
        return [Say("Hi Helen, it's TARS for Alex. Dinner at La Piazza on Friday at eight?")]

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "love to" in text:
            return [CallTool("goto_step", {"step": "agree"})]
        return []

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        if response.get("next_step") == "agree":
            return [CallTool("record_outcome", {"status": "accepted", "when": "Friday 8pm"})]
        if name == "record_outcome":
            return [CallTool("goto_step", {"step": "wrap_up"})]
        if response.get("next_step") == "wrap_up":
            return [Say("Lovely, see you Friday."), CallTool("end_call", {})]
        return []


class OwnerWantsAnEmail(Owner):
    """The seed's example, as one batch: look Helen up, call her, then email the owner."""

    async def on_user(self, session: Any, text: str) -> list[Any]:
        if "then email me" in text:
            return [
                CallTool("send_to_n8n", {"channel": "email", "message": "Helen's answer about dinner"}),
                CallTool(
                    "make_goal_call",
                    {
                        "target": "Helen",
                        "playbook": "dinner_invitation",
                        "inputs": {"guest_name": "Helen", "proposed_time": "Friday 8pm"},
                    },
                ),
                CallTool("lookup_contact", {"name": "Helen"}),
            ]
        return await super().on_user(session, text)

    async def on_tool_result(self, session: Any, name: str, response: dict[str, Any]) -> list[Any]:
        self.results.append((name, response))
        return [Say("I am calling Helen now and will email you what she says.")] if name == "send_to_n8n" else []


async def test_call_helen_then_email_me_emails_after_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tars: Any
) -> None:
    """ "Call Helen and ask if she wants dinner, then email me the details": the email goes out
    through the declared n8n webhook tool once the dinner call has its outcome, not before."""
    project = make_project(tmp_path / "p", monkeypatch)
    assert tars("--project", tmp_path / "p", "contacts", "add", "Helen Price", "+447700900456").exit_code == 0
    owner_brain = OwnerWantsAnEmail()
    async with Line(project, Calls(owner_brain, HappyGuest())) as line:
        owner = await ring_and_ask(
            line, WEDNESDAY_1000, "call Helen and ask if she wants dinner on Friday, then email me the details"
        )
        helen = await line.twilio.next_call(timeout=15)
        await heard_containing(owner, "will email you")
        emailed_before_the_outcome = [r for r in line.webhooks.requests if r.name == "send_to_n8n"]
        await heard_containing(helen, "Dinner at La Piazza")
        await helen.say("I would love to")
        assert await helen.wait_ended(timeout=30) == "completed"
        await owner.hang_up()
        await line.settle()
        emails = await eventually(
            lambda: [r for r in line.webhooks.requests if r.name == "send_to_n8n"], 15, "the email through n8n"
        )
    assert emailed_before_the_outcome == []
    assert helen.to == "+447700900456"
    [email] = emails
    assert email.payload["arguments"] == {"channel": "email", "message": "Helen's answer about dinner"}
    reported = email.payload["upstream"]["make_goal_call"]
    assert reported["outcome"] == {"status": "accepted", "when": "Friday 8pm"} and "Helen" in reported["text"]
    deferred = dict(owner_brain.results)["send_to_n8n"]
    assert deferred == {"deferred": True, "runs": "when the call to Helen Price has its outcome"}
    owner_row = rows(line)[0]
    tools = [(t.tool, t.allowed, t.reason) for t in details(line, owner_row.id).tools]
    assert ("send_to_n8n", True, None) in tools and tools.count(("send_to_n8n", True, None)) == 2


async def test_a_note_from_the_dentist_call_is_said_in_the_owners_call_or_texted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.server.harness import place

    project = make_project(tmp_path / "p", monkeypatch)
    dentist_brain = AskingReceptionist()
    async with Line(project, Calls(Owner(), dentist_brain)) as line:
        owner = await ring_and_ask(line, WEDNESDAY_1000)
        dentist = await line.twilio.next_call(timeout=15)
        await heard_containing(dentist, "Hello, this is TARS")
        await dentist.say("We are running late today")
        note = await heard_containing(owner, "A note:")
        await owner.hang_up()
        await dentist.hang_up()
        await line.settle()
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        again = await line.twilio.next_call(timeout=15)
        await heard_containing(again, "Hello, this is TARS")
        await again.say("We are running late today")
        texted = await eventually(
            lambda: [m.body for m in line.twilio.messages if "running ten minutes late" in m.body], 20, "the text"
        )
        await again.hang_up()
        await line.settle()
    assert note == "A note: the dentist is running ten minutes late"
    assert texted == ["TARS, on a call with Bright Smile Dental: the dentist is running ten minutes late"]
    told = [r for r in dentist_brain.results if r[0] == "tell_owner"]
    assert told == [
        ("tell_owner", {"told": True, "how": "in their live call, at the next pause"}),
        ("tell_owner", {"told": True, "how": "by text message"}),
    ]
    assert placed["http"] == 201
