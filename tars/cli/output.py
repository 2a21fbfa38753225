"""What the CLI shows people: consoles, diagnostics with the offending line, masking."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.markup import escape

__all__ = ["console", "err", "escape", "out", "print_json", "reset_consoles", "show_diagnostics"]

from tars.config.diagnostics import Diagnostic
from tars.config.secrets import MASK


def console(file: TextIO | None = None, *, stderr: bool = False) -> Console:
    """A console that prints what it is given: no emoji codes (``:100:`` in ``tars.yaml:100:19``
    must stay text), no guessed highlighting, no wrapping of long paths, NO_COLOR respected."""
    return Console(
        file=file,
        stderr=stderr,
        highlight=False,
        emoji=False,
        soft_wrap=True,
        no_color="NO_COLOR" in os.environ or None,
    )


out = console()
err = console(stderr=True)


def reset_consoles() -> None:
    """Re-bind consoles to the current sys.stdout/sys.stderr (the test runner swaps them)."""
    global out, err
    out = console(sys.stdout)
    err = console(sys.stderr)


def show_diagnostics(diagnostics: Sequence[Diagnostic], root: Path | None, console: Console | None = None) -> None:
    """Each diagnostic as ``file:line:col  $.path  message``, the source line and a caret under it."""
    console = console or out
    cache: dict[str, list[str]] = {}
    for d in diagnostics:
        console.print(f"[bold red]{escape(d.render())}[/]")
        lines = _lines(d.file, root, cache)
        if d.line and 0 < d.line <= len(lines):
            source, caret = _excerpt(lines[d.line - 1], max(d.col, 1), d.code == "schema.secret")
            gutter = f"{d.line:>5} | "
            console.print(f"[dim]{escape(gutter)}[/]{escape(source)}")
            console.print(" " * (len(gutter) - 2) + "[dim]|[/] " + " " * (caret - 1) + "[red]^[/]")
    files = len({d.file for d in diagnostics if not d.code.startswith("project.")})  # not folders
    noun = "error" if len(diagnostics) == 1 else "errors"
    where = f" in {files} {'file' if files == 1 else 'files'}" if files else ""
    console.print(f"[red]✗ {len(diagnostics)} {noun}{where}[/]")


def _excerpt(line: str, col: int, secret: bool, width: int = 160) -> tuple[str, int]:
    """The source line as shown (a secret masked, long lines cut around ``col``) and the caret column."""
    line = line.expandtabs(1)  # one column per tab, so the caret stays under the right character
    if secret:
        line = line[: col - 1] + MASK
    if len(line) <= width:
        return line, col
    start = max(0, col - width // 2)
    end = min(len(line), start + width)
    start = max(0, end - width)
    prefix = "..." if start else ""
    suffix = "..." if end < len(line) else ""
    return prefix + line[start:end] + suffix, col - start + len(prefix)


def _lines(file: str, root: Path | None, cache: dict[str, list[str]]) -> list[str]:
    if file not in cache:
        path = Path(file) if root is None or Path(file).is_absolute() else root / file
        try:
            raw = path.read_bytes() if path.is_file() and path.stat().st_size < 1024 * 1024 else b""
            text = raw.decode("utf-8-sig", errors="replace")
            cache[file] = text.splitlines() if b"\x00" not in raw else []
        except OSError:
            cache[file] = []
    return cache[file]


def print_json(value: object) -> None:
    out.print_json(json.dumps(value, default=str), highlight=False)
