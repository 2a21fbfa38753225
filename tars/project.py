"""The Project: everything in the YAML files, validated, compiled and frozen.

Commands, the server and the call runtime receive a ``Project`` and nothing else: nobody
re-reads YAML or trusts an unchecked dict. ``load_project`` runs the passes in order —
read each file, resolve ``${VAR}`` references, check JSON Schema, compile the graph — and
stops after the first pass that found problems, so one typo does not cascade.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tars.config.diagnostics import ConfigError, Diagnostic
from tars.config.discovery import PROJECT_FILE, find_root, state_dir
from tars.config.schema_files import load_schema
from tars.config.secrets import Environment, FromEnv, interpolate

if TYPE_CHECKING:
    import networkx as nx

    from tars.config.yaml_loader import Document

# Kept light on purpose: a project loaded from the cache (tars.config.cache) must not import
# jsonschema or networkx (nor the YAML parser). Validation (tars.config.schema), the parser
# and the graph come in when used.

Json = Any


def freeze(value: Json) -> Json:
    """Deep read-only copy: mappings become MappingProxyType, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, FromEnv):
        return str(value)
    return value


def thaw(value: Json) -> Json:
    """Plain dicts and lists again (for JSON output and JSON Schema validators)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Owner:
    name: str
    phone: str
    timezone: str
    region: str
    email: str | None = None
    pin: str | None = field(default=None, repr=False)
    require_pin: bool = False


@dataclass(frozen=True)
class Persona:
    key: str
    name: str
    language: str
    greetings: Mapping[str, str]
    voice: str | None = None
    nationality: str | None = None
    style: str = "professional"
    humor: int = 30
    honesty: int = 90
    verbosity: str = "brief"
    address_owner_as: str = "sir"
    style_notes: str = ""


@dataclass(frozen=True)
class Role:
    name: str
    tools: tuple[str, ...]
    description: str = ""
    pin: bool = False
    #: The playbooks it may start with make_goal_call; None: all of them.
    playbooks: tuple[str, ...] | None = None
    #: Memory across calls: how many past calls with them to recall (0: none), in at most this many characters.
    memory_calls: int = 0
    memory_chars: int = 600

    def may_start(self, playbook: str) -> bool:
        return self.playbooks is None or playbook in self.playbooks


@dataclass(frozen=True)
class Webhook:
    url: str
    method: str = "POST"
    secret: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout_seconds: float = 10
    retries: int = 2


@dataclass(frozen=True)
class Tool:
    name: str
    kind: str  # "builtin" or "webhook"
    description: str
    parameters: Mapping[str, Json]
    needs: tuple[str, ...] = ()
    timeout_seconds: float = 10
    webhook: Webhook | None = None


@dataclass(frozen=True)
class Input:
    name: str
    type: str = "string"
    description: str = ""
    required: bool = False
    default: Json = None
    enum: tuple[Json, ...] | None = None


@dataclass(frozen=True)
class Transition:
    """One way out of a step. ``to`` is a step id or ``end``.

    ``kind`` is ``always`` (unconditional), ``case`` (when outcome ``field`` equals
    ``value``), ``default`` (no case matched) or ``choice`` (the model picks, ``when`` says when).
    """

    to: str
    kind: str
    field: str | None = None
    value: Json = None
    when: str | None = None


@dataclass(frozen=True)
class Step:
    id: str
    instructions: str
    tools: tuple[str, ...]
    transitions: tuple[Transition, ...]


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    backoff_minutes: float = 30


@dataclass(frozen=True)
class Playbook:
    name: str
    file: str
    description: str
    goal: str
    role: str
    tools: tuple[str, ...]
    inputs: Mapping[str, Input]
    steps: tuple[Step, ...]
    outcome_schema: Mapping[str, Json]
    success_field: str | None = None
    success_values: tuple[Json, ...] = ()
    voicemail_action: str = "hang_up"
    voicemail_message: str | None = None
    voicemail_retry: RetryPolicy = RetryPolicy(retries=0)
    no_answer: RetryPolicy = RetryPolicy()
    busy: RetryPolicy = RetryPolicy()
    calling_window: Json = "any"
    max_duration_minutes: int = 10
    silence_nudge_after_seconds: int = 8
    silence_end_after_nudges: int = 2
    report_via: str = "default"

    @property
    def start(self) -> Step:
        return self.steps[0]

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


@dataclass(frozen=True)
class DirectoryEntry:
    key: str
    phone: str
    name: str | None = None
    timezone: str | None = None
    hours: tuple[Mapping[str, Json], ...] = ()
    aliases: tuple[str, ...] = ()
    notes: str | None = None


class Deferred:
    """The parts of a Project few commands need — the networkx graph and the parsed YAML
    documents — either given (a full load) or built on first use (a cached load)."""

    def __init__(
        self,
        graph: nx.MultiDiGraph | None = None,
        documents: Mapping[str, Document] | None = None,
        build: Callable[[], tuple[nx.MultiDiGraph, Mapping[str, Document]]] | None = None,
    ):
        if (graph is None or documents is None) and build is None:
            raise ValueError("give the graph and the documents, or a way to build them")
        self._graph, self._documents, self._build = graph, documents, build
        self._lock = threading.Lock()

    def get(self) -> tuple[nx.MultiDiGraph, Mapping[str, Document]]:
        with self._lock:
            if self._graph is None or self._documents is None:
                assert self._build is not None
                self._graph, self._documents = self._build()
                self._build = None
            return self._graph, self._documents


@dataclass(frozen=True)
class Project:
    """A validated, compiled, read-only TARS project."""

    root: Path
    state_dir: Path
    owner: Owner
    persona: Persona
    roles: Mapping[str, Role]
    tools: Mapping[str, Tool]
    playbooks: Mapping[str, Playbook]
    directory: Mapping[str, DirectoryEntry]
    settings: Mapping[str, Json]  # tars.yaml with defaults applied (telephony, model, …)
    needs: Mapping[str, frozenset[str]]  # each tool's transitive needs, for the task planner
    secrets: frozenset[str] = field(repr=False)
    secret_paths: frozenset[tuple[str, ...]] = field(repr=False)
    deferred: Deferred = field(repr=False, compare=False)

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The compiled graph (frozen). A project from the cache compiles it on first use."""
        return self.deferred.get()[0]

    @property
    def documents(self) -> Mapping[str, Document]:
        """Each YAML file as read and interpolated, by its name relative to the root."""
        return self.deferred.get()[1]

    def section(self, name: str) -> Mapping[str, Json]:
        return self.settings.get(name, MappingProxyType({}))

    @property
    def database_url(self) -> str:
        url = self.section("storage").get("url")
        return url or f"sqlite:///{self.state_dir / 'tars.db'}"


# --------------------------------------------------------------------------- loading


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
    personas = {p.stem: d for p in _yaml_files(root / "personas") if (d := read(p))}
    playbooks = {p.stem: d for p in _yaml_files(root / "playbooks") if (d := read(p))}
    problems.extend(_unreadable_entries(root, ("personas", "playbooks")))
    if problems or config is None:
        raise ConfigError(problems)
    return Sources(root, config, personas, playbooks, raw)


def _yaml_files(folder: Path) -> list[Path]:
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


def load_project(
    root: Path | None = None,
    *,
    environment: Environment | None = None,
    start: Path | None = None,
    cache: bool = False,
) -> Project:
    """Find, read, check and compile a project, or raise ConfigError with every problem.

    With ``cache=True`` an unchanged project comes from the compiled-project cache in the
    state folder (see tars.config.cache) instead; the result is the same. ``tars validate``
    never uses the cache: it is the checker.
    """
    root = find_root(root, start)
    if cache:
        from tars.config.cache import load_cached

        return load_cached(root, environment)
    return compile_sources(root, environment)[0]


def compile_sources(root: Path, environment: Environment | None = None) -> tuple[Project, Sources]:
    """The full load of the project at ``root``: read, interpolate, check schemas, compile."""
    from tars.graph.compile import compile_project, cross_references

    sources = read_sources(root, environment)
    problems = check_schemas(sources)
    if problems:
        raise ConfigError(problems + cross_references(sources, {p.file for p in problems}))
    return compile_project(sources, state_dir(root)), sources


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
