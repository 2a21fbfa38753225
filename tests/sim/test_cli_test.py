"""`tars test`: every playbook's scenarios played offline, a pass/fail table, JUnit XML for CI.

The first test plays all of the shipped scenarios (whole goal calls through the real server,
SDKs and pipecat against the loopback emulators, two at a time); the others keep to the
fastest (a busy line, a voicemail) or place no call at all.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

SCENARIOS = Path("playbooks") / "scenarios"


def test_every_shipped_playbook_passes_its_scenarios(example_project: Path, tars: Any, tmp_path: Path) -> None:
    report = tmp_path / "ci" / "junit.xml"
    result = tars("--project", example_project, "test", "--junit", report)
    assert result.exit_code == 0, result.output
    rows = set()  # (playbook, scenario): the playbook is named on its first row only
    for cells in (line.split() for line in result.stdout.splitlines()):
        if "✓" in cells:
            mark = cells.index("✓")
            rows.add((cells[mark - 2] if mark == 2 else "", cells[mark - 1]))
    assert {name for _, name in rows} == {
        "booked", "no_slot", "voicemail", "busy", "accepted", "another_time", "declined", "answered", "unknown",
        "hung_up",
    }  # fmt: skip
    assert {playbook for playbook, _ in rows} - {""} == {"book_appointment", "business_inquiry", "dinner_invitation"}
    assert "10 passed in" in result.stdout and "✗" not in result.stdout
    suites = ET.parse(report).getroot()
    counts = (suites.get("tests"), suites.get("failures"), suites.get("errors"))
    assert (suites.tag, counts) == ("testsuites", ("10", "0", "0"))
    assert [s.get("name") for s in suites] == ["book_appointment", "business_inquiry", "dinner_invitation"]
    # Simulations never touch the project's own state folder.
    assert not (example_project / ".tars" / "tars.db").exists()


def test_a_failing_expectation_fails_the_run_and_the_junit_report(
    example_project: Path, tars: Any, tmp_path: Path
) -> None:
    folder = example_project / SCENARIOS
    for playbook in ("business_inquiry", "dinner_invitation"):
        shutil.rmtree(folder / playbook)
    for name in ("booked", "no_slot"):
        (folder / "book_appointment" / f"{name}.yaml").unlink()
    busy = folder / "book_appointment" / "busy.yaml"
    busy.write_text(busy.read_text().replace("call_status: busy", "call_status: no-answer"))
    report = tmp_path / "junit.xml"

    result = tars("--project", example_project, "test", "--junit", report)
    assert result.exit_code == 1, result.output
    out = " ".join(result.stdout.split())
    assert "busy ✗ fail 3/4" in out and "voicemail ✓ pass 4/4" in out
    assert "✗ book_appointment/busy playbooks/scenarios/book_appointment/busy.yaml" in out
    assert "✗ call status no-answer: the call ended busy" in out
    assert "See the whole call: tars simulate playbooks/scenarios/book_appointment/busy.yaml" in out
    assert "1 passed, 1 failed in" in out
    assert "✗ playbook 'business_inquiry' has no scenarios" in out and "✗ playbook 'dinner_invitation'" in out

    suites = ET.parse(report).getroot()
    assert (suites.get("tests"), suites.get("failures"), suites.get("errors")) == ("4", "1", "2")
    book = suites.find("testsuite[@name='book_appointment']")
    assert book is not None and (book.get("tests"), book.get("failures")) == ("2", "1")
    busy_case = book.find("testcase[@name='busy']")
    assert busy_case is not None and busy_case.get("classname") == "playbooks.book_appointment"
    failure = busy_case.find("failure")
    assert failure is not None and failure.get("message") == "1 of 4 expectations failed: call status no-answer"
    assert "✗ call status no-answer: the call ended busy" in (failure.text or "")
    assert book.find("testcase[@name='voicemail']/failure") is None
    empty = suites.find("testsuite[@name='dinner_invitation']/testcase/error")
    assert empty is not None and empty.get("message") == "no scenarios in playbooks/scenarios/dinner_invitation/"

    result = tars("--project", example_project, "test", "--json", "book_appointment")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert (data["ok"], data["passed"], data["failed"]) == (False, 1, 1)
    assert data["playbooks"] == [
        {"playbook": "book_appointment", "scenarios": 2, "passed": 1, "failed": 1, "problem": None}
    ]


def test_unknown_and_empty_playbooks_are_clear_errors(example_project: Path, tars: Any) -> None:
    result = tars("--project", example_project, "test", "book_apointment")
    assert result.exit_code == 1
    assert "Error: 'book_apointment' is not a playbook; did you mean 'book_appointment'?" in result.output
    assert "playbooks: book_appointment, business_inquiry, dinner_invitation" in result.output

    shutil.rmtree(example_project / SCENARIOS / "business_inquiry")
    result = tars("--project", example_project, "test", "business_inquiry")
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "Error: playbook 'business_inquiry' has no scenarios" in flat
    assert "add a goal call scripted for both ends as playbooks/scenarios/business_inquiry/NAME.yaml" in flat


def test_a_broken_scenario_is_reported_in_place_before_any_call(example_project: Path, tars: Any) -> None:
    file = example_project / SCENARIOS / "book_appointment" / "booked.yaml"
    file.write_text(file.read_text().replace("args: {step: find_slot}", "args: {step: find_slott}"))
    result = tars("--project", example_project, "test", "book_appointment")
    assert result.exit_code == 1
    assert (
        "playbooks/scenarios/book_appointment/booked.yaml:16:43  $.turns[2].model.args.step  "
        "'find_slott' is not a step of playbook 'book_appointment'; did you mean 'find_slot'?"
    ) in result.output
    assert "passed" not in result.output
