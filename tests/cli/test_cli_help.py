"""Every command explains itself: `--help` works and says something, all the way down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer

from tars import __version__
from tars.cli.app import app


def _commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group in the tree, discovered (the root's are loaded lazily, so
    through ``list_commands``/``get_command`` rather than ``.commands``)."""
    root = typer.main.get_command(app)

    def walk(path: tuple[str, ...], command: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, command
        if hasattr(command, "list_commands"):
            ctx = typer.Context(command)
            for name in sorted(command.list_commands(ctx)):
                yield from walk((*path, name), command.get_command(ctx, name))

    yield from walk((), root)


COMMANDS = dict(_commands())


def test_version(tars: Any) -> None:
    result = tars("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"tars {__version__}"


def test_the_tree_has_the_core_commands() -> None:
    assert {("validate",), ("init",), ("config",), ("config", "show")} <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(p) or "tars")
def test_every_command_has_help(path: tuple[str, ...], tars: Any) -> None:
    command = COMMANDS[path]
    assert (command.help or "").strip(), f"`tars {' '.join(path)}` has no help text"
    for param in command.params:
        if param.name in ("help",):
            continue
        text = getattr(param, "help", None)
        assert text and text.strip(), f"`tars {' '.join(path)}`: {param.name} has no help text"

    result = tars(*path, "--help")
    assert result.exit_code == 0, result.output
    first_line = command.help.strip().splitlines()[0]
    assert " ".join(first_line.split()[:4]) in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_short_help_option(tars: Any) -> None:
    assert tars("-h").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [["frobnicate"], ["validate", "--bogus"], ["init", "a", "b"], ["config", "show", "--nope"]],
    ids=" ".join,
)
def test_usage_errors_exit_2(args: list[str], tars: Any) -> None:
    result = tars(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(p) or "tars")
def test_help_names_values_in_words_not_python_types(path: tuple[str, ...], tars: Any) -> None:
    """TEXT, INTEGER, PATH…, nothing for a flag: never ``<bool>``, ``<list[Path]>`` or ``[default: default]``."""
    import re

    shown = tars(*path, "--help", env={"COLUMNS": "200"}).output
    assert not re.search(r"<(str|bool|int|float|Path|list\[[^]]*\]|int range)>", shown), shown
    assert "[default: default]" not in shown
