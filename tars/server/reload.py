"""``tars serve`` follows the YAML: a saved edit to tars.yaml, personas/ or playbooks/ is
loaded, checked and compiled the one way every command does it (tars.loading); on success
new calls use it at once, with no restart (live calls keep the configuration they started
with); an edit that does not load is logged in the usual ``file:line:col`` form and the
server keeps serving the last good configuration.

``watchfiles`` (Rust's notify underneath) rather than polling stat() ourselves: it is well
kept, debounces an editor's write-rename-chmod into one change, and falls back to polling
where the platform has no file events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, awatch

from tars.config.diagnostics import ConfigError
from tars.config.discovery import PROJECT_FILE
from tars.loading import load_project
from tars.project import Project

log = logging.getLogger("tars.reload")

FOLDERS = ("personas", "playbooks")
#: An editor's save (write, rename, chmod) arrives as one change within this many ms.
DEBOUNCE_MS = 400


def watched(root: Path, change: tuple[Change, str]) -> bool:
    """Whether a changed path is one a project load reads (not an editor's swap file)."""
    path = Path(change[1])
    if path.parent == root and path.name in (PROJECT_FILE, ".env"):
        return True
    if path.name.startswith("."):
        return False
    return path.parent.name in FOLDERS and path.parent.parent == root and path.suffix in (".yaml", ".yml")


async def follow(
    root: Path,
    current: Callable[[], Project],
    use: Callable[[Project], None],
    stop: asyncio.Event,
    *,
    loaded: Callable[[Project | None], None] = lambda _project: None,
) -> None:
    """Until ``stop`` is set: on every saved change, load the project and hand it to ``use``.

    ``loaded`` is told the outcome of each attempt (the new project, or None when the edit
    did not load): tests wait on it instead of on the clock."""
    paths = [root, *(root / f for f in FOLDERS if (root / f).is_dir())]
    async for changes in awatch(
        *paths, stop_event=stop, recursive=False, watch_filter=lambda c, p: watched(root, (c, p))
    ):
        names = sorted({str(Path(p).relative_to(root)) for _, p in changes})
        try:
            project = await asyncio.to_thread(load_project, root)
        except ConfigError as exc:
            for problem in exc.diagnostics:
                log.error("%s", problem.render())
            log.error("%s did not load; still serving the last good configuration", ", ".join(names))
            loaded(None)
            continue
        except Exception:  # never let the watcher die with the server still serving
            log.exception(
                "reloading after a change to %s failed; still serving the last good configuration", ", ".join(names)
            )
            loaded(None)
            continue
        before = current()
        use(project)
        log.info("reloaded after a change to %s: new calls use it (persona %s)", ", ".join(names), project.persona.key)
        if project.persona != before.persona:
            log.info("persona now %s", _describe(project))
        loaded(project)


def _describe(project: Project) -> str:
    p = project.persona
    return f"{p.name}: humour {p.humor}, honesty {p.honesty}, {p.verbosity}, {p.style}, voice {p.voice or 'default'}"
