"""`tars init`: a new project that validates as it is, and never loses what was there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tars.scaffold import example_project


def test_init_then_validate_from_any_folder(tmp_path: Path, tars: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = tars("init", "my-assistant")
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    assert "tars --project my-assistant validate" in result.output

    project = tmp_path / "my-assistant"
    for rel in ("tars.yaml", "personas/tars.yaml", ".gitignore", ".env.example"):
        assert (project / rel).is_file(), rel

    # From where it was made, from somewhere else entirely, and from inside it.
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    for cwd, where in [
        (tmp_path, "my-assistant"),
        (elsewhere, "../../my-assistant"),
        (elsewhere, str(project)),
        (project / "playbooks", "."),
    ]:
        monkeypatch.chdir(cwd)
        args = ("validate",) if where == "." else ("--project", where, "validate")
        checked = tars(*args)
        assert checked.exit_code == 0, f"from {cwd}: {checked.output}"
        assert "is valid" in checked.output


def test_init_in_the_current_folder(tmp_path: Path, tars: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = tars("init")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tars.yaml").is_file()
    assert "run tars validate" in " ".join(result.output.split())
    assert tars("validate").exit_code == 0


def test_init_never_overwrites(tmp_path: Path, tars: Any) -> None:
    project = tmp_path / "mine"
    (project / "playbooks").mkdir(parents=True)
    mine = "# my own, hand-written\nversion: 1\n"
    (project / "tars.yaml").write_text(mine)
    (project / "playbooks" / "book_appointment.yaml").write_text("# mine too\n")
    (project / ".gitignore").write_text("secrets/\n")

    result = tars("init", project, "--name", "Someone Else")
    assert result.exit_code == 0, result.output
    assert (project / "tars.yaml").read_text() == mine
    assert (project / "playbooks" / "book_appointment.yaml").read_text() == "# mine too\n"
    assert (project / ".gitignore").read_text() == "secrets/\n"
    kept = [line for line in result.output.splitlines() if line.startswith("kept")]
    assert len(kept) == 3, result.output
    assert all("not overwritten" in line for line in kept)
    assert (project / "personas" / "tars.yaml").is_file()  # what was missing is added

    again = tars("init", project)
    assert again.exit_code == 0
    assert "created" not in again.output
    assert (project / "tars.yaml").read_text() == mine


EXAMPLE_EMAIL = "  email: alex@example.com"


def test_init_writes_owner_details_keeping_comments(tmp_path: Path, tars: Any) -> None:
    project = tmp_path / "p"
    result = tars("init", project, "--name", "Sam O'Neil", "--phone", "+15551234567", "--timezone", "America/New_York")
    assert result.exit_code == 0, result.output

    # Only the owner lines change (the example's email goes, the region follows the number):
    # comments, quotes and layout are kept as they were.
    written = (project / "tars.yaml").read_text().splitlines()
    shipped = [line for line in (example_project() / "tars.yaml").read_text().splitlines() if line != EXAMPLE_EMAIL]
    assert len(written) == len(shipped)
    changed = [(old, new) for old, new in zip(shipped, written, strict=True) if old != new]
    assert [new for _, new in changed] == [
        "  name: Sam O'Neil",
        '  phone: "+15551234567"',
        "  timezone: America/New_York",
        "  region: US",
    ]

    shown = tars("--project", project, "config", "show", "--json")
    assert shown.exit_code == 0, shown.output
    owner = json.loads(shown.stdout)["owner"]
    assert owner["name"] == "Sam O'Neil"
    assert owner["phone"] == "+15551234567"
    assert owner["timezone"] == "America/New_York"
    assert owner["region"] == "US" and "email" not in owner
    assert tars("--project", project, "validate").exit_code == 0


@pytest.mark.parametrize(
    ("args", "owner"),
    [
        (["--phone", "07700 900123"], {"phone": "+447700900123", "region": "GB"}),
        (["--phone", "(415) 555-0100", "--region", "us"], {"phone": "+14155550100", "region": "US"}),
        (["--phone", "+14155550100", "--email", "sam@example.org"], {"region": "US", "email": "sam@example.org"}),
    ],
    ids=" ".join,
)
def test_init_reads_numbers_as_contacts_add_does(
    args: list[str], owner: dict[str, str], tmp_path: Path, tars: Any
) -> None:
    project = tmp_path / "p"
    result = tars("init", project, *args)
    assert result.exit_code == 0, result.output
    shown = json.loads(tars("--project", project, "config", "show", "--json").stdout)["owner"]
    assert {key: shown.get(key) for key in owner} == owner


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--phone", "12", "'12' is not a valid phone number (too short; read in region GB)"),
        ("--phone", "call me", "'call me' is not a phone number"),
        ("--email", "alex", "'alex' is not an email address"),
        ("--timezone", "Europe/Lundon", "is not a known timezone"),
        ("--timezone", "../../etc/passwd", "is not a known timezone"),
    ],
)
def test_init_refuses_bad_details(option: str, value: str, says: str, tmp_path: Path, tars: Any) -> None:
    result = tars("init", tmp_path / "p", option, value)
    assert result.exit_code == 1
    assert says in result.output
    assert not (tmp_path / "p").exists()  # nothing half-made


def test_init_into_a_file_is_refused(tmp_path: Path, tars: Any) -> None:
    (tmp_path / "taken").write_text("")
    result = tars("init", tmp_path / "taken")
    assert result.exit_code == 1
    assert "is not a folder" in result.output


@pytest.mark.parametrize("name", ["Dr: Who", "#1 fan", "true", "123", "José Núñez", "no", "09:30"])
def test_init_name_that_yaml_would_misread(name: str, tmp_path: Path, tars: Any) -> None:
    project = tmp_path / "p"
    assert tars("init", project, "--name", name).exit_code == 0
    shown = tars("--project", project, "config", "show", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["owner"]["name"] == name
