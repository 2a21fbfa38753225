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


def test_no_secret_at_any_log_level_and_transcripts_only_at_trace(capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import logging

    from loguru import logger

    from tars.logs import CHATTY, install

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    saved = (root.level, {name: logging.getLogger(name).level for name in CHATTY})
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        for level in ("debug", "trace"):
            install(level, {"AIzaSy-the-gemini-key"})
            logging.getLogger("websockets.client").debug("> x-goog-api-key: AIzaSy-the-gemini-key")
            logging.getLogger("websockets.client").info("> X-Goog-Api-Key: AIzaSy-other-key")
            logging.getLogger("tars.server").warning("GET wss://host/ws?key=AIzaSy-in-a-url&alt=1")
            logging.getLogger("tars.server").debug("Authorization: Bearer tok-123, using %s", "AIzaSy-the-gemini-key")
            logger.debug("TranscriptionFrame: my PIN is 8462")
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, value in saved[1].items():
            logging.getLogger(name).setLevel(value)
    logged = stream.getvalue() + capsys.readouterr().err
    assert "AIzaSy" not in logged and "tok-123" not in logged, logged
    assert logged.count("x-goog-api-key: ••••••") == 1, "the per-frame line only at trace"
    assert logged.count("X-Goog-Api-Key: ••••••") == 2
    assert logged.count("?key=••••••&alt=1") == 2
    assert logged.count("my PIN is 8462") == 1, "transcripts only at trace"


def test_terminal_escapes_in_a_contact_name_are_shown_not_obeyed(
    example_project: Path, tars: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    book = tmp_path / "evil.csv"
    book.write_text("name,phone\nEvil\x1b]0;pwned\x07\x1b[31mRed,+447700900111\n")
    assert tars("--project", example_project, "contacts", "import", book).exit_code == 0
    for args in (("contacts", "list"), ("contacts", "show", "Evil")):
        result = tars("--project", example_project, *args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
        assert "Evil\\x1b]0;pwned\\x07" in result.output


def test_a_csv_field_too_large_and_a_huge_variable_name_get_a_short_sentence(
    example_project: Path, tars: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARS_HOME", str(example_project / ".tars"))
    book = tmp_path / "big.csv"
    book.write_text("name,phone,notes\nBig,+447700900112," + "x" * 1_100_000 + "\n")
    result = tars("--project", example_project, "contacts", "import", book)
    assert result.exit_code == 1
    assert result.output.startswith("Error: big.csv line 2: a field is longer than 131072 characters\n")
    config = example_project / "tars.yaml"
    config.write_text(config.read_text().replace("${TARS_OWNER_PIN:-}", "${" + "V" * 100_000 + "}"))
    result = tars("--project", example_project, "validate", env=GOOD)
    assert result.exit_code == 1 and len(result.output) < 2000, len(result.output)
    assert "environment variable VVVV" in result.output and "... is not set" in result.output
