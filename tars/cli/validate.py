"""``tars validate``: every problem in the project, in one pass, best first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tars.cli import context, errors, output


def validate(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Files that changed (as pre-commit passes them); the whole project they belong to is checked.",
                       show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print problems as a JSON list of objects.")] = False,
) -> None:
    """Check tars.yaml, personas/ and playbooks/: YAML, schemas and cross-references."""
    from tars.config.diagnostics import ConfigError

    start = files[0].resolve().parent if files else None
    try:
        root = context.project_root(ctx, start)
        project = context.load(ctx)
    except ConfigError as exc:
        if as_json:
            output.print_json([d.to_json() for d in exc.diagnostics])
        else:
            output.show_diagnostics(exc.diagnostics, context._state(ctx).get("root"))
        raise typer.Exit(errors.USER_ERROR) from None
    if as_json:
        output.print_json([])
        return
    output.out.print(
        f"[green]✓[/] {root} is valid: persona '{project.persona.key}', "
        f"{len(project.playbooks)} playbooks, {len(project.roles)} roles, {len(project.tools)} tools"
    )
