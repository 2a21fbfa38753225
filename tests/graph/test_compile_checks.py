"""Cross-checks over the compiled graph: each mistake a user can make, and exactly what they see.

Each case starts from the shipped example project, makes one edit a user might make,
and compares `tars validate` with a golden file (regenerate with TARS_UPDATE_GOLDENS=1,
then read the diff: the golden is what a person will see).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tars.cli.app import app
from tars.scaffold import scaffold

GOLDEN = Path(__file__).parent / "golden"

# case -> [(file, old text, new text)]
CASES: dict[str, list[tuple[str, str, str]]] = {
    "unknown_tool_in_step": [("playbooks/book_appointment.yaml", "tools: [press_digits]", "tools: [press_digit]")],
    "unknown_role": [("playbooks/business_inquiry.yaml", "role: delegate", "role: delegat")],
    "unknown_persona": [("tars.yaml", "persona: tars", "persona: tarz")],
    "unknown_persona_to_use": [("tars.yaml", "persona: tars", "persona: {use: tarz, autocommit: true}")],
    "unknown_playbook_persona": [
        ("playbooks/book_appointment.yaml", "role: delegate", "role: delegate\npersona: butler"),
    ],
    "persona_changer_granted_to_a_contact": [
        (
            "tars.yaml",
            "tools: [current_time, take_message, transfer_call, end_call]",
            "tools: [current_time, take_message, transfer_call, change_persona, end_call]",
        )
    ],
    "call_search_granted_to_a_contact": [
        (
            "tars.yaml",
            "tools: [current_time, take_message, transfer_call, end_call]",
            "tools: [current_time, take_message, transfer_call, search_calls, end_call]",
        )
    ],
    "transfer_to_an_unknown_target": [("tars.yaml", "to: [dentist, la_piazza]", "to: [dentsit, la_piazza]")],
    "transfer_to_a_name_not_a_number": [("tars.yaml", "to: [dentist, la_piazza]", "to: [dentist, '07700 900456']")],
    "transfer_back_into_tars": [("tars.yaml", "to: [dentist, la_piazza]", "to: [dentist, '+447700900999']")],
    "transfer_granted_without_targets": [
        ("tars.yaml", "      to: [dentist, la_piazza]\n      kind: cold\n", "      kind: cold\n"),
        ("tars.yaml", '    transfer:  # "put me through', '    # "put me through'),
        ("tars.yaml", "      kind: cold\n", ""),
    ],
    "transfer_targets_without_the_tool": [
        (
            "tars.yaml",
            "tools: [current_time, take_message, transfer_call, end_call]",
            "tools: [current_time, take_message, end_call]",
        )
    ],
    "transfer_granted_to_unknown_callers": [
        ("tars.yaml", "tools: [take_message, end_call]", "tools: [take_message, transfer_call, end_call]")
    ],
    "birthday_lead_out_of_range": [("tars.yaml", "  days_before: 1\n", "  days_before: 90\n")],
    "birthday_channel_unknown": [("tars.yaml", "  via: sms\n\ntexts:", "  via: pigeon\n\ntexts:")],
    "unknown_step": [("playbooks/book_appointment.yaml", "next: find_slot", "next: find_slott")],
    "unknown_tool_in_role": [("tars.yaml", "tools: [take_message, end_call]", "tools: [take_mesage, end_call]")],
    "needs_cycle": [
        ("tars.yaml", "    lookup_contact: true\n", "    lookup_contact:\n      needs: [make_goal_call]\n")
    ],
    "unreachable_step": [("playbooks/business_inquiry.yaml", "next: note_answer", "next: wrap_up")],
    "loop_without_end": [
        (
            "playbooks/business_inquiry.yaml",
            "    tools: [record_outcome]\n    next: wrap_up",
            "    tools: [record_outcome]\n    next: ask",
        )
    ],
    "step_leading_into_a_loop": [
        (
            "playbooks/business_inquiry.yaml",
            "    tools: [record_outcome]\n    next: wrap_up",
            "    tools: [record_outcome]\n    next: note_answer",
        ),
        (
            "playbooks/business_inquiry.yaml",
            "    tools: [end_call]\n    next: end",
            "    tools: [end_call]\n    next: ask",
        ),
    ],
    "playbook_tool_not_granted": [
        (
            "playbooks/business_inquiry.yaml",
            "tools: [current_time, record_outcome, press_digits, end_call]",
            "tools: [current_time, record_outcome, press_digits, end_call, send_sms]",
        )
    ],
    "step_tool_not_in_playbook": [
        (
            "playbooks/business_inquiry.yaml",
            "    tools: [end_call]\n    next: end",
            "    tools: [end_call, ask_owner]\n    next: end",
        )
    ],
    "unknown_placeholder": [
        ("playbooks/business_inquiry.yaml", "and ask:\n      {{ question }}", "and ask:\n      {{ questoin }}")
    ],
    "required_input_with_default": [
        (
            "playbooks/dinner_invitation.yaml",
            "    description: Who is invited?\n    required: true",
            "    description: Who is invited?\n    required: true\n    default: Helen",
        )
    ],
    "invalid_outcome_schema": [
        (
            "playbooks/business_inquiry.yaml",
            "status: {type: string, enum: [answered, unknown]}",
            "status: {type: strng, enum: [answered, unknown]}",
        )
    ],
    "case_value_not_in_enum": [
        ("playbooks/book_appointment.yaml", "        booked: confirm", "        bookd: confirm")
    ],
    "unknown_success_field": [
        (
            "playbooks/book_appointment.yaml",
            "success: {field: status, in: [booked]}",
            "success: {field: state, in: [booked]}",
        )
    ],
    "unknown_transition_field": [("playbooks/book_appointment.yaml", "      field: status\n", "      field: stauts\n")],
    "disabled_builtin_granted": [("tars.yaml", "    take_message: true", "    take_message: {enabled: false}")],
    "builtin_not_enabled": [("tars.yaml", "    press_digits: true\n", "")],
    "webhook_named_like_builtin": [
        ("tars.yaml", "    send_to_n8n:\n", "    send_sms:\n"),
        ("tars.yaml", "      - send_sms\n      - send_to_n8n\n", "      - send_sms\n"),
    ],
    "reserved_and_duplicate_step_ids": [
        ("playbooks/business_inquiry.yaml", "  - id: wrap_up", "  - id: note_answer"),
        ("playbooks/business_inquiry.yaml", "  - id: ask\n", "  - id: end\n"),
    ],
    "webhook_channel_unconfigured": [("tars.yaml", "  call_reports: sms", "  call_reports: webhook")],
    "comma_in_flow_description": [
        (
            "playbooks/dinner_invitation.yaml",
            'description: "The agreed time, in plain words."',
            "description: The agreed time, in plain words.",
        )
    ],
    "keyword_the_model_rejects": [
        ("playbooks/book_appointment.yaml", "notes: {type: string}", "notes: {type: string, maxLenght: 200}")
    ],
    "invalid_webhook_parameters": [
        ("tars.yaml", "channel: {type: string, enum: [email, telegram, discord]}", "channel: {type: 12}")
    ],
}


def make_project(tmp_path: Path, edits: list[tuple[str, str, str]]) -> Path:
    root = tmp_path / "project"
    scaffold(root)
    for file, old, new in edits:
        path = root / file
        text = path.read_text()
        assert old in text, f"fixture out of date: {old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))
    return root


@pytest.mark.parametrize("case", sorted(CASES))
def test_compile_check_reports_exact_message(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_goldens: bool
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TARS_HOME", str(tmp_path / "state"))
    root = make_project(tmp_path, CASES[case])
    result = CliRunner().invoke(app, ["--project", str(root), "validate"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    golden = GOLDEN / f"{case}.txt"
    if update_goldens:
        golden.write_text(result.output)
    assert result.output == golden.read_text()


def test_one_typo_does_not_cascade(tmp_path: Path) -> None:
    """An unknown step name is one error, not also 'unreachable' and 'never ends' for its neighbours."""
    root = make_project(tmp_path, CASES["unknown_step"])
    result = CliRunner().invoke(app, ["--project", str(root), "validate", "--json"])
    import json

    problems = json.loads(result.output)
    assert [p["code"] for p in problems] == ["ref.step"]


def test_a_schema_error_does_not_cascade_nor_hide_other_files(tmp_path: Path) -> None:
    """A file that fails its schema is not cross-checked, so its typo is reported alone (the
    misspelt 'rol' is one error: "did you mean 'role'" already covers the missing key); the
    other files are cross-checked in the same pass."""
    root = make_project(
        tmp_path,
        [
            ("playbooks/book_appointment.yaml", "role: delegate", "rol: delegate"),
            ("playbooks/business_inquiry.yaml", "next: note_answer", "next: nowhere"),
        ],
    )
    result = CliRunner().invoke(app, ["--project", str(root), "validate", "--json"])
    import json

    codes = sorted((p["file"], p["code"]) for p in json.loads(result.output))
    assert codes == [
        ("playbooks/book_appointment.yaml", "schema.unknown_key"),
        ("playbooks/business_inquiry.yaml", "ref.step"),
    ]


def test_all_cross_check_errors_in_one_pass(tmp_path: Path) -> None:
    edits = (
        CASES["unknown_tool_in_role"] + CASES["unknown_role"] + CASES["unknown_placeholder"][:0] + CASES["needs_cycle"]
    )
    root = make_project(tmp_path, edits)
    result = CliRunner().invoke(app, ["--project", str(root), "validate", "--json"])
    import json

    codes = sorted(p["code"] for p in json.loads(result.output))
    assert codes == ["graph.cycle", "ref.role", "ref.tool"]
