"""The one way a project is loaded: find it, read every file, resolve ``${VAR}``, check the
schemas, compile — or take an unchanged project from the cache. The CLI, the server and the
file watcher all call ``load_project``; nothing else reads YAML into a Project.

The passes stop after the first that found problems (a schema error is not compiled), but
cross-references of the files that passed are still reported, so one typo does not hide
another file's mistakes.
"""

from __future__ import annotations

from pathlib import Path

from tars.config.diagnostics import ConfigError
from tars.config.discovery import find_root, state_dir
from tars.config.secrets import Environment
from tars.config.sources import Sources, check_schemas, read_sources
from tars.graph.compile import compile_project, cross_references
from tars.project import Project
from tars.project_cache import load_cached


def load_project(
    root: Path | None = None,
    *,
    environment: Environment | None = None,
    start: Path | None = None,
    cache: bool = False,
) -> Project:
    """Find, read, check and compile a project, or raise ConfigError with every problem.

    With ``cache=True`` an unchanged project comes from the compiled-project cache in the
    state folder (see tars.project_cache) instead; the result is the same. ``tars validate``
    never uses the cache: it is the checker.
    """
    root = find_root(root, start)
    if cache:
        return load_cached(root, environment, compile_sources)
    return compile_sources(root, environment)[0]


def compile_sources(root: Path, environment: Environment | None = None) -> tuple[Project, Sources]:
    """The full load of the project at ``root``: read, interpolate, check schemas, compile."""
    sources = read_sources(root, environment)
    problems = check_schemas(sources)
    if problems:
        raise ConfigError(problems + cross_references(sources, {p.file for p in problems}))
    return compile_project(sources, state_dir(root)), sources
