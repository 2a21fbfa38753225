"""Finding the project (the folder with tars.yaml) and its state folder."""

from __future__ import annotations

import os
from pathlib import Path

from tars.config.diagnostics import ConfigError, Diagnostic

PROJECT_FILE = "tars.yaml"
# Folders inside a project whose files may be called tars.yaml too (the persona "tars").
_INNER_FOLDERS = ("personas", "playbooks")


def _project_of(folder: Path) -> Path | None:
    """``folder`` if it holds a project's tars.yaml (not a persona's), its project if inner."""
    if folder.name in _INNER_FOLDERS and (folder.parent / PROJECT_FILE).is_file():
        return folder.parent
    return folder if (folder / PROJECT_FILE).is_file() else None


def find_root(explicit: Path | None = None, start: Path | None = None) -> Path:
    """``--project DIR``, else ``$TARS_PROJECT``, else the nearest folder upwards with tars.yaml."""
    chosen = explicit or (Path(os.environ["TARS_PROJECT"]) if os.environ.get("TARS_PROJECT") else None)
    if chosen is not None:
        chosen = chosen.expanduser()
        if chosen.is_file() and chosen.name == PROJECT_FILE:
            chosen = chosen.parent
        found = _project_of(chosen.resolve()) if chosen.is_dir() else None
        if found is not None:
            return found
        source = "--project" if explicit else "TARS_PROJECT"
        problem = f"no {PROJECT_FILE} in this folder" if chosen.exists() else "no such folder"
        raise ConfigError(
            [
                Diagnostic(
                    str(chosen),
                    0,
                    0,
                    "$",
                    f"{problem} (from {source}); create a project there with `tars init DIR`",
                    "project.missing",
                )
            ]
        )
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        found = _project_of(folder)
        if found is not None:
            return found
    raise ConfigError(
        [
            Diagnostic(
                str(here),
                0,
                0,
                "$",
                f"no {PROJECT_FILE} here or in any parent folder; "
                "run inside a TARS project, pass --project DIR, set TARS_PROJECT, "
                "or create one with `tars init DIR`",
                "project.missing",
            )
        ]
    )


def state_dir(root: Path) -> Path:
    """Where the database, logs and recordings live: ``$TARS_HOME`` or ``.tars/`` beside tars.yaml."""
    home = os.environ.get("TARS_HOME")
    return Path(home).expanduser().resolve() if home else root / ".tars"
