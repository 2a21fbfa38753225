"""The README's command list is generated from the commands' own help, and a test fails when
the two drift apart (as llm and sqlite-utils do). Rewrite it with ``pytest --update-goldens``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from tars.cli.app import app

README = Path(__file__).parents[2] / "README.md"
BEGIN = "<!-- commands: generated from `tars … --help` by tests/cli/test_cli_readme.py; do not edit by hand -->"
END = "<!-- end of commands -->"


def _leaves(path: tuple[str, ...], command: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    if hasattr(command, "list_commands"):
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            yield from _leaves((*path, name), command.get_command(ctx, name))
    else:
        yield path, command


def _argument(param: Any) -> str:
    name = str(param.display_name_raw).strip("[]{}.").upper()
    name += "…" if param.nargs != 1 else ""
    return name if param.required else f"[{name}]"


def command_list() -> str:
    """One line per command: its name and arguments, then the first line of its help."""
    rows = []
    for path, command in _leaves((), typer.main.get_command(app)):
        arguments = [_argument(p) for p in command.params if isinstance(p, typer.core.TyperArgument)]
        usage = " ".join(["tars", *path, *arguments])
        paragraph = " ".join((command.help or "").strip().split("\n\n")[0].split())
        first = paragraph.split(". ")[0].rstrip(".")  # its first sentence
        rows.append((usage, first))
    width = max(len(usage) for usage, _ in rows)
    lines = [f"{usage:<{width}}  {first}" for usage, first in rows]
    return "\n".join([BEGIN, "", "```text", *lines, "```", "", END])


def test_the_readme_lists_every_command_as_its_help_says(update_goldens: bool) -> None:
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "the README has lost its generated command list"
    shown = text[text.index(BEGIN) : text.index(END) + len(END)]
    wanted = command_list()
    if update_goldens:
        README.write_text(text.replace(shown, wanted), encoding="utf-8")
        return
    assert shown == wanted, "the README's command list is stale: run pytest --update-goldens"
