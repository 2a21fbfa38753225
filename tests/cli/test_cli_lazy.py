"""Lazy commands: `tars --help` lists every command without importing one, a command imports
its own module only, and the static table (tars.cli.app.COMMANDS) says what the modules do."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from pathlib import Path
from typing import Any

import pytest
import typer

import tars.cli
from tars.cli.app import COMMANDS, app, load_command
from tests.cli.startup_helpers import imported

# Every module under tars.cli that adds commands to the root (it has a ``register``).
COMMAND_MODULES = sorted(
    info.name
    for info in pkgutil.iter_modules(tars.cli.__path__, "tars.cli.")
    if hasattr(importlib.import_module(info.name), "register")
)


def _registered() -> dict[str, Any]:
    """What the modules register, built eagerly the way Typer would (in table order)."""
    holder = typer.Typer(rich_markup_mode="rich", add_completion=False)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(holder)
    return dict(typer.main.get_group(holder).commands)


def _first_paragraph(command: Any) -> str:
    return inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0].strip()


def test_the_table_names_every_command_and_its_module() -> None:
    registered = _registered()
    assert set(COMMANDS) == set(registered)
    assert sorted({module for module, _ in COMMANDS.values()}) == COMMAND_MODULES
    for name, (module, _) in COMMANDS.items():
        holder = typer.Typer()
        importlib.import_module(module).register(holder)
        assert name in typer.main.get_group(holder).commands, f"{module} does not register '{name}'"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_table_has_each_commands_own_help_line(name: str) -> None:
    assert COMMANDS[name][1] == _first_paragraph(_registered()[name])
    assert _first_paragraph(load_command(name)) == COMMANDS[name][1]


def _help(group: Any, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        group.main(["--help"], prog_name="tars")
    assert done.value.code in (0, None)
    return capsys.readouterr().out


def test_help_lists_commands_as_the_loaded_commands_would(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    lazy = typer.main.get_command(app)
    listed = _help(lazy, capsys)
    assert not lazy.commands, "--help loaded a command"

    eager = typer.main.get_command(app)
    ctx = typer.Context(eager)
    for name in COMMANDS:  # loads each, so the listing below uses the real commands
        assert eager.get_command(ctx, name) is not None
    assert set(eager.commands) == set(COMMANDS)
    assert _help(eager, capsys) == listed
    for name, (_, line) in COMMANDS.items():
        assert name in listed and " ".join(line.split()[:3]) in " ".join(listed.split())


def test_a_typo_suggests_the_command(tars: Any) -> None:
    result = tars("remnd")
    assert result.exit_code == 2
    assert "Did you mean 'remind'" in result.output


def test_help_imports_no_command_module(example_project: Path) -> None:
    assert imported(example_project, ["--help"], COMMAND_MODULES) == []


def test_a_command_imports_its_own_module_only(example_project: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TARS_NOW"}
    env["TARS_HOME"] = str(tmp_path / "home")
    args = ["remind", "add", "call Helen", "--at", "tomorrow 2pm"]
    assert imported(example_project, args, COMMAND_MODULES, env) == ["tars.cli.remind"]
    assert imported(example_project, ["validate"], COMMAND_MODULES, env) == ["tars.cli.validate"]


def test_validate_of_a_valid_project_imports_neither_jsonschema_nor_networkx(example_project: Path) -> None:
    """jsonschema-rs says "valid"; jsonschema (Python) only explains errors, networkx only
    draws the graph (`tars graph`); the checks themselves are plain Python."""
    loaded = imported(example_project, ["validate"], ["jsonschema", "networkx", "jsonschema_rs", "asyncio"])
    assert [m for m in loaded if not m.startswith("jsonschema_rs")] == []
    assert "jsonschema_rs" in loaded


def test_validate_of_an_invalid_project_still_explains(example_project: Path, tars: Any) -> None:
    config = example_project / "tars.yaml"
    config.write_text(config.read_text().replace("persona: ", "persona: nobody_", 1))
    result = tars("--project", example_project, "validate")
    assert result.exit_code == 1
    assert "is not a persona" in result.output
