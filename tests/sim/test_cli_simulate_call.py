"""`tars call TARGET --playbook NAME --simulate`: the goal call, offline, stored like a real one.

No credentials and no network: the example project's secrets default to empty, and the
server runs in-process between the loopback Twilio and Gemini emulators.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.sim.test_cli_sim import assert_next_wednesday_at_ten


def test_a_simulated_call_runs_offline_and_is_kept(example_project: Path, tars: Any) -> None:
    result = tars("--project", example_project, "call", "dentist", "--playbook", "book_appointment", "--simulate")
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "Simulating a call to Bright Smile Dental (+442079460123), playbook book_appointment" in out
    assert "the other end plays playbooks/scenarios/book_appointment/booked.yaml" in out
    assert "inputs: appointment_type=check-up, preferred_day=Wednesday, preferred_time=morning" in out  # no --var
    # The live view: what was said and every tool call, as TARS recorded them.
    # The other party is named as in every view of a call: by the name TARS knows them by.
    assert "Bright Smile Dental Bright Smile Dental, good morning." in out
    assert "TARS Hello, I'm calling on behalf of Alex Morgan" in out
    when = re.search(r'tool record_outcome\(status="booked", when="([^"]+)"\)', out)
    assert when is not None, out
    assert_next_wednesday_at_ten(when.group(1))
    assert f'Outcome {{"status": "booked", "when": "{when.group(1)}"}} (recorded)' in out
    assert "Summary The call ended booked" in out
    assert "✓ the scenario's 11 expectations held" in out
    assert "Stored as call 1 (simulated): see it again with tars calls show 1" in out

    shown = tars("--project", example_project, "calls", "show", "1")
    assert shown.exit_code == 0, shown.output
    assert "Call 1 to Bright Smile Dental (+442079460123) — completed" in shown.output
    assert "Bright Smile Dental: We have Wednesday at ten." in shown.output
    assert "TARS: Hello, I'm calling on behalf of Alex Morgan" in shown.output
    assert "[simulated] The call ended booked" in shown.output
    details = json.loads(tars("--project", example_project, "calls", "show", "1", "--json").stdout)
    assert details["sid"].startswith("sim-CA") and details["outcome_source"] == "recorded"
    assert [t["tool"] for t in details["tools"]] == ["goto_step", "record_outcome", "goto_step", "end_call"]


def test_a_busy_line_is_stored_and_never_retried(example_project: Path, tars: Any) -> None:
    from sqlmodel import select

    from tars.loading import load_project
    from tars.store.database import connect
    from tars.store.models import Call

    result = tars(
        "--project", example_project, "call", "the dentist", "-b", "book_appointment", "--simulate",
        "--scenario", "busy", "--var", "preferred_day=Friday", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["ok"], data["call_id"], data["call_status"], data["scenario"]) == (True, 1, "busy", "busy")
    assert data["target"] == {"name": "Bright Smile Dental", "phone": "+442079460123", "source": "directory"}
    # The simulation scheduled a retry in its own database; the kept call is only a record.
    with connect(load_project(example_project).database_url) as db, db.session() as session:
        [call] = session.exec(select(Call)).all()
    assert (call.status, call.follow_up, call.inputs["preferred_day"]) == ("busy", "none", "Friday")


def test_simulation_mistakes_say_what_to_do(example_project: Path, tars: Any) -> None:
    result = tars("--project", example_project, "call", "dentist", "-b", "book_appointment", "--scenario", "busy")
    assert result.exit_code == 2
    assert "--scenario goes with --simulate" in result.output
    result = tars("--project", example_project, "call", "dentist", "-b", "book_appointment", "--simulate",
                  "--scenario", "bussy")  # fmt: skip
    assert result.exit_code == 1
    assert "no scenario 'bussy'; did you mean 'busy'?" in result.output
    result = tars("--project", example_project, "call", "dentist", "-b", "book_appointment", "--simulate",
                  "--var", "colour=blue")  # fmt: skip
    assert result.exit_code == 1
    assert "colour" in result.output and "--var key=value" in result.output
