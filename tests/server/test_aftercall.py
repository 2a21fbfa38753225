"""After a goal call: an outcome the transcript supports, cited line by line, or `unknown`
with the reason; never a success the other party did not give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tars.calls.aftercall import check_evidence
from tars.emulators.gemini.emulator import CallTool, Say
from tests.server.harness import Line, Receptionist, make_project, place
from tests.server.test_goal_calls import DENTIST, stored

QUICK_SILENCE = (
    "playbooks/book_appointment.yaml",
    "nudge_after_seconds: 8, end_after_nudges: 2",
    "nudge_after_seconds: 2, end_after_nudges: 1",
)
SCHEMA = {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["booked", "declined"]}}}
LINES = [
    ("assistant", "Do you have anything on Wednesday?"),
    ("system", "note"),
    ("caller", "Yes, booked for 3pm"),
]


def report_to_owner(line: Line, owner: str) -> str:
    texts = [m.body for m in line.twilio.messages if m.to == owner]
    assert len(texts) == 1, texts
    return texts[0]


async def test_a_silent_goal_call_is_stored_unknown_and_its_report_claims_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch, [QUICK_SILENCE])
    async with Line(project, Receptionist) as line:
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call = await line.twilio.next_call(timeout=10)
        assert call.to == DENTIST
        assert await call.wait_ended(timeout=30) == "completed"  # no answer after 1 nudge
        await line.settle()
        report = report_to_owner(line, project.owner.phone)
    record = stored(line, placed["call_id"]).call
    assert record.outcome == {"status": "unknown", "reason": "the other party never spoke"}
    assert record.outcome_source == "unknown"
    assert "The other party never spoke" in record.summary and "ended booked" not in record.summary
    assert "(book_appointment): not done." in report
    assert "booked" not in report and "outcome unknown: the other party never spoke" in report


class Forgetful(Receptionist):
    """Hears the answer, says goodbye, and never records the outcome."""

    async def on_user(self, session: Any, text: str) -> list[Any]:
        return [Say("I see. Thank you, goodbye."), CallTool("end_call", {"reason": "done"})]


async def test_an_unrecorded_outcome_is_extracted_from_the_line_that_says_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Forgetful) as line:
        placed = await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("Sorry, we have declined new patients this month")
        assert await call.wait_ended(timeout=30) == "completed"
        await line.settle()
        report = report_to_owner(line, project.owner.phone)
        asked = [r for r in line.gemini.rest_requests if r.json_mode]
    record = stored(line, placed["call_id"])
    assert record.call.outcome == {"status": "declined"} and record.call.outcome_source == "extracted"
    assert "declined new patients" in record.call.summary
    spoken = [t for t in record.transcript if t.speaker != "system"]
    cited = next(t.text for t in record.transcript if t.text.startswith("outcome extracted"))
    number = int(cited.rsplit(" ", 1)[1])
    assert spoken[number - 1].text == "Sorry, we have declined new patients this month"
    assert report.endswith(f"(outcome extracted after the call from transcript line {number})")
    assert asked[0].schema[0]["required"] == ["outcome", "evidence"]


async def test_the_model_s_own_record_is_reported_as_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    async with Line(project, Receptionist) as line:
        await place(line, "dentist", "book_appointment", {"preferred_day": "Wednesday"})
        call = await line.twilio.next_call(timeout=10)
        await call.wait_for_agent_utterance(timeout=20)
        await call.say("We have Wednesday at 3pm")
        await call.wait_ended(timeout=30)
        await line.settle()
        report = report_to_owner(line, project.owner.phone)
    assert ": done." in report and report.endswith("(outcome recorded by the model during the call)")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"outcome": {"status": "booked"}, "evidence": []}, "nothing the other party said supports an outcome"),
        ({"outcome": {"status": "booked"}, "evidence": [{"line": 1, "quote": "Wednesday"}]}, "nothing the other"),
        ({"outcome": {"status": "booked"}, "evidence": [{"line": 2, "quote": "booked for 4pm"}]}, "nothing the"),
        ({"outcome": {"status": "booked"}, "evidence": [{"line": 9, "quote": "booked"}]}, "nothing the other"),
        ({"outcome": {"status": "maybe"}, "evidence": [{"line": 2, "quote": "booked"}]}, "does not fit"),
        ({"evidence": [{"line": 2, "quote": "booked"}]}, "the text model gave no outcome"),
    ],
    ids=["no-citation", "cites-tars", "misquotes", "no-such-line", "off-schema", "no-outcome"],
)
def test_an_outcome_without_support_in_the_transcript_is_not_kept(answer: dict[str, Any], reason: str) -> None:
    found = check_evidence(answer, SCHEMA, LINES)
    assert found.outcome is None and reason in (found.reason or "")


def test_an_outcome_resting_on_the_other_party_s_words_is_kept() -> None:
    found = check_evidence(
        {"outcome": {"status": "booked"}, "evidence": [{"line": 2, "quote": "BOOKED  for"}]}, SCHEMA, LINES
    )
    assert found.outcome == {"status": "booked"} and found.evidence == (2,)
