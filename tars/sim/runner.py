"""Running a scenario: the real TARS server on a loopback line, the script on both ends.

For each scenario: a fresh state folder (its own SQLite database, seeded with the
scenario's ``given``), the Twilio and Gemini emulators and a webhook receiver, and the
project's own server code between them (``tars.sim.line``). The model follows the
script through ``ScenarioModel``; the party side is played here on the Twilio
emulator's call (``say``, ``press``, ``silence``, ``hang_up``), each party turn once the
model has finished the turns before it and its words have been heard. Afterwards the
call's records are read back and the expectations checked.

Nothing reaches Google or Twilio, and the owner's real database is never opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tars.project import Project
from tars.sim.expectations import Check, Observed, check, describe_value
from tars.sim.scenario import ModelTurn, PartyTurn, Scenario

if TYPE_CHECKING:
    from tars.sim.scenario_model import ScenarioModel
    from tars.sim.twilio import Call

GOAL_CALLS_NOT_READY = "goal calls are not available yet (they arrive with issue 7)"
#: How long the party waits for any one thing (the model's turn, its words, the hang-up).
STEP_SECONDS = 15.0
#: Quiet on the line (no agent audio) that tells the party the model has finished speaking.
QUIET_SECONDS = 0.4
#: The model's synthetic speech is this long whatever it says: pipecat plays audio out in
#: real time, and a scenario's meaning is in the words, which travel with the audio.
BRIEF_SPEECH_MS = 300
#: Silence after each thing the party says. Without a realtime clock no audio flows between
#: utterances, so the pause must outlast the model's end-of-speech wait (500 ms) plus the
#: ~100 ms pipecat keeps buffered on the way in.
PAUSE_AFTER_WORDS_MS = 1000


@dataclass(frozen=True)
class Entry:
    """One line of the report's transcript: who (party, tars, system, tool) and what."""

    speaker: str
    text: str
    allowed: bool | None = None  # tool calls: did the gate let it run?

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"speaker": self.speaker, "text": self.text}
        if self.allowed is not None:
            data["allowed"] = self.allowed
        return data


@dataclass
class ScenarioResult:
    """How one scenario went."""

    scenario: Scenario
    status: str  # passed, failed, skipped
    checks: list[Check] = field(default_factory=list)
    transcript: list[Entry] = field(default_factory=list)
    reason: str | None = None  # why it was skipped
    seconds: float = 0.0
    call_sid: str | None = None
    party: str = ""  # who the other party is, in words
    state_dir: str | None = None

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name, "file": self.scenario.file,
            "description": self.scenario.description, "status": self.status, "reason": self.reason,
            "seconds": round(self.seconds, 2), "call_sid": self.call_sid, "party": self.party,
            "state_dir": self.state_dir, "checks": [c.to_json() for c in self.checks],
            "transcript": [e.to_json() for e in self.transcript],
        }  # fmt: skip


class Stuck(Exception):
    """The script could not go on; the message says what it was waiting for."""


# ------------------------------------------------------------------------------ running many


def run_all(
    scenarios: Sequence[Scenario],
    project: Project,
    *,
    keep_state: Path | None = None,
    on_result: Callable[[ScenarioResult], None] = lambda r: None,
) -> list[ScenarioResult]:
    """Run scenarios one after another (each with its own state folder); report each as it ends."""

    async def main() -> list[ScenarioResult]:
        results = []
        for scenario in scenarios:
            with _state_folder(keep_state, scenario.name) as state:
                result = await run_scenario(scenario, project, state)
                if keep_state is not None:
                    result.state_dir = str(state)
            on_result(result)
            results.append(result)
        return results

    with _loopback_without_proxy():
        return asyncio.run(main())


@contextlib.contextmanager
def _state_folder(keep: Path | None, name: str) -> Iterator[Path]:
    if keep is not None:
        folder = keep / name
        if folder.exists():
            strangers = [p.name for p in folder.iterdir() if not p.name.startswith("tars.db")]
            if strangers:
                from tars.cli.errors import UserError

                raise UserError(
                    f"{folder} holds more than a simulation's database ({', '.join(strangers[:3])})",
                    "give --keep-state a folder of its own, e.g. --keep-state sim-state",
                )
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix=f"tars-sim-{name}-") as temporary:
        yield Path(temporary)


@contextlib.contextmanager
def _loopback_without_proxy() -> Iterator[None]:
    """Requests to 127.0.0.1 never go through an HTTP proxy set in the environment."""
    saved = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    for key in saved:
        os.environ[key] = ",".join(filter(None, [saved[key], "127.0.0.1,localhost"]))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------------------------ one scenario


async def run_scenario(scenario: Scenario, project: Project, state_dir: Path) -> ScenarioResult:
    """Play one scenario against the real server in this event loop."""
    from tars.sim.line import Line, for_simulation
    from tars.sim.scenario_model import ScenarioModel
    from tars.sim.twilio import Party

    started = time.monotonic()
    if scenario.call.direction == "outbound":
        party = f"{scenario.call.target} (playbook {scenario.call.playbook})"
        return ScenarioResult(scenario, "skipped", reason=GOAL_CALLS_NOT_READY, party=party)
    sim = for_simulation(project, state_dir)
    given_contacts = await asyncio.to_thread(_seed, scenario, sim)
    model = ScenarioModel(scenario.turns)
    number = scenario.number_of(scenario.call.from_ or "unknown", project)
    result = ScenarioResult(scenario, "failed", party=_who(scenario, project, number))
    seen = Observed()
    async with Line(sim, lambda: model, speech_body_ms=BRIEF_SPEECH_MS) as line:
        for name, reply in scenario.webhook_replies.items():
            line.webhooks.reply(name, int(reply.get("status", 200)), reply.get("reply"))
        call = await line.call_in(number, Party(gather=list(scenario.call.keypad)))
        result.call_sid = call.sid
        try:
            await _play_party(scenario, call, model)
        except Stuck as exc:
            result.checks.append(Check("the script ran to the end", False, _stuck(str(exc), model)))
        if not call.ended:
            await call.hang_up()
        with contextlib.suppress(TimeoutError):  # the last rows and notices are written as the call closes
            await line.settle(STEP_SECONDS)
        sessions = line.gemini.sessions
        seen.offered = sessions[0].tool_names if sessions else None
        seen.greeting = model.greeting
        seen.sms = [{"to": m.to, "body": m.body} for m in line.twilio.messages]
        seen.webhooks = [{"name": r.name, "payload": r.payload} for r in line.webhooks.requests]
        emulator_errors = (
            [str(e) for e in line.twilio.errors]
            + list(line.gemini.errors)
            + [f"Gemini closed the socket: {v.reason}" for v in line.gemini.violations]
        )
    await asyncio.to_thread(_read_records, sim, call.sid, given_contacts, seen, result, project)
    result.checks[:0] = model.checks
    if emulator_errors:
        result.checks.append(Check("the emulators saw no errors", False, "; ".join(emulator_errors)))
    contact = next((c["name"] for c in scenario.contacts if c["phone"] == number), None)
    result.checks += check(scenario.expect, seen, project, lambda who: scenario.number_of(who, project), contact)
    result.status = "failed" if result.failures else "passed"
    result.seconds = time.monotonic() - started
    return result


def _who(scenario: Scenario, project: Project, number: str) -> str:
    who = scenario.call.from_ or "unknown"
    if who == "owner":
        return f"{project.owner.name}, the owner ({number})"
    if who == "unknown":
        return f"an unknown caller ({number})"
    return number if who == number else f"{who} ({number})"


def _stuck(message: str, model: ScenarioModel) -> str:
    heard = model.ignored[-3:]
    also = f"; the model heard {', '.join(repr(h) for h in heard)} instead" if heard else ""
    cut = model.session.interruptions if model.session is not None else 0
    if cut:
        also += f"; the model was interrupted {cut} time(s) (talked over)"
    return f"{message}; the model was waiting for {model.waiting_for()}{also}"


async def _until(predicate: Callable[[], bool], seconds: float, call: Call | None = None, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if call is not None and call.ended:
            raise Stuck(f"the call ended ({call.status}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise Stuck(f"nothing happened for {seconds:.0f} s while waiting for {what}")
        await asyncio.sleep(0.02)


async def _play_party(scenario: Scenario, call: Call, model: ScenarioModel) -> None:
    """The party's turns, each once the model is done with the turns before it."""
    for turn in scenario.turns:
        if not isinstance(turn, PartyTurn):
            continue
        what = f"the model's turns before turn {turn.number}"
        await _until(functools.partial(model.reached, turn.index), STEP_SECONDS, call, what)
        await _heard_out(call, model)
        if turn.say is not None:
            await _act(call.say(turn.say, pause_ms=PAUSE_AFTER_WORDS_MS), turn)
        elif turn.press is not None:
            model.party_acted(turn.index)
            await _act(call.press(turn.press), turn)
        elif turn.silence_ms is not None:
            model.party_acted(turn.index)
            await _act(call.silence(turn.silence_ms), turn)
            await asyncio.sleep(turn.silence_ms / 1000)  # time passes: TARS's timers see it
        else:
            model.party_acted(turn.index)
            await call.hang_up()
            return
    await _until(lambda: model.finished, STEP_SECONDS, call, "the model's last turns")
    ends = any(isinstance(t, ModelTurn) and t.tool == "end_call" and not t.refused for t in scenario.turns)
    if ends:
        try:
            await call.wait_ended(STEP_SECONDS)
        except TimeoutError:
            raise Stuck(f"TARS did not hang up within {STEP_SECONDS:.0f} s of the model's end_call") from None
    else:
        await _heard_out(call, model)


async def _act(action: Awaitable[Any], turn: PartyTurn) -> None:
    from tars.sim.twilio import CallEnded

    try:
        await action
    except (CallEnded, TimeoutError) as exc:
        raise Stuck(f"the party could not act at turn {turn.number} ({turn.describe()}): {exc}") from None


async def _heard_out(call: Call, model: ScenarioModel) -> None:
    """Wait until the model's latest words have reached the party and the line is quiet."""
    since = model.last_words_at
    if since is None:
        return
    deadline = time.monotonic() + STEP_SECONDS
    while not call.ended:
        stream = call.stream
        frames = stream.agent_frames if stream is not None else []
        last = frames[-1].at if frames else 0.0
        now = time.monotonic()
        if last > since and now - last >= QUIET_SECONDS:
            return
        if now > deadline:
            raise Stuck("the model's last words never reached the party")
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------ the records


def _seed(scenario: Scenario, project: Project) -> set[int]:
    """Write the scenario's ``given`` rows; return the ids of the given contacts."""
    from tars.store.contacts import Rules, add_contact
    from tars.store.database import connect
    from tars.store.reminders import create_reminder

    ids = set()
    with connect(project.database_url) as db, db.session() as session:
        rules = Rules.of(project)
        for contact in scenario.contacts:
            row = add_contact(
                session,
                rules,
                name=contact["name"],
                phone=contact["phone"],
                relationship=contact.get("relationship"),
                role=contact.get("role", "contact"),
                notes=contact.get("notes"),
            )
            assert row.id is not None
            ids.add(row.id)
        for reminder in scenario.reminders:
            create_reminder(
                session,
                text=reminder["text"],
                when=reminder["when"],
                every=reminder.get("every"),
                timezone=project.owner.timezone,
                now=dt.datetime.now(dt.UTC),
            )
        session.commit()
    return ids


def _read_records(
    project: Project, sid: str, given: set[int], seen: Observed, result: ScenarioResult, original: Project
) -> None:
    from sqlmodel import select

    from tars.store.calls import call_details
    from tars.store.database import connect
    from tars.store.errors import NotFound
    from tars.store.models import Contact, Message, Reminder

    with connect(project.database_url) as db, db.session() as session:
        try:
            details = call_details(session, sid)
        except NotFound:
            result.checks.append(Check("TARS recorded the call", False, "no Call row for this call"))
            return
        call = details.call
        seen.status, seen.failure_reason = call.status, call.failure_reason
        seen.started_at = call.started_at or call.created_at
        seen.outcome = call.outcome
        seen.transcript = [(line.speaker, line.text) for line in details.transcript]
        seen.tool_calls = [
            {"tool": t.tool, "args": t.arguments or {}, "allowed": t.allowed, "result": t.result, "reason": t.reason}
            for t in details.tools
        ]
        reminders = [r for r in session.exec(select(Reminder)) if r.created_at >= call.created_at]
        seen.reminders = [
            {"text": r.text, "due": r.due, "repeat": r.recurrence, "via": r.channel, "status": r.status}
            for r in reminders
        ]
        seen.messages = [
            {"text": m.text, "caller_number": m.caller_number, "caller_name": m.caller_name, "status": m.status}
            for m in session.exec(select(Message))
        ]
        seen.contacts = [
            {"name": c.name, "phone": c.phone, "relationship": c.relationship, "role": c.role}
            for c in session.exec(select(Contact))
            if c.id not in given
        ]
        result.transcript = _transcript(details, original)


def _transcript(details: Any, project: Project) -> list[Entry]:
    """TARS's record of the call: what was said and every tool call, in time order."""
    names = {"assistant": "tars", "caller": "party"}
    timed: list[tuple[dt.datetime, int, Entry]] = []
    for n, line in enumerate(details.transcript):
        timed.append((line.at, n, Entry(names.get(line.speaker, line.speaker), line.text)))
    for n, tool in enumerate(details.tools):
        args = ", ".join(f"{k}={describe_value(v, 60)}" for k, v in (tool.arguments or {}).items())
        if tool.allowed:
            outcome = describe_value(tool.result, 100) if tool.result is not None else "done"
        else:
            outcome = f"refused: {tool.reason}"
        timed.append((tool.at, 10_000 + n, Entry("tool", f"{tool.tool}({args}) → {outcome}", tool.allowed)))
    return [entry for _, _, entry in sorted(timed, key=lambda t: (t[0], t[1]))]
