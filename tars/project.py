"""The Project: everything in the YAML files, validated, compiled and frozen — data only.

Commands, the server and the call runtime receive a ``Project`` and nothing else: nobody
re-reads YAML or trusts an unchecked dict. How one is made (read, check, compile, cache)
is tars.loading; this module only says what one is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tars.config.secrets import FromEnv

if TYPE_CHECKING:
    import networkx as nx

    from tars.config.yaml_loader import Document

# Kept light on purpose: a project loaded from the cache (tars.project_cache) must not import
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
class Transfer:
    """Who ``transfer_call`` may put a role's callers through to (``roles.<role>.transfer``):
    ``to`` holds ``owner``, directory entry names and E.164 numbers."""

    to: tuple[str, ...]
    kind: str = "warm"  # or "cold"
    ring_seconds: int = 20
    #: Contacts with these relationships are put through at any hour; others only in ``hours``.
    any_time: tuple[str, ...] = ()
    hours: tuple[Mapping[str, Json], ...] = ()


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
    #: Calls with this role are recorded (``roles.<role>.recording``), with a spoken notice if ``announce``.
    recording: bool = False
    announce_recording: bool = False
    transfer: Transfer | None = None

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
    #: The persona TARS calls as (a key of Project.personas); None: the project's active one.
    persona: str | None = None

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
    persona: Persona  # the active one (tars.yaml ``persona``)
    personas: Mapping[str, Persona]  # every persona in personas/, by file name
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

    def persona_for(self, playbook: Playbook | None = None) -> Persona:
        """The persona a call speaks as: the playbook's own when it names one, else the active one."""
        if playbook is not None and playbook.persona:
            return self.personas[playbook.persona]
        return self.persona

    @property
    def persona_autocommit(self) -> bool:
        """Whether changes made by voice or ``tars persona`` are committed to git."""
        chosen = self.settings.get("persona")
        return bool(isinstance(chosen, Mapping) and chosen.get("autocommit"))

    @property
    def database_url(self) -> str:
        url = self.section("storage").get("url")
        return url or f"sqlite:///{self.state_dir / 'tars.db'}"
