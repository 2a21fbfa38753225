"""``tars graph``: the compiled project as a tree, Mermaid, Graphviz DOT or JSON."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from tars.cli import context, output
from tars.errors import UserError


class Format(StrEnum):
    tree = "tree"
    mermaid = "mermaid"
    dot = "dot"
    json = "json"


def graph(
    ctx: typer.Context,
    playbook: Annotated[str | None, typer.Argument(help="Show only this playbook.", show_default=False)] = None,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="tree (terminal), mermaid or dot (docs), json (node-link).")
    ] = Format.tree,
) -> None:
    """Show how playbooks, steps, roles and tools connect."""
    from tars.config.diagnostics import suggestion
    from tars.graph import render

    project = context.load(ctx)
    if playbook is not None and playbook not in project.playbooks:
        raise UserError(
            f"'{playbook}' is not a playbook{suggestion(playbook, project.playbooks)}",
            f"Playbooks: {', '.join(sorted(project.playbooks))}",
        )
    if fmt is Format.tree:
        console = output.out
        if not console.is_terminal:  # piped: never crop lines to 80 columns
            from rich.console import Console

            console = Console(file=console.file, width=240, no_color=console.no_color, highlight=False, emoji=False)
        console.print(render.tree(project, playbook))
        return
    text = {Format.mermaid: render.mermaid, Format.dot: render.dot, Format.json: render.node_link}[fmt](
        project, playbook
    )
    output.out.print(text, end="", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("graph")(graph)
