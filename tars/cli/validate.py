"""``tars validate``: every problem in the project, in one pass, best first."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tars.cli import context, errors, output

if TYPE_CHECKING:
    from tars.config.diagnostics import Diagnostic
    from tars.project import Project


def validate(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files that changed (as pre-commit passes them); the whole project they belong to is checked.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print problems as a JSON list of objects.")] = False,
    scenarios: Annotated[
        bool,
        typer.Option(
            "--scenarios/--no-scenarios",
            help="Also check each playbook's scenarios (playbooks/scenarios/PLAYBOOK/*.yaml) as `tars test` would.",
        ),
    ] = True,
) -> None:
    """Check tars.yaml, personas/ and playbooks/: YAML, schemas and cross-references."""
    from tars.config.diagnostics import ConfigError
    from tars.config.discovery import find_root
    from tars.loading import load_project

    state = context._state(ctx)
    # Each file names the project it belongs to; a commit may touch more than one.
    starts: list[Path | None] = list(dict.fromkeys(f.resolve().parent for f in files)) if files else [None]
    problems: list[Diagnostic] = []
    roots: list[Path] = []
    for start in starts:
        try:
            root = find_root(state.get("project"), start)
        except ConfigError as exc:
            problems.extend(exc.diagnostics)
            continue
        if root not in roots:
            roots.append(root)
    state["root"] = roots[0] if len(roots) == 1 else None

    valid: list[tuple[Path, Project]] = []
    for root in roots:
        try:
            project = load_project(root)
        except ConfigError as exc:
            problems.extend(_named(exc.diagnostics, root, several=len(roots) > 1))
            continue
        found = _scenario_problems(project) if scenarios else []
        problems.extend(_named(found, root, several=len(roots) > 1))
        if not found:
            valid.append((root, project))

    if as_json:
        output.print_json([d.to_json() for d in problems])
    elif problems:
        output.show_diagnostics(problems, state["root"])
    else:
        for root, project in valid:
            output.line(
                f"[green]✓[/] {output.escape(str(root))} is valid: persona '{project.persona.key}', "
                f"{len(project.playbooks)} playbooks, {len(project.roles)} roles, {len(project.tools)} tools"
            )
    if problems:
        raise typer.Exit(errors.USER_ERROR)


def _scenario_problems(project: Project) -> list[Diagnostic]:
    """What `tars test` would refuse in the playbooks' scenarios, found now instead."""
    from tars.config.diagnostics import ConfigError
    from tars.scenarios.playbook_scenarios import load, suites

    try:
        load(project, suites(project))
    except ConfigError as exc:
        return list(exc.diagnostics)
    return []


def _named(diagnostics: list[Diagnostic], root: Path, *, several: bool) -> list[Diagnostic]:
    """With several projects, name files from the current folder so they are told apart."""
    if not several:
        return list(diagnostics)
    return [replace(d, file=os.path.relpath(root / d.file)) for d in diagnostics]


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
