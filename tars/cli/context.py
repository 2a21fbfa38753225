"""Shared plumbing for commands: finding and loading the project once per invocation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tars.errors import UserError

if TYPE_CHECKING:
    from tars.project import Project


def _state(ctx: typer.Context) -> dict[str, Any]:
    root_ctx = ctx.find_root()
    if not isinstance(root_ctx.obj, dict):
        root_ctx.obj = {"project": None, "root": None}
    return root_ctx.obj


def project_root(ctx: typer.Context, start: Path | None = None) -> Path:
    from tars.config.discovery import find_root

    state = _state(ctx)
    root = find_root(state.get("project"), start)
    state["root"] = root
    return root


def load(ctx: typer.Context, start: Path | None = None) -> Project:
    """The validated project, loaded once; a ConfigError reaches the error boundary.

    An unchanged project comes from the compiled-project cache (tars.project_cache): the
    same Project, without parsing YAML, checking JSON Schema or importing networkx.
    ``tars validate`` does not come through here; it always checks everything.
    """
    from tars.loading import load_project

    state = _state(ctx)
    if state.get("loaded") is None:
        root = project_root(ctx, start)
        state["loaded"] = load_project(root, cache=True)
    return state["loaded"]


def parse_vars(pairs: list[str]) -> dict[str, str]:
    """``--var key=value`` options as a mapping (playbook inputs)."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--var {pair!r} is not key=value", "e.g. --var preferred_day=Wednesday")
        values[key.strip()] = value.strip()
    return values
