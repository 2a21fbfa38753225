"""The compiled-project cache: commands skip YAML parsing, JSON Schema and the graph when
nothing they depend on has changed.

Every command but ``tars validate`` loads the project through here
(``load_project(root, cache=True)``). A full load — read, interpolate, check schemas,
compile — that succeeds is recorded in ``<state>/cache/project-<root hash>.json``; the next
load whose inputs are byte-for-byte the same rebuilds the Project from that record without
importing jsonschema or networkx, and gives an equal Project (the graph and the parsed
documents are built on first use, by a full load).

What the record is keyed on — all of it, or it is not used:

* the bytes of tars.yaml, personas/*.yaml and playbooks/*.yaml (and which files exist);
* the bytes of ``.env``, and the value (or absence) of every variable the files reference
  with ``${VAR}``, as the load would resolve it (environment first, then ``.env``);
* the bytes of the JSON Schemas and of the TARS modules that read, check and compile
  (so a change to the code, not only a release, invalidates it), and the TARS version.

What it holds, and what it never holds:

* the documents as parsed, *before* ``${VAR}`` interpolation — only text that is in the
  YAML files already — and the names of the variables they reference; on a hit the
  references are resolved again from the environment, so secrets stay where they were
  (``project.secrets`` masks them as before) and never reach the cache file;
* the tools' transitive ``needs`` (plain names, so the task planner needs no graph);
* an HMAC over all of the above with a random key kept beside it (``cache/key``, mode
  0600): the inputs — secret values included — are never stored, not even as a plain
  hash a short PIN could be guessed back from; a record that was changed, cut short or
  written for other inputs does not verify and is ignored.

It is JSON read with ``json.loads`` and nothing else: a state folder must never be a way to
run code. Only valid projects are recorded, so the cache cannot make an invalid project
look valid. Anything unexpected — an unreadable, corrupt or foreign record, a read-only
state folder — means a full load, silently, and a fresh record when it can be written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tars import __version__
from tars.config import schema_files
from tars.config.diagnostics import Diagnostic, JsonPath
from tars.config.discovery import PROJECT_FILE, state_dir
from tars.config.secrets import Environment, FromEnv, interpolate
from tars.config.sources import Sources, yaml_files
from tars.graph.compile import build_valid_project
from tars.project import Deferred, Project

if TYPE_CHECKING:
    from collections.abc import Callable

    #: The full load the cache stands in for (tars.loading.compile_sources).
    FullLoad = Callable[[Path, Environment], tuple[Project, Sources]]

FORMAT = 1
FOLDER = "cache"
KEY_FILE = "key"
KEY_BYTES = 32

_PACKAGE = Path(__file__).resolve().parent
# The code whose behaviour decides what a load produces; a change to any of it is a new key.
_CODE = (
    "__init__.py",
    "project.py",
    "loading.py",
    "project_cache.py",
    "config/sources.py",
    "graph/compile.py",
    "graph/planner.py",
    "graph/walks.py",
    "tools/catalog.py",
)


class _Miss(Exception):
    """The record cannot be used (absent, stale, corrupt, foreign); load in full."""


def load_cached(root: Path, environment: Environment | None, full_load: FullLoad) -> Project:
    """The project at ``root``: from the cache when its inputs are unchanged, else
    ``full_load`` (raising ConfigError like ``load_project``), recorded for next time when valid."""
    try:
        inputs = inputs_digest(root)
    except OSError:
        inputs = None  # unreadable files: the full load says what is wrong
    environment = environment or Environment.for_project(root)
    state = state_dir(root)
    if inputs is not None:
        try:
            return _read(root, state, environment, inputs, full_load)
        except Exception:  # any doubt at all: the full load below decides
            pass
    project, sources = full_load(root, environment)
    if inputs is not None:
        try:
            # Files edited while they were being read: this load is fine, the record would not be.
            if inputs_digest(root) == inputs:
                _write(root, state, environment, inputs, sources, project)
        except Exception:
            pass  # a read-only or full state folder costs speed, never the command
    return project


def cache_file(root: Path, state: Path | None = None) -> Path:
    """Where the record for the project at ``root`` is kept (one per project, rewritten)."""
    name = hashlib.sha256(str(root).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return (state or state_dir(root)) / FOLDER / f"project-{name}.json"


# --------------------------------------------------------------------------- keying


def source_files(root: Path) -> list[tuple[str, Path]]:
    """Every file a load reads, with its name relative to ``root``, in load order."""
    files = [(PROJECT_FILE, root / PROJECT_FILE)]
    for folder in ("personas", "playbooks"):
        files += [(f"{folder}/{p.name}", p) for p in yaml_files(root / folder)]
    return files


def inputs_digest(root: Path) -> bytes:
    """SHA-256 over everything a load depends on but the environment's values (see the module doc)."""
    digest = hashlib.sha256(f"tars project cache {FORMAT} {__version__}\n{root}\n".encode("utf-8", "surrogatepass"))

    def add(label: str, path: Path) -> None:
        digest.update(label.encode("utf-8", "surrogatepass") + b"\0")
        if path.is_file():
            with path.open("rb") as fh:  # in pieces: an oversized file is the full load's to refuse
                digest.update(hashlib.file_digest(fh, "sha256").digest())
        else:
            digest.update(b"-")

    for name, path in source_files(root):
        add(f"project/{name}", path)
    add("project/.env", root / ".env")
    folder = schema_files.schemas_dir()
    for kind, file in sorted(schema_files.SCHEMA_FILES.items()):
        add(f"schema/{kind}", folder / file)
    for rel in _CODE:
        add(f"code/{rel}", _PACKAGE / rel)
    for path in sorted((_PACKAGE / "config").glob("*.py")):
        add(f"code/config/{path.name}", path)
    return digest.digest()


def _mac(key: bytes, inputs: bytes, names: Iterable[str], environment: Environment, payload: bytes) -> str:
    """HMAC over the inputs, the referenced variables' current values and the record itself."""
    mac = hmac.new(key, inputs, hashlib.sha256)
    for name in sorted(set(names)):
        value = environment.get(name)
        mac.update(_chunk(name.encode("utf-8", "surrogatepass")))
        mac.update(b"-" if value is None else b"=" + _chunk(value.encode("utf-8", "surrogatepass")))
    mac.update(b"\0payload\0")
    mac.update(payload)
    return mac.hexdigest()


def _chunk(data: bytes) -> bytes:
    return b"%d:" % len(data) + data


def _key(state: Path, *, create: bool) -> bytes:
    """The local HMAC key, made on first use; a missing or damaged key is a miss."""
    path = state / FOLDER / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise _Miss("no key") from None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it just now
            key = path.read_bytes()
        else:
            key = os.urandom(KEY_BYTES)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key)
    if len(key) != KEY_BYTES:
        raise _Miss("damaged key")
    return key


# --------------------------------------------------------------------------- reading


def _read(root: Path, state: Path, environment: Environment, inputs: bytes, full_load: FullLoad) -> Project:
    key = _key(state, create=False)
    header, newline, payload = cache_file(root, state).read_bytes().partition(b"\n")
    head = json.loads(header)
    if not newline or not isinstance(head, dict) or head.get("format") != FORMAT or head.get("tars") != __version__:
        raise _Miss("another format or version")
    record = json.loads(payload)
    names = record["env"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _Miss("bad variable list")
    if not hmac.compare_digest(_mac(key, inputs, names, environment, payload), str(head.get("mac"))):
        raise _Miss("stale or damaged")

    # From here on the record is exactly what _write wrote for these very inputs.
    docs: dict[str, dict[str, Any]] = {"config": {}, "persona": {}, "playbook": {}}
    for entry in record["documents"]:
        doc = _Recorded(root / entry["name"], entry["name"], entry["data"])
        if interpolate(doc, environment):  # type: ignore[arg-type]
            raise _Miss("a reference no longer resolves")  # cannot be, given the MAC; stay safe
        docs[entry["kind"]][entry["key"]] = doc
    sources = Sources(root, docs["config"]["tars"], docs["persona"], docs["playbook"])
    if _referenced(sources) != set(names):
        raise _Miss("variables differ")
    needs = {tool: frozenset(wanted) for tool, wanted in record["needs"].items()}

    def graph_and_documents() -> tuple[Any, Any]:
        project = full_load(root, environment)[0]
        return project.graph, project.documents

    return build_valid_project(sources, state, needs, Deferred(build=graph_and_documents))


class _Recorded:
    """A document from the record: what building a valid Project reads of a
    yaml_loader.Document (its name and data), without importing the YAML parser. It has no
    positions; a problem found in it means the record is not used, never a diagnostic."""

    def __init__(self, file: Path, name: str, data: Any):
        self.file, self.name, self.data = file, name, data

    def diagnostic(self, path: JsonPath, message: str, *, key: bool = False, code: str = "error") -> Diagnostic:
        raise _Miss(f"{code}: {message}")


# --------------------------------------------------------------------------- writing


def _write(
    root: Path, state: Path, environment: Environment, inputs: bytes, sources: Sources, project: Project
) -> None:
    documents = [("config", "tars", sources.config)]
    documents += [("persona", k, d) for k, d in sources.personas.items()]
    documents += [("playbook", k, d) for k, d in sources.playbooks.items()]
    raw = [sources.raw[doc.name] for _, _, doc in documents]
    if not all(_plain(data) for data in raw):
        return  # something JSON would not give back as it is: do without the cache
    names = sorted(_referenced(sources))
    record = {
        "documents": [
            {"kind": kind, "key": key, "name": doc.name, "data": data}
            for (kind, key, doc), data in zip(documents, raw, strict=True)
        ],
        "env": names,
        "needs": {tool: sorted(wanted) for tool, wanted in project.needs.items()},
    }
    payload = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    key = _key(state, create=True)
    header = {"format": FORMAT, "tars": __version__, "mac": _mac(key, inputs, names, environment, payload)}
    target = cache_file(root, state)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(header).encode("ascii") + b"\n" + payload)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _referenced(sources: Sources) -> set[str]:
    """Every variable a ``${VAR}`` in the documents names."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, FromEnv):
            found.update(value.variables)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for doc in sources.all():
        walk(doc.data)
    return found


def _plain(value: Any) -> bool:
    """True if ``json.loads(json.dumps(value))`` gives back the same values of the same types."""
    kind = type(value)
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    if kind is float:
        return value == value and value not in (float("inf"), float("-inf"))
    return kind in (str, int, bool, type(None))
