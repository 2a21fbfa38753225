"""``${VAR}`` references: secrets come from the environment or a ``.env`` file, never YAML.

Supported forms (the shell's and docker compose's, so nothing new to learn):

* ``${VAR}``            the variable's value; unset is an error naming the variable
* ``${VAR:-default}``   the default when the variable is unset or empty
* ``${VAR-default}``    the default when the variable is unset
* ``${VAR:?message}``   unset or empty is an error carrying your message
* ``$${VAR}``           a literal ``${VAR}``

Values that came from a reference are ``FromEnv`` strings, so later passes know a value
was not written in the file (a secret field must be one), and every resolved secret can
be masked wherever text is shown or logged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tars.config.diagnostics import Diagnostic

if TYPE_CHECKING:
    from tars.config.yaml_loader import Document

_REFERENCE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}")
_BROKEN = re.compile(r"\$\{(?![A-Za-z_][A-Za-z0-9_]*(?:(?::-|-|:\?|\?)[^}]*)?\})")

MASK = "••••••"


class FromEnv(str):
    """A string whose value came from ``${VAR}`` references; ``variables`` names them."""

    variables: tuple[str, ...]

    def __new__(cls, value: str, variables: tuple[str, ...]) -> FromEnv:
        self = super().__new__(cls, value)
        self.variables = variables
        return self


def read_dotenv(path: Path) -> dict[str, str]:
    """Variables from a ``.env`` file (python-dotenv's parser), or nothing if absent."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


class Environment:
    """Where ``${VAR}`` values come from: the process environment first, then ``.env``."""

    def __init__(self, dotenv: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None):
        self.dotenv = dict(dotenv or {})
        self.env = os.environ if env is None else env

    @classmethod
    def for_project(cls, root: Path) -> Environment:
        return cls(read_dotenv(root / ".env"))

    def get(self, name: str) -> str | None:
        value = self.env.get(name)
        return value if value is not None else self.dotenv.get(name)


def interpolate(doc: Document, environment: Environment) -> list[Diagnostic]:
    """Resolve every reference in ``doc.data`` in place; return problems found."""
    problems: list[Diagnostic] = []

    def resolve(value: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(value, dict):
            return {k: resolve(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "$" not in value:
            return value
        broken = _BROKEN.search(value.replace("$$", "  "))  # $${ is a literal, not a reference
        if broken:
            problems.append(doc.diagnostic(path, _malformed(value, broken.start()), code="env.syntax"))
            return value
        used: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
            used.append(name)
            shown = name if len(name) <= 64 else name[:61] + "..."  # echoed in messages: never whole
            current = environment.get(name)
            if op == ":-" and not current:
                return arg
            if op == "-" and current is None:
                return arg
            if op in (":?", "?") and (current is None or (op == ":?" and not current)):
                state = "is not set" if current is None else "is empty"
                detail = f": {arg}" if arg else f"; export it or add '{shown}=…' to .env beside tars.yaml"
                problems.append(
                    doc.diagnostic(path, f"environment variable {shown} {state}{detail}", code="env.missing")
                )
                return ""
            if current is None:
                problems.append(
                    doc.diagnostic(
                        path,
                        f"environment variable {shown} is not set; "
                        f"export it or add '{shown}=…' to .env beside tars.yaml",
                        code="env.missing",
                    )
                )
                return ""
            return current

        resolved = _REFERENCE.sub(substitute, value)
        return FromEnv(resolved, tuple(used)) if used else resolved

    doc.data = resolve(doc.data, ())
    return problems


def _malformed(value: str, start: int) -> str:
    """Say what is wrong with the reference starting at ``start`` and how to write it."""
    fragment = value[start:].split()[0] if value[start:].strip() else "${"
    if len(fragment) > 40:
        fragment = fragment[:37] + "..."
    if "}" not in value[start:]:
        problem = "its closing '}' is missing"
    else:
        problem = "a name is letters, digits and underscores, not starting with a digit"
    return (
        f"'{fragment}' is not a valid reference: {problem}; write ${{NAME}}, "
        "${NAME:-default} or ${NAME:?message} (and $$ for a literal dollar sign)"
    )


def mask_text(text: str, secrets: frozenset[str] | set[str]) -> str:
    """Replace every secret value in ``text`` by a mask (longest first).

    A short secret (under 4 characters) is masked where it stands on its own, not inside
    longer words and numbers: masking every "7" would blind the output and, by the gaps,
    give the secret away all the same."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
        elif secret:
            text = re.sub(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", MASK, text)
    return text
