"""A playbook compiled for one call: inputs, rendered instructions, one stable tool set, transitions."""

from __future__ import annotations

import pytest

from tars.graph.call_plan import InputError, prepare_call
from tars.loading import load_project
from tars.project import Project


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project()


def test_inputs_are_checked_defaulted_and_rendered(project: Project) -> None:
    plan = prepare_call(project, "book_appointment", {"preferred_day": "Wednesday"})
    assert plan.inputs == {"preferred_day": "Wednesday", "appointment_type": "check-up", "preferred_time": "any time"}
    assert plan.goal.startswith("Book a check-up appointment for Alex Morgan on Wednesday, any time")
    assert "{{" not in plan.instructions("introduce")


def test_one_stable_tool_set_for_the_whole_call(project: Project) -> None:
    plan = prepare_call(project, "book_appointment", {"preferred_day": "Wed"})
    assert plan.tool_set == (
        "current_time",
        "record_outcome",
        "ask_owner",
        "tell_owner",
        "press_digits",
        "end_call",
    )
    assert plan.allowed_tools("introduce") == ("press_digits",)
    for step in plan.steps:
        assert set(plan.allowed_tools(step)) <= set(plan.tool_set)


def test_transitions_follow_the_outcome_field(project: Project) -> None:
    plan = prepare_call(project, "book_appointment", {"preferred_day": "Wed"})
    assert plan.next_step("introduce") == "find_slot"
    assert plan.next_step("find_slot", {"status": "booked"}) == "confirm"
    assert plan.next_step("find_slot", {"status": "no_slot"}) == "alternatives"
    assert plan.next_step("find_slot", {}) == "wrap_up"  # default
    assert plan.next_step("wrap_up") == "end"


def test_model_chosen_transitions(project: Project) -> None:
    plan = prepare_call(project, "dinner_invitation", {"guest_name": "Helen", "proposed_time": "Friday 8pm"})
    assert [t.to for t in plan.choices("invite")] == ["agree", "negotiate", "wrap_up"]
    assert plan.next_step("invite", choice="negotiate") == "negotiate"
    with pytest.raises(ValueError, match="not a way out"):
        plan.next_step("invite", choice="confirm")
    assert "call goto_step with one of: 'agree' when they accept the proposed time" in plan.announcement("invite")


def test_outcome_fields_render_once_known(project: Project) -> None:
    plan = prepare_call(project, "book_appointment", {"preferred_day": "Wed"})
    assert "(not yet known)" in plan.instructions("confirm")
    assert "2026-11-25T15:00" in plan.instructions("confirm", {"status": "booked", "when": "2026-11-25T15:00"})


def test_bad_inputs_say_what_is_wrong(project: Project) -> None:
    with pytest.raises(InputError) as caught:
        prepare_call(project, "book_appointment", {"prefered_day": "Wed"})
    assert [i.name for i in caught.value.missing] == ["preferred_day"]
    assert "'prefered_day' is not an input of playbook 'book_appointment'; did you mean 'preferred_day'?" in str(
        caught.value
    )
    with pytest.raises(KeyError, match="did you mean 'book_appointment'"):
        prepare_call(project, "book_apointment", {})
