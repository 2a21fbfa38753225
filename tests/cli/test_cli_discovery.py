"""Which project a command works on: --project, then $TARS_PROJECT, then the nearest tars.yaml up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tars.scaffold import OwnerDetails, scaffold


@pytest.fixture
def three_projects(tmp_path: Path) -> dict[str, Path]:
    """Projects whose owners are named after them, to tell which one a command read."""
    found = {}
    for name in ("flag", "env", "here"):
        root = tmp_path / name
        scaffold(root, OwnerDetails(name=f"Owner of {name}"))
        found[name] = root
    return found


def _owner(tars: Any, *args: str | Path, env: dict[str, str] | None = None) -> str:
    result = tars(*args, "config", "show", "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["owner"]["name"]


def test_discovery_order(three_projects: dict[str, Path], tars: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(three_projects["here"] / "playbooks")  # walking up finds "here"
    assert _owner(tars) == "Owner of here"

    monkeypatch.setenv("TARS_PROJECT", str(three_projects["env"]))
    assert _owner(tars) == "Owner of env"

    assert _owner(tars, "--project", three_projects["flag"]) == "Owner of flag"
    assert _owner(tars, "-p", three_projects["flag"] / "tars.yaml") == "Owner of flag"


def test_the_persona_called_tars_is_not_a_project(
    example_project: Path, tars: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """personas/tars.yaml must not make personas/ look like a project of its own."""
    assert (example_project / "personas" / "tars.yaml").is_file()
    monkeypatch.chdir(example_project / "personas")
    assert tars("validate").exit_code == 0
    assert tars("validate", "tars.yaml").exit_code == 0
    assert tars("--project", ".", "validate").exit_code == 0
    assert tars("--project", "tars.yaml", "validate").exit_code == 0


def test_no_project_anywhere(tmp_path: Path, tars: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    for args in (["validate"], ["config", "show"]):
        result = tars(*args)
        assert result.exit_code == 1, result.output
        text = " ".join(result.output.split())
        assert "no tars.yaml here or in any parent folder" in text
        assert "--project DIR" in text and "TARS_PROJECT" in text and "tars init DIR" in text
        assert "Traceback" not in result.output


@pytest.mark.parametrize("how", ["flag", "env"])
def test_named_project_without_tars_yaml(how: str, tmp_path: Path, tars: Any, example_project: Path) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    if how == "flag":
        result = tars("--project", empty, "validate")
    else:
        result = tars("--project", example_project, "validate")  # the flag wins over the variable
        assert result.exit_code == 0, result.output
        result = tars("validate", env={"TARS_PROJECT": str(empty)})
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "no tars.yaml in this folder" in text
    assert ("--project" if how == "flag" else "TARS_PROJECT") in text
    assert str(empty) in text


def test_validate_files_checks_the_project_they_belong_to(
    tmp_path: Path, tars: Any, example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    playbook = example_project / "playbooks" / "book_appointment.yaml"
    result = tars("validate", playbook)
    assert result.exit_code == 0, result.output

    broken = example_project / "personas" / "tars.yaml"
    broken.write_text(broken.read_text().replace("humor: 35", "humor: lots"))
    result = tars("validate", playbook)  # a file that is fine, in a project that is not
    assert result.exit_code == 1
    assert "personas/tars.yaml:" in result.output


def test_validate_files_from_two_projects_checks_both(
    tmp_path: Path, tars: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("home", "work"):
        scaffold(tmp_path / name)
    persona = tmp_path / "work" / "personas" / "tars.yaml"
    persona.write_text(persona.read_text().replace("humor: 35", "humor: lots"))

    result = tars("validate", "home/tars.yaml", "work/playbooks/book_appointment.yaml")
    assert result.exit_code == 1
    assert result.output.startswith("work/personas/tars.yaml:10:8  $.humor  expected a whole number")
    assert "   10 | humor: lots" in result.output

    result = tars("validate", "home/tars.yaml", "work/tars.yaml", "--json")
    assert [d["file"] for d in json.loads(result.stdout)] == ["work/personas/tars.yaml"]


def test_named_project_that_does_not_exist(tmp_path: Path, tars: Any) -> None:
    result = tars("--project", tmp_path / "typo", "validate")
    assert result.exit_code == 1
    assert "no such folder (from --project)" in " ".join(result.output.split())
