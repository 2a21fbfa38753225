"""The owner's greeting names the right part of the day at every hour, in the owner's time zone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tars.calls.instructions import greeting, local_now, template_values
from tests.server.harness import make_project

# Hour by hour from midnight: the small hours are evening, never afternoon.
EXPECTED = dict(enumerate(["evening"] * 5 + ["morning"] * 7 + ["afternoon"] * 6 + ["evening"] * 6))


def test_every_hour_of_the_owners_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", monkeypatch)
    zone = ZoneInfo(project.owner.timezone)
    said = {}
    for hour in range(24):
        local = dt.datetime(2026, 12, 2, hour, 30, tzinfo=zone)
        now = local_now(project, local.astimezone(dt.UTC))
        said[hour] = greeting(project, "owner", template_values(project, now))
    assert said[1] == "Good evening, sir. TARS at your service. What can I do for you?"
    assert said == {
        hour: f"Good {part}, sir. TARS at your service. What can I do for you?" for hour, part in EXPECTED.items()
    }


SALUTATIONS = {
    "de-DE": ("Guten Morgen", "Guten Tag", "Guten Abend"),
    "fr-FR": ("Bonjour", "Bonjour", "Bonsoir"),
    "es-ES": ("Buenos días", "Buenas tardes", "Buenas noches"),
    "en-GB": ("Good morning", "Good afternoon", "Good evening"),
}


@pytest.mark.parametrize("language", sorted(SALUTATIONS))
def test_greetings_use_the_personas_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, language: str) -> None:
    project = make_project(
        tmp_path / "p",
        monkeypatch,
        [
            ("personas/tars.yaml", "language: en-GB", f"language: {language}"),
            ("personas/tars.yaml", "owner: Good {{ time_of_day }}, sir.", 'owner: "{{ salutation }}, sir.'),
            ("personas/tars.yaml", "What can I do for you?", 'What can I do for you?"'),
        ],
    )
    zone = ZoneInfo(project.owner.timezone)
    parts = {"morning": 0, "afternoon": 1, "evening": 2}
    for hour, part in EXPECTED.items():
        now = local_now(project, dt.datetime(2026, 12, 2, hour, 30, tzinfo=zone).astimezone(dt.UTC))
        words = greeting(project, "owner", template_values(project, now))
        assert words.startswith(f"{SALUTATIONS[language][parts[part]]}, sir."), (hour, words)


def test_the_instruction_names_the_language_and_a_tag_it_has_no_name_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tars.calls.instructions import persona_lines

    project = make_project(tmp_path / "p", monkeypatch)
    assert "Speak British English (en-GB)" in " ".join(persona_lines(project.persona))
    unusual = project.persona.__class__(**{**project.persona.__dict__, "language": "cy-GB"})
    assert "Speak the language with the tag cy-GB" in " ".join(persona_lines(unusual))
