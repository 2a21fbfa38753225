"""What the CLI shows people: consoles, diagnostics with the offending line, masking.

rich is imported on first use, not with this module: ``out`` and ``err`` are made when a
command first asks for one, and ``line`` prints a line of markup without rich at all
where rich would print the bare text (not a terminal: a pipe, a file, a test runner).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from tars.config.diagnostics import Diagnostic
from tars.config.secrets import MASK

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    out: Console
    err: Console

__all__ = [
    "console",
    "err",
    "escape",
    "line",
    "listed",
    "out",
    "print_json",
    "reset_consoles",
    "show_diagnostics",
    "table",
]

T = TypeVar("T")


def console(file: TextIO | None = None, *, stderr: bool = False) -> Console:
    """A console that prints what it is given: no emoji codes (``:100:`` in ``tars.yaml:100:19``
    must stay text), no guessed highlighting, no wrapping of long paths, NO_COLOR respected."""
    from rich.console import Console

    return Console(
        file=file,
        stderr=stderr,
        highlight=False,
        emoji=False,
        soft_wrap=True,
        no_color="NO_COLOR" in os.environ or None,
    )


_consoles: dict[str, Console] = {}


def __getattr__(name: str) -> Any:
    """``out`` and ``err``: made on first use, on the sys.stdout/sys.stderr of that moment."""
    if name in ("out", "err"):
        made = _consoles.get(name)
        if made is None:
            made = _consoles[name] = console(sys.stdout if name == "out" else sys.stderr)
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reset_consoles() -> None:
    """Forget the consoles: the next use makes them on the current sys.stdout/sys.stderr (the
    test runner swaps them)."""
    _consoles.clear()


# rich.markup's own pattern and escaping, so escaped text means the same to both printers.
_TAGS = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")


#: Terminal control characters (C0 but newline and tab, DEL, C1): an escape sequence in a
#: contact's name must not recolour, retitle or rewrite the owner's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with terminal control characters shown as ``\\x1b``-style escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def escape(markup: str, _escape: Callable[..., str] = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])").sub) -> str:
    """Escape text so that it is not read as markup (``rich.markup.escape``, without rich),
    and so that no terminal control character in it reaches the terminal (``visible``)."""
    markup = visible(markup)

    def escape_backslashes(match: re.Match[str]) -> str:
        backslashes, text = match.groups()
        return f"{backslashes}{backslashes}\\{text}"

    markup = _escape(escape_backslashes, markup)
    if markup.endswith("\\") and not markup.endswith("\\\\"):
        return markup + "\\"
    return markup


_SIMPLE_STYLES = frozenset({"bold", "dim", "italic", "underline", "red", "green", "yellow", "blue", "cyan", "magenta"})


def line(markup: str, *, stderr: bool = False) -> None:
    """Print one line of console markup, exactly as ``out.print`` (``err.print``) would.

    Where rich would print the bare text (the stream is not a terminal), the markup is
    taken off here and rich is never imported; anything unusual (control characters,
    trailing blanks, markup rich might refuse) goes to rich as it is."""
    stream = sys.stderr if stderr else sys.stdout
    text = None if _terminal(stream) else _bare(markup)
    if text is None:
        (__getattr__("err") if stderr else __getattr__("out")).print(markup)
    else:
        stream.write(text + "\n")
        stream.flush()


def _terminal(stream: TextIO) -> bool:
    """Whether rich would treat ``stream`` as a terminal (and style what it prints)."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _bare(markup: str) -> str | None:
    """The text of ``markup`` as rich prints it without styles, or None if unsure."""
    if markup != markup.rstrip() or any(c < " " for c in markup):
        return None
    parts: list[str] = []
    opened: list[str] = []
    position = 0
    for match in _TAGS.finditer(markup):
        whole, escapes, tag = match.groups()
        start, end = match.span()
        parts.append(markup[position:start].replace("\\[", "["))
        position = end
        backslashes, escaped = divmod(len(escapes), 2)
        parts.append("\\" * backslashes)
        if escaped:
            parts.append(whole[len(escapes) :])
            continue
        name = tag.partition("=")[0]
        if name.startswith("@"):
            return None
        if name.startswith("/"):
            closing = name[1:].strip()
            # rich matches a named close by its normalised style: trust only names that are
            # their own normal form.
            if not opened or (closing and (closing not in _SIMPLE_STYLES or closing not in opened)):
                return None
            opened.remove(closing) if closing else opened.pop()
        else:
            opened.append(name)
    parts.append(markup[position:].replace("\\[", "["))
    return "".join(parts)


def show_diagnostics(diagnostics: Sequence[Diagnostic], root: Path | None, console: Console | None = None) -> None:
    """Each diagnostic as ``file:line:col  $.path  message``, the source line and a caret under it."""
    console = console or __getattr__("out")
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
    __getattr__("out").print_json(json.dumps(value, default=str), highlight=False)


def listed(items: Sequence[T], as_json: bool, to_json: Callable[[T], object], empty: str) -> bool:
    """How every ``list`` command starts: the items as a JSON list for scripts, or ``empty``
    (a line, markup allowed) when there are none. True when that said it all; else the
    caller prints its table (see ``table``)."""
    if as_json:
        print_json([to_json(item) for item in items])
        return True
    if not items:
        line(empty)
        return True
    return False


def table(*headers: str, caption: str | None = None) -> Table:
    """A borderless table, as every listing prints them; ``caption`` goes under it, on the left."""
    from rich.table import Table

    return Table(*headers, box=None, pad_edge=False, caption=caption, caption_justify="left")
