"""Diagnostics: one mistake in the user's YAML, located by file, line, column and JSON path.

Every pass (YAML syntax, environment interpolation, JSON Schema, graph compile) reports
in this one shape so people and machines read the same thing:

    playbooks/x.yaml:14:7  $.steps[2].next  'confirmm' is not a step; did you mean 'confirm'?
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

JsonPath = tuple[str | int, ...]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(path: JsonPath) -> str:
    """Render a path as JSONPath: ``("steps", 2, "next")`` → ``$.steps[2].next``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


def did_you_mean(word: object, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``word``, if one is close enough to be a likely typo."""
    if not isinstance(word, str):
        return None
    pool = [c for c in candidates if isinstance(c, str)]
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return lowered[word.lower()]
    match = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return match[0] if match else None


def suggestion(word: object, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` or an empty string."""
    best = did_you_mean(word, candidates)
    return f"; did you mean '{best}'?" if best else ""


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in the project, pointing at the YAML that causes it."""

    file: str
    line: int
    col: int
    path: str = "$"
    message: str = ""
    code: str = field(default="error", compare=False)
    hint: str | None = field(default=None, compare=False)

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}  {self.path}  {self.message}"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class ConfigError(Exception):
    """Raised when a project is not valid; carries every diagnostic found in one pass."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = sorted(set(diagnostics))
        super().__init__("\n".join(d.render() for d in self.diagnostics))
