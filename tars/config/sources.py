"""A project's YAML files read, interpolated and checked against their schemas: the passes
before compiling. Nothing here knows what a Project is (tars.project) or how one is
compiled (tars.graph.compile); tars.loading puts the passes together."""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tars.config.diagnostics import ConfigError, Diagnostic
from tars.config.discovery import PROJECT_FILE
from tars.config.schema_files import load_schema
from tars.config.secrets import Environment, interpolate

if TYPE_CHECKING:
    from tars.config.yaml_loader import Document

Json = Any


@dataclass
class Sources:
    """The project's YAML documents after reading and interpolation, before compiling."""

    root: Path
    config: Document
    personas: dict[str, Document]
    playbooks: dict[str, Document]
    # Each document's data as parsed, before ${VAR} interpolation (what the cache stores).
    raw: dict[str, Json] = field(default_factory=dict, repr=False)

    def all(self) -> list[Document]:
        return [self.config, *self.personas.values(), *self.playbooks.values()]


def read_sources(root: Path, environment: Environment | None = None) -> Sources:
    """Pass 1 and 2: read every YAML file, resolve ``${VAR}``; raise on any problem."""
    from tars.config.yaml_loader import load_file

    environment = environment or Environment.for_project(root)
    problems: list[Diagnostic] = []
    raw: dict[str, Json] = {}

    def read(path: Path) -> Document | None:
        try:
            doc = load_file(path, str(path.relative_to(root)))
        except ConfigError as exc:
            problems.extend(exc.diagnostics)
            return None
        raw[doc.name] = doc.data  # interpolation builds new containers; this stays as parsed
        if _may_reference(doc.lines):
            problems.extend(interpolate(doc, environment))
        return doc

    config = read(root / PROJECT_FILE)
    personas = {p.stem: d for p in yaml_files(root / "personas") if (d := read(p))}
    playbooks = {p.stem: d for p in yaml_files(root / "playbooks") if (d := read(p))}
    problems.extend(_unreadable_entries(root, ("personas", "playbooks")))
    if problems or config is None:
        raise ConfigError(problems)
    return Sources(root, config, personas, playbooks, raw)


def yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _unreadable_entries(root: Path, folders: tuple[str, ...]) -> list[Diagnostic]:
    """A ``.yaml`` name in ``folders`` that is not a readable file (a symlink that loops or
    points nowhere, a folder) would be skipped without a word: each is a problem instead."""
    problems = []
    for folder in folders:
        if not (root / folder).is_dir():
            continue
        for path in sorted((root / folder).iterdir()):
            if path.suffix not in (".yaml", ".yml") or path.is_file():
                continue
            name = f"{folder}/{path.name}"
            if path.is_symlink():
                try:
                    path.resolve(strict=True)
                    why = "is a symlink to something that is not a file"
                except RuntimeError:  # Python 3.11/3.12 on a loop
                    why = "is a symlink that loops back on itself"
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        why = "is a symlink that loops back on itself"
                    else:
                        why = f"is a symlink to {os.readlink(path)}, which does not exist"
            else:
                why = "is a folder, not a YAML file"
            problems.append(
                Diagnostic(name, 0, 0, "$", f"{why}; it was not read", "file.unreadable", hint="fix or remove it")
            )
    return problems


def check_schemas(sources: Sources) -> list[Diagnostic]:
    """Pass 3: JSON Schema for every document."""
    from tars.config.schema import validate_document

    problems = validate_document(sources.config, "tars")
    for doc in sources.personas.values():
        problems += validate_document(doc, "persona")
    for doc in sources.playbooks.values():
        problems += validate_document(doc, "playbook")
    return problems


def _may_reference(lines: list[str]) -> bool:
    """Whether a file could hold a ``${VAR}`` reference: only one with a '$' (or a backslash
    escape, which could spell one) below its opening comments (``# yaml-language-server:
    $schema=…``). The others are not walked: a big project is mostly such playbooks."""
    body = itertools.dropwhile(lambda line: not line.strip() or line.lstrip().startswith("#"), lines)
    return any("$" in line or "\\" in line for line in body)


def apply_defaults(data: Json, schema: Mapping[str, Json]) -> Json:
    """Fill ``default`` values from the schema into plain nested objects (not into oneOf)."""
    if not isinstance(data, dict):
        return data
    props = schema.get("properties", {})
    out = dict(data)
    for key, sub in props.items():
        sub = _deref(sub)
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if key in out and isinstance(out[key], dict):
            out[key] = apply_defaults(out[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in out.items():
            if key not in props:
                out[key] = apply_defaults(value, _deref(extra))
    return out


def _deref(schema: Mapping[str, Json]) -> Mapping[str, Json]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        merged = dict(load_schema("tars")["$defs"][ref.removeprefix("#/$defs/")])
        merged.update({k: v for k, v in schema.items() if k != "$ref"})
        return merged
    return schema
