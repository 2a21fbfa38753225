"""The Project: everything in the YAML files, validated, compiled and frozen.

Commands, the server and the call runtime receive a ``Project`` and nothing else: nobody
re-reads YAML or trusts an unchecked dict. ``load_project`` runs the passes in order —
read each file, resolve ``${VAR}`` references, check JSON Schema, compile the graph — and
stops after the first pass that found problems, so one typo does not cascade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tars.config.diagnostics import ConfigError, Diagnostic
from tars.config.discovery import PROJECT_FILE, find_root, state_dir
from tars.config.schema import load_schema, validate_document
from tars.config.secrets import Environment, FromEnv, interpolate
from tars.config.yaml_loader import Document, load_file

if TYPE_CHECKING:
    import networkx as nx

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
    graph: nx.MultiDiGraph = field(repr=False, compare=False)
    documents: Mapping[str, Document] = field(repr=False, compare=False)

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

    def all(self) -> list[Document]:
        return [self.config, *self.personas.values(), *self.playbooks.values()]


def read_sources(root: Path, environment: Environment | None = None) -> Sources:
    """Pass 1 and 2: read every YAML file, resolve ``${VAR}``; raise on any problem."""
    environment = environment or Environment.for_project(root)
    problems: list[Diagnostic] = []

    def read(path: Path) -> Document | None:
        try:
            doc = load_file(path, str(path.relative_to(root)))
        except ConfigError as exc:
            problems.extend(exc.diagnostics)
            return None
        problems.extend(interpolate(doc, environment))
        return doc

    config = read(root / PROJECT_FILE)
    personas = {p.stem: d for p in _yaml_files(root / "personas") if (d := read(p))}
    playbooks = {p.stem: d for p in _yaml_files(root / "playbooks") if (d := read(p))}
    if problems or config is None:
        raise ConfigError(problems)
    return Sources(root, config, personas, playbooks)


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def check_schemas(sources: Sources) -> list[Diagnostic]:
    """Pass 3: JSON Schema for every document."""
    problems = validate_document(sources.config, "tars")
    for doc in sources.personas.values():
        problems += validate_document(doc, "persona")
    for doc in sources.playbooks.values():
        problems += validate_document(doc, "playbook")
    return problems


def load_project(
    root: Path | None = None, *, environment: Environment | None = None, start: Path | None = None
) -> Project:
    """Find, read, check and compile a project, or raise ConfigError with every problem."""
    from tars.graph.compile import compile_project

    root = find_root(root, start)
    sources = read_sources(root, environment)
    problems = check_schemas(sources)
    if problems:
        raise ConfigError(problems)
    return compile_project(sources, state_dir(root))


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
