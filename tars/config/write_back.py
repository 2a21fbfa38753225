"""Changing one value in a YAML file the way a person would: comments, key order, quoting and
layout kept, only the changed line differs (ruamel.yaml's round-trip mode).

ruamel.yaml rather than our own line editing: it is the well-kept round-trip YAML library,
and it knows block scalars, flow mappings and comments far better than a regex could.
The text it writes is parsed back and compared with what was meant (the old data with the
one value changed), so a file that ruamel would re-shape in a way that changes meaning is
refused, never written. The write is atomic (a temporary file renamed over the original,
its mode kept): a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tars.errors import UserError


class WriteBackError(UserError):
    """The file could not be changed as asked; it is untouched."""


@dataclass(frozen=True)
class Edited:
    path: Path
    keys: tuple[str, ...]
    old: Any  # None when the key was absent (its default applied)
    new: Any
    text: str  # the file's new text, as written


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line the person wrote on one
    yaml.indent(mapping=2, sequence=4, offset=2)  # the layout of TARS's own files
    return yaml


def set_value(path: Path, keys: Sequence[str], value: Any, *, insert_after: Sequence[str] = ()) -> Edited:
    """Set ``keys`` (a path of mapping keys) to ``value`` in the YAML file at ``path``.

    A key that is not there yet is added after the first of ``insert_after`` that exists in
    its mapping (else at its end). Raises WriteBackError, the file untouched, when the file
    cannot be read or written or its shape does not allow the change."""
    from ruamel.yaml.error import YAMLError

    keys = tuple(keys)
    try:
        original = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WriteBackError(f"cannot read {path}: {exc.strerror or exc}") from exc
    yaml = _yaml()
    try:
        data = yaml.load(original)
        expected = _plain(yaml.load(original))
    except YAMLError as exc:
        raise WriteBackError(f"{path} is not valid YAML; fix it first ({exc})".replace("\n", " ")) from exc
    parent = data
    for key in keys[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            raise WriteBackError(f"{path} has no mapping at {'.'.join(keys[:-1])}; cannot set {'.'.join(keys)}")
    if not isinstance(parent, dict):
        raise WriteBackError(f"{path} does not hold a mapping; cannot set {'.'.join(keys)}")
    last = keys[-1]
    old = parent.get(last)
    if last in parent:
        parent[last] = _like(old, value)
    else:
        anchor = next((k for k in insert_after if k in parent), None)
        position = list(parent).index(anchor) + 1 if anchor is not None else len(parent)
        parent.insert(position, last, value)

    out = io.StringIO()
    yaml.dump(data, out)
    text = out.getvalue()
    target = expected
    for key in keys[:-1]:
        target = target[key]
    target[last] = value
    if _plain(_yaml().load(text)) != expected:
        where = ".".join(keys)
        raise WriteBackError(f"{path} could not be changed without changing more than {where}; edit it by hand")
    _replace(path, text)
    return Edited(path, keys, old, value, text)


def _like(old: Any, value: Any) -> Any:
    """``value`` in the style ``old`` was written in (a quoted string stays quoted)."""
    from ruamel.yaml.scalarstring import ScalarString

    if isinstance(old, ScalarString) and isinstance(value, str):
        return type(old)(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        mode = path.stat().st_mode & 0o777
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise WriteBackError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)
