"""What an attack run on the CLI broke: a weak PIN passed validation, ``${VAR}`` inside a
schema crashed `tars validate`, short secrets were shown unmasked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tars.config.secrets import MASK, mask_text

GOOD = {"TWILIO_ACCOUNT_SID": "AC" + "a" * 32, "TWILIO_AUTH_TOKEN": "t" * 32, "GEMINI_API_KEY": "k" * 39}


@pytest.mark.parametrize("pin", ["1", "12", "abc", "12 34", "123456789"])
def test_a_weak_pin_fails_validation_without_showing_it(example_project: Path, tars: Any, pin: str) -> None:
    result = tars("--project", example_project, "validate", env={**GOOD, "TARS_OWNER_PIN": pin})
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        "tars.yaml:14:8  $.owner.pin  the value of ${TARS_OWNER_PIN} must be 4 to 8 digits (0-9), such as 4827"
    ), result.output
    assert tars("--project", example_project, "validate", env={**GOOD, "TARS_OWNER_PIN": "2468"}).exit_code == 0


def test_references_inside_schemas_do_not_crash_validate(example_project: Path, tars: Any) -> None:
    book = example_project / "playbooks" / "book_appointment.yaml"
    outcome = "outcome:\n  schema:\n"
    book.write_text(book.read_text().replace(outcome, outcome + "    description: ${DESC}\n"))
    config = example_project / "tars.yaml"
    parameters = "      parameters:\n        type: object\n"
    text = config.read_text().replace(parameters, parameters + "        title: ${DESC}\n", 1)
    assert text != config.read_text()
    config.write_text(text)
    result = tars("--project", example_project, "validate", env={**GOOD, "DESC": "from the environment"})
    assert result.exit_code == 0, result.output


def test_short_secrets_are_masked_where_they_stand() -> None:
    text = "pin 12 in call 4123, key=ab; abc"
    assert mask_text(text, {"12", "ab"}) == f"pin {MASK} in call 4123, key={MASK}; abc"
