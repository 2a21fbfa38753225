"""Changing a persona — by voice on the owner's call, or with ``tars persona set/use`` — so
that the YAML in git stays the truth.

A change is checked against the persona schema first (a value out of range, an unknown
persona: a clear answer, the file untouched), then written back to the YAML file with
ruamel's round trip (one changed line), then the whole project is loaded again the one
way every command loads it; if that load fails the file is put back as it was. Every
change, applied or refused, becomes a ``persona_change`` row; with ``persona.autocommit``
and a git repository the file is committed with a message saying what changed and why.

Changes are serialised by a lock file in the state folder, so two calls (or a call and the
CLI, or two servers on one machine) never interleave their read-change-write.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tars.calls.instructions import persona_lines
from tars.config.diagnostics import ConfigError
from tars.config.schema_files import load_schema
from tars.config.write_back import WriteBackError, set_value
from tars.errors import UserError
from tars.git_commit import commit_file, repository_of
from tars.loading import load_project
from tars.project import Persona, Project
from tars.store.models import PersonaChange
from tars.store.persona_changes import record_change
from tars.tools.builtins import persona_view
from tars.tools.catalog import PERSONA_SETTINGS

log = logging.getLogger("tars.persona")

# Gemini Live's prebuilt voices (Chirp 3 HD), as listed in "Configuration options for the
# Live API", https://firebase.google.com/docs/ai-logic/live-api/configuration ("View list of
# response voice options"); the default is Puck.
VOICES = (
    "Zephyr", "Kore", "Orus", "Autonoe", "Umbriel", "Erinome", "Laomedeia", "Schedar", "Achird",
    "Sadachbia", "Puck", "Fenrir", "Aoede", "Enceladus", "Algieba", "Algenib", "Achernar", "Gacrux",
    "Zubenelgenubi", "Sadaltager", "Charon", "Leda", "Callirrhoe", "Iapetus", "Despina", "Rasalgethi",
    "Alnilam", "Pulcherrima", "Vindemiatrix", "Sulafat",
)  # fmt: skip

#: Where a setting that a persona file leaves to its default is written: after these keys.
_PLACE_AFTER: Mapping[str, tuple[str, ...]] = {
    "humor": ("style", "nationality", "language"),
    "honesty": ("humor", "style", "language"),
    "verbosity": ("honesty", "humor", "style", "language"),
    "style": ("nationality", "language"),
    "voice": ("name",),
}
_NAMES = {"humor": "humour", "honesty": "honesty", "verbosity": "verbosity", "style": "style", "voice": "voice"}
_ALIASES = {"humour": "humor", "personality": "verbosity", "manner": "style", "tone": "style"}


class PersonaChangeRefused(UserError):
    """A change that cannot be made; the message is for the person (or the model) to hear."""


@dataclass(frozen=True)
class Asker:
    """Who asked for a change, for the history: ``by`` in words, ``source`` call or cli."""

    by: str
    source: str
    call_id: int | None = None
    role: str = "owner"


@dataclass(frozen=True)
class Applied:
    change: PersonaChange  # the history row, not yet stored
    project: Project  # the project loaded again with the change in it
    file: Path

    def describe(self) -> dict[str, Any]:
        """What the model (or the CLI) says back."""
        change = self.change
        persona = self.project.personas[change.persona]
        said = {
            "done": True,
            "persona": persona.name,
            "changed": _NAMES.get(change.setting, change.setting),
            "from": change.old,
            "to": change.new,
            "saved_to": str(self.file.relative_to(self.project.root)),
        }
        if change.setting == "voice":
            said["note"] = "the new voice is heard from the next call; this call keeps its voice"
        elif change.setting == "active":
            said["note"] = f"every call from now on speaks as {persona.name}; this call stays as it is"
        else:
            said["now_in_effect"] = " ".join(persona_lines(persona))
            said["note"] = "act on the new setting for the rest of this call; later calls start with it"
        if change.commit:
            said["commit"] = change.commit[:12]
        return said


# ------------------------------------------------------------------------------ values


def setting_name(raw: str) -> str:
    name = raw.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in PERSONA_SETTINGS:
        raise PersonaChangeRefused(
            f"'{raw}' is not a persona setting that can be changed; the settings are: "
            + ", ".join(_NAMES[s] for s in PERSONA_SETTINGS)
        )
    return name


def parse_value(setting: str, raw: Any, current: Any) -> Any:
    """``raw`` as the persona file would hold it, checked against the persona schema.

    Humour and honesty take 0-100 ("75", "75%", "75 percent"), or a step from the current
    value ("+10", "-20"); verbosity and style one of their words; voice a Gemini voice."""
    spec = load_schema("persona")["properties"][setting]
    words = str(raw).strip()
    if spec.get("type") == "integer":
        match = re.fullmatch(r"([+-]?)\s*(\d{1,4})\s*(%|percent|per cent)?", words.lower())
        if not match:
            raise PersonaChangeRefused(
                f"{_NAMES[setting]} is a number from {spec['minimum']} to {spec['maximum']}; '{words}' is not one"
            )
        number = int(match.group(2))
        if match.group(1):
            number = int(current) + (number if match.group(1) == "+" else -number)
        if not spec["minimum"] <= number <= spec["maximum"]:
            raise PersonaChangeRefused(
                f"{_NAMES[setting]} goes from {spec['minimum']} to {spec['maximum']}; {number} is out of range, "
                f"so it stays at {current}"
            )
        return number
    if "enum" in spec:
        choice = words.lower()
        if choice not in spec["enum"]:
            raise PersonaChangeRefused(
                f"{_NAMES[setting]} is one of {', '.join(spec['enum'])}; '{words}' is not, so it stays {current}"
            )
        return choice
    if setting == "voice":
        voice = next((v for v in VOICES if v.lower() == words.lower()), None)
        if voice is None:
            raise PersonaChangeRefused(f"'{words}' is not a Gemini voice; the voices are: {', '.join(VOICES)}")
        return voice
    return words


def find_persona(project: Project, raw: str) -> str:
    """The key of the persona called ``raw`` (its file name or its name, any case)."""
    wanted = raw.strip().lower().removesuffix(".yaml")
    for key, persona in project.personas.items():
        if wanted in (key.lower(), persona.name.lower()):
            return key
    known = ", ".join(f"{p.name} ({k})" if p.name.lower() != k.lower() else k for k, p in project.personas.items())
    raise PersonaChangeRefused(f"there is no persona called '{raw.strip()}'; the personas are: {known}")


def persona_file(project: Project, key: str) -> Path:
    folder = project.root / "personas"
    return next((p for p in (folder / f"{key}.yaml", folder / f"{key}.yml") if p.is_file()), folder / f"{key}.yaml")


def current_value(persona: Persona, setting: str) -> Any:
    return getattr(persona, setting)


# ------------------------------------------------------------------------------ changing


def change_setting(
    project: Project, setting: str, value: Any, asker: Asker, *, persona: str | None = None, reason: str | None = None
) -> Applied:
    """Set one persona setting (of the active persona, or ``persona``) and save it."""
    if asker.role != "owner":
        raise PersonaChangeRefused("only the owner may change how TARS behaves")
    setting = setting_name(setting)
    key = find_persona(project, persona) if persona else project.persona.key
    with _locked(project):
        fresh = _reload(project)  # another change may have landed since this project was loaded
        target = fresh.personas.get(key)
        if target is None:
            raise PersonaChangeRefused(f"the persona '{key}' is no longer in personas/")
        old = current_value(target, setting)
        new = parse_value(setting, value, old)
        if new == old:
            raise PersonaChangeRefused(f"{_NAMES[setting]} is already {old}; nothing to change")
        file = persona_file(fresh, key)
        applied = _write(fresh, file, (setting,), new, _PLACE_AFTER.get(setting, ()))
        row = _row(key, setting, old, new, asker, reason)
        return _finish(applied, row, file, f"persona {key}: {setting} {old} → {new}", reason, asker)


def switch_persona(project: Project, name: str, asker: Asker, *, reason: str | None = None) -> Applied:
    """Make another persona the active one (tars.yaml ``persona``)."""
    if asker.role != "owner":
        raise PersonaChangeRefused("only the owner may change how TARS behaves")
    with _locked(project):
        fresh = _reload(project)
        key = find_persona(fresh, name)
        old = fresh.persona.key
        if key == old:
            raise PersonaChangeRefused(f"{fresh.persona.name} is already the persona in use")
        file = fresh.root / "tars.yaml"
        keys = ("persona", "use") if isinstance(fresh.settings.get("persona"), Mapping) else ("persona",)
        applied = _write(fresh, file, keys, key, ())
        row = _row(key, "active", old, key, asker, reason)
        return _finish(applied, row, file, f"persona: use {key} instead of {old}", reason, asker)


def refusal(project: Project, setting: str, value: Any, asker: Asker, why: str, reason: str | None) -> PersonaChange:
    """The history row of a change that was refused."""
    try:
        setting = setting_name(setting)
    except PersonaChangeRefused:
        setting = str(setting)[:32]
    row = _row(project.persona.key, setting, None, str(value)[:256], asker, reason)
    row.result, row.detail = "refused", why
    return row


def _row(persona: str, setting: str, old: Any, new: Any, asker: Asker, reason: str | None) -> PersonaChange:
    return PersonaChange(
        persona=persona,
        setting=setting,
        old=None if old is None else str(old),
        new=str(new),
        by=asker.by,
        source=asker.source,
        call_id=asker.call_id,
        reason=reason or None,
    )


def _write(project: Project, file: Path, keys: tuple[str, ...], value: Any, after: tuple[str, ...]) -> Project:
    """Write the change and load the project with it; on any problem the file is put back."""
    before = file.read_bytes()
    try:
        set_value(file, keys, value, insert_after=after)
    except WriteBackError as exc:
        raise PersonaChangeRefused(str(exc)) from exc
    try:
        return load_project(project.root)
    except ConfigError as exc:
        file.write_bytes(before)
        first = exc.diagnostics[0].message if exc.diagnostics else "the project would not load"
        why = f"the change would leave the project invalid ({first}); nothing was changed"
        raise PersonaChangeRefused(why) from exc
    except BaseException:
        file.write_bytes(before)
        raise


def _finish(
    project: Project, row: PersonaChange, file: Path, summary: str, reason: str | None, asker: Asker
) -> Applied:
    if project.persona_autocommit and repository_of(file) is not None:
        why = f"\n\nAsked by {asker.by}" + (f": {reason}" if reason else ".")
        try:
            row.commit = commit_file(file, f"{summary}{why}")
        except RuntimeError as exc:  # the change stands; only the commit is missing
            log.warning("%s was changed but not committed: %s", file.name, exc)
            row.detail = f"not committed: {exc}"
    log.info("%s (by %s)", summary, asker.by)
    return Applied(row, project, file)


def _reload(project: Project) -> Project:
    try:
        return load_project(project.root)
    except ConfigError as exc:
        first = exc.diagnostics[0].render() if exc.diagnostics else "it does not load"
        raise PersonaChangeRefused(f"the project has a problem to fix first: {first}") from exc


@contextlib.contextmanager
def _locked(project: Project) -> Iterator[None]:
    project.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(project.state_dir / "persona.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------ for tools


class PersonaDesk:
    """The persona tools of one live call (tars.tools.builtins.Personas): reads come from the
    newest project, changes are recorded and handed to ``use`` (the server takes the new
    project for every later call)."""

    def __init__(
        self,
        current: Callable[[], Project],
        use: Callable[[Project], None],
        database: Any,
        asker: Asker,
    ):
        self.current, self.use, self.database, self.asker = current, use, database, asker

    def settings(self) -> dict[str, Any]:
        return persona_view(self.current())

    async def change(self, setting: str, value: Any, reason: str | None) -> dict[str, Any]:
        def work(project: Project) -> Applied:
            return change_setting(project, setting, value, self.asker, reason=reason)

        return await self._apply(work, setting, value, reason)

    async def switch(self, name: str, reason: str | None) -> dict[str, Any]:
        return await self._apply(lambda p: switch_persona(p, name, self.asker, reason=reason), "active", name, reason)

    async def _apply(
        self, work: Callable[[Project], Applied], setting: str, value: Any, reason: str | None
    ) -> dict[str, Any]:
        project = self.current()
        try:
            applied = await asyncio.to_thread(work, project)
        except PersonaChangeRefused as exc:
            row = refusal(project, setting, value, self.asker, str(exc), reason)
            await self.database.run(lambda s: record_change(s, row))
            raise
        await self.database.run(lambda s: record_change(s, applied.change))
        self.use(applied.project)
        return applied.describe()
