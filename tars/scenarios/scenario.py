"""Scenarios: one YAML file scripts one call for both emulators, and says what must follow.

    description: The owner asks for a reminder.
    call: {from: owner}
    turns:
      - model: {greet: true}
      - party: {say: Remind me to call Helen tomorrow at 2pm.}
      - model: {tool: create_reminder, args: {text: call Helen, when: tomorrow at 2pm}}
      - model: {say: Done.}
      - model: {tool: end_call}
      - model: {say: "Goodbye, sir."}
    expect:
      reminders: [{text: call Helen, due: tomorrow at 2pm}]

``call`` says who rings (``owner``, ``unknown``, a contact from ``given.contacts`` or an
E.164 number) or, for goal calls (``direction: outbound``), the playbook, target, inputs
and how the phone answers (``human``, ``voicemail``, ``busy``, ``no-answer``). ``given``
fills the empty database (contacts, reminders), says how webhook endpoints answer and what
the text model writes after a goal call. ``turns`` alternate between the other party
(``say``, ``press``, ``silence``, ``hang_up``), the emulated model (``say``, ``greet``,
``tool`` with ``args`` and an expected ``result``, ``refused`` or ``error``) and, on goal
calls, the owner answering an ``ask_owner`` question by text (``owner: {texts: …}``).
``expect`` is checked once the call is over.

``given.phones`` plays the phones TARS rings while the call runs: transfer targets, and
whoever a ``<Dial>`` or a conference dial-out reaches. Each is keyed by who it is (``owner``,
a contact, a directory entry or an E.164 number) and says how it ``answers`` (``human``,
``voicemail`` with its ``greeting``, ``busy``, ``no_answer``, ``declines``, ``fails``), how
long it ``rings_seconds``, what the person does while a warm transfer's ``whisper`` plays
(``presses: "1"``, ``says: yes``, ``hangs_up: true``, ``silent: true``), and what they do
``then``, once put through (party turns)::

    given:
      phones:
        owner: {whisper: {presses: "1"}, then: [{say: Hello Helen.}, {hang_up: true}]}
        dentist: {answers: voicemail, greeting: Bright Smile Dental, leave a message.}
        "+15550001111": {answers: no_answer}

A goal call, as the playbooks' own scenarios (``playbooks/scenarios/<playbook>/``) write it:

    call: {direction: outbound, playbook: book_appointment, target: dentist,
           inputs: {preferred_day: Wednesday}}
    turns:
      - party: {say: "Bright Smile Dental, how can I help?"}
      - model: {say: "Hello, I'm calling for Alex Morgan to book a check-up."}
      - model: {tool: goto_step, args: {step: find_slot}, result: {next_step: find_slot}}
      ...
    expect:
      steps_visited: [introduce, find_slot, confirm, wrap_up]
      outcome: {status: booked}

A time that must lie ahead whenever the scenario runs is written in words under ``$time`` in a
model's tool arguments or an expected outcome, and becomes an ISO 8601 time in the owner's
timezone when the scenario is loaded: ``args: {status: booked, when: {$time: Wednesday at 10am}}``.

Loading runs the project's passes: YAML (line-tracking), JSON Schema
(``schemas/scenario.schema.json``), then cross-checks against the project (tool, contact,
playbook and webhook names; turns that cannot happen). Every problem is a Diagnostic:
``tests/scenarios/x.yaml:14:7  $.turns[2].model.tool  'creat_reminder' is not a tool …``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tars.config.diagnostics import ConfigError
from tars.config.schema import validate_document
from tars.config.yaml_loader import Document, load_file
from tars.emulators.gemini.delivery import REALISTIC, TIDY
from tars.project import Project
from tars.scenarios.scenario_checks import OWNER, TIME_KEY, UNKNOWN, comma_traps, cross_check

#: The number an ``unknown`` caller rings from (a fictional 555-01xx number).
UNKNOWN_NUMBER = "+12025550143"


@dataclass(frozen=True)
class PartyTurn:
    """The other person on the line does one thing."""

    index: int
    say: str | None = None
    press: str | None = None
    silence_ms: int | None = None
    hang_up: bool = False

    @property
    def number(self) -> int:
        return self.index + 1

    def describe(self) -> str:
        if self.say is not None:
            return f"says {self.say!r}"
        if self.press is not None:
            return f"presses {self.press}"
        if self.silence_ms is not None:
            return f"stays silent for {self.silence_ms} ms"
        return "hangs up"


@dataclass(frozen=True)
class ModelTurn:
    """The emulated model does one thing: speaks, greets, or calls a tool."""

    index: int
    say: str | None = None
    greet: bool = False
    tool: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    result: Mapping[str, Any] | None = None
    refused: bool = False
    error: str | None = None
    # the model stays silent through what it just heard and the next stall - 1 things; or, named,
    # quiet on this connection, session or service (tars.emulators.gemini.brain.Stall)
    stall: int | str = 0

    @property
    def number(self) -> int:
        return self.index + 1

    def describe(self) -> str:
        if self.tool is not None:
            return f"calls {self.tool}"
        if isinstance(self.stall, str):
            return f"stalls (quiet on this {self.stall})"
        if self.stall:
            return f"stalls ({self.stall} unanswered)"
        return "greets" if self.greet else f"says {self.say!r}"


@dataclass(frozen=True)
class OwnerTurn:
    """The owner answers the question the model asked with ``ask_owner``, by text message."""

    index: int
    texts: str

    @property
    def number(self) -> int:
        return self.index + 1

    def describe(self) -> str:
        return f"the owner texts {self.texts!r}"


Turn = PartyTurn | ModelTurn | OwnerTurn


@dataclass(frozen=True)
class ScenarioCall:
    """Who calls whom."""

    direction: str = "inbound"
    from_: str | None = None  # owner, unknown, a given contact's name, or E.164
    keypad: tuple[str, ...] = ()
    playbook: str | None = None
    target: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    answer: str = "human"

    @property
    def outbound(self) -> bool:
        return self.direction == "outbound"


@dataclass(frozen=True)
class Scenario:
    """One validated scenario file."""

    name: str  # the file's stem
    file: str  # as shown to people
    description: str
    call: ScenarioCall
    contacts: tuple[Mapping[str, Any], ...]
    reminders: tuple[Mapping[str, Any], ...]
    webhook_replies: Mapping[str, Mapping[str, Any]]
    turns: tuple[Turn, ...]
    expect: Mapping[str, Any]
    #: Goal calls: what the Gemini text model answers after the call (``summary``, ``outcome``).
    text_model: Mapping[str, Any] = field(default_factory=dict)
    #: Limits of the emulated Live service (``session_limit_seconds`` …), as GeminiEmulator options.
    gemini: Mapping[str, Any] = field(default_factory=dict)
    #: ``given.phones``: how the phones TARS rings answer, by who they are.
    phones: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def gemini_limits(self) -> dict[str, Any]:
        """``given.gemini`` as ``GeminiEmulator`` keyword arguments (limits, and how output is
        delivered: untidy as the service unless ``delivery: tidy`` asks for ``delivery.TIDY``;
        ``delivery: realistic`` is ``delivery.REALISTIC``, the emulator's default; each knob
        may be set on its own over either)."""
        names = {"session_limit_seconds": "session_limit_s", "connection_limit_seconds": "connection_limit_s",
                 "go_away_lead_seconds": "go_away_lead_s", "handle_lifetime_seconds": "handle_lifetime_s",
                 "pacing": "pacing"}  # fmt: skip
        counts = ("parts_per_message", "transcription_chars", "burst_messages")
        presets = {"realistic": REALISTIC, "tidy": TIDY}
        out: dict[str, Any] = dict(presets.get(str(self.gemini.get("delivery")), {}))
        out.update({names[k]: float(v) for k, v in self.gemini.items() if k in names})
        out.update({k: int(v) for k, v in self.gemini.items() if k in counts})
        return out

    @property
    def playbook(self) -> str | None:
        """The playbook a goal call follows (None for inbound calls)."""
        return self.call.playbook if self.call.outbound else None

    def target_number(self, project: Project) -> str:
        """The number a goal call dials: a directory entry's, a given contact's, or the E.164 target."""
        target = self.call.target or ""
        entry = project.directory.get(target)
        return entry.phone if entry is not None else self.number_of(target, project)

    def phone_parties(self, project: Project) -> dict[str, dict[str, Any]]:
        """``given.phones`` as ``Party`` keyword arguments by phone number."""
        parties: dict[str, dict[str, Any]] = {}
        for who, spec in self.phones.items():
            entry = project.directory.get(who)
            number = entry.phone if entry is not None else self.number_of(who, project)
            parties[number] = phone_party(spec)
        return parties

    def number_of(self, who: str, project: Project) -> str:
        """The phone number of ``owner``, ``unknown``, a given contact's name, or an E.164 number."""
        if who == OWNER:
            return project.owner.phone
        if who == UNKNOWN:
            return UNKNOWN_NUMBER
        for contact in self.contacts:
            if contact["name"] == who:
                return str(contact["phone"])
        return who


# ------------------------------------------------------------------------------ loading


def load_scenarios(paths: Iterable[Path], project: Project, *, base: Path | None = None) -> list[Scenario]:
    """Load every file, or raise one ConfigError with the problems of all of them."""
    scenarios, problems = [], []
    for path in paths:
        try:
            scenarios.append(load_scenario(path, project, base=base))
        except ConfigError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise ConfigError(problems)
    return scenarios


def load_scenario(path: Path, project: Project, *, base: Path | None = None) -> Scenario:
    """Read, schema-check and cross-check one scenario; raise ConfigError with what is wrong."""
    doc = load_file(path, _shown(path, base or Path.cwd()))
    traps = comma_traps(doc)
    problems = traps + [
        p for p in validate_document(doc, "scenario") if not any(p.path.startswith(t.path) for t in traps)
    ]
    if problems:
        raise ConfigError(problems)
    problems = cross_check(doc, project)
    if problems:
        raise ConfigError(problems)
    return _build(doc, path.stem, project.owner.timezone)


def _shown(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def with_times(value: Any, timezone: str, now: dt.datetime) -> Any:
    """``value`` with every ``{$time: words}`` mapping replaced by that time, ISO 8601 in
    ``timezone`` (the next one after ``now``). The words were checked when loading."""
    from tars import timeparse

    if isinstance(value, Mapping):
        if set(value) == {TIME_KEY}:
            instant = timeparse.parse_future(str(value[TIME_KEY]), timezone, now)
            return timeparse.local(instant, timezone).isoformat()
        return {k: with_times(v, timezone, now) for k, v in value.items()}
    if isinstance(value, list):
        return [with_times(v, timezone, now) for v in value]
    return value


def _build(doc: Document, name: str, timezone: str) -> Scenario:
    now = dt.datetime.now(dt.UTC)
    data = with_times(doc.data, timezone, now)
    call = data["call"]
    given = data.get("given") or {}
    turns: list[Turn] = []
    for index, item in enumerate(data.get("turns") or []):
        if "party" in item:
            p = item["party"]
            turns.append(PartyTurn(index, p.get("say"), p.get("press"), p.get("silence"), bool(p.get("hang_up"))))
        elif "owner" in item:
            turns.append(OwnerTurn(index, item["owner"]["texts"]))
        else:
            m = item["model"]
            turns.append(
                ModelTurn(
                    index,
                    m.get("say"),
                    bool(m.get("greet")),
                    m.get("tool"),
                    dict(m.get("args") or {}),
                    m.get("result"),
                    bool(m.get("refused")),
                    m.get("error"),
                    m["stall"] if isinstance(m.get("stall"), str) else int(m.get("stall") or 0),
                )
            )
    return Scenario(
        name=name,
        file=doc.name,
        description=data["description"],
        call=ScenarioCall(
            call.get("direction", "inbound"),
            call.get("from"),
            tuple(call.get("keypad") or ()),
            call.get("playbook"),
            call.get("target"),
            dict(call.get("inputs") or {}),
            call.get("answer", "human"),
        ),
        contacts=tuple(given.get("contacts") or ()),
        reminders=tuple(given.get("reminders") or ()),
        webhook_replies=dict(given.get("webhooks") or {}),
        turns=tuple(turns),
        expect=dict(data.get("expect") or {}),
        text_model=dict(given.get("text_model") or {}),
        gemini=dict(given.get("gemini") or {}),
        phones=dict(given.get("phones") or {}),
    )


#: ``given.phones.*.answers`` → the Twilio emulator's ``Party.answer``.
PHONE_ANSWERS = {"human": "human", "voicemail": "voicemail", "busy": "busy", "no_answer": "no-answer",
                 "declines": "decline", "fails": "failed"}  # fmt: skip


def phone_party(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One ``given.phones`` entry as ``tars.emulators.twilio.call.Party`` keyword arguments."""
    whisper = spec.get("whisper") or {}
    party: dict[str, Any] = {
        "answer": PHONE_ANSWERS[spec.get("answers", "human")],
        "ring_ms": int(float(spec.get("rings_seconds", 0)) * 1000),
        "gather": [str(whisper["presses"])] if "presses" in whisper else [],
        "gather_speech": [str(whisper["says"])] if "says" in whisper else [],
        "whisper": "hang_up" if whisper.get("hangs_up") else "listen",
        "script": [dict(turn) for turn in spec.get("then") or []] or None,
    }
    if "greeting" in spec:
        party["greeting"] = str(spec["greeting"])
    return party
