"""Running a scenario: the real TARS server on a loopback line, the script on both ends.

For each scenario: a fresh state folder (its own SQLite database, seeded with the
scenario's ``given``), the Twilio and Gemini emulators and a webhook receiver, and the
project's own server code between them (``tars.sim.line``). The model follows the
script through ``ScenarioModel``; the party side is played here on the Twilio
emulator's call (``say``, ``press``, ``silence``, ``hang_up``), each party turn once the
model has finished the turns before it and its words have been heard. Afterwards the
call's records are read back and the expectations checked.

An inbound scenario rings TARS from the party's number. A goal call (``direction:
outbound``) is placed the way `tars call` places one: ``POST /api/calls`` with the
server's API token; the Twilio emulator answers it as the scenario says (a person,
voicemail, busy, no answer), and the owner's ``owner: {texts: …}`` turns reach the
server as Twilio's signed SMS webhook.

Nothing reaches Google or Twilio, and the owner's real database is never opened.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from tars.sim import records
from tars.sim.expectations import Check, Observed, check
from tars.sim.records import Entry
from tars.sim.scenario import E164, ModelTurn, OwnerTurn, PartyTurn, Scenario

if TYPE_CHECKING:
    from tars.sim.line import Line
    from tars.sim.scenario_model import ScenarioModel
    from tars.sim.twilio import Call

__all__ = ["Entry", "ScenarioResult", "run_all", "run_one", "run_scenario"]

#: How long the party waits for any one thing (the model's turn, its words, the hang-up).
STEP_SECONDS = 15.0
#: Quiet on the line (no agent audio) that tells the party the model has finished speaking.
QUIET_SECONDS = 0.4
#: Silence after each thing the party says. Without a realtime clock no audio flows between
#: utterances, so the pause must outlast the model's end-of-speech wait (500 ms) plus the
#: ~100 ms pipecat keeps buffered on the way in.
PAUSE_AFTER_WORDS_MS = 1000
#: A moment of line noise when the callee picks up, before they speak: it primes the audio
#: path into the model (resampler, turn detection) so their first words arrive whole.
PICK_UP_SILENCE_MS = 300
#: How long a goal call that ended busy or unanswered may take to get its retry decided.
FOLLOW_UP_SECONDS = 5.0


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
    party_name: str | None = None  # their name, if TARS knows one (the business, the contact, the owner)
    state_dir: str | None = None
    call_id: int | None = None  # TARS's Call row (in the scenario's state folder)
    seen: Observed = field(default_factory=Observed)

    @property
    def outbound(self) -> bool:
        return self.scenario.call.outbound

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name, "file": self.scenario.file,
            "description": self.scenario.description, "status": self.status, "reason": self.reason,
            "seconds": round(self.seconds, 2), "call_sid": self.call_sid, "party": self.party,
            "state_dir": self.state_dir, "call_status": self.seen.status, "checks": [c.to_json() for c in self.checks],
            "transcript": [e.to_json() for e in self.transcript],
            **({"playbook": self.scenario.call.playbook, "outcome": self.seen.outcome,
                "outcome_source": self.seen.outcome_source, "summary": self.seen.summary,
                "steps": self.seen.steps} if self.outbound else {}),
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
    jobs: int = 1,
) -> list[ScenarioResult]:
    """Run scenarios (each with its own state folder and its own line), ``jobs`` at a time;
    report each as it ends; return the results in the order of ``scenarios``."""

    async def one(scenario: Scenario, gate: asyncio.Semaphore) -> ScenarioResult:
        async with gate:
            with _state_folder(keep_state, scenario.name) as state:
                result = await run_scenario(scenario, project, state)
                if keep_state is not None:
                    result.state_dir = str(state)
        on_result(result)
        return result

    async def main() -> list[ScenarioResult]:
        gate = asyncio.Semaphore(max(1, jobs))
        return list(await asyncio.gather(*(one(s, gate) for s in scenarios)))

    with _loopback_without_proxy():
        return asyncio.run(main())


def run_one(
    scenario: Scenario, project: Project, state_dir: Path, show: Callable[[Entry], None] | None = None
) -> ScenarioResult:
    """Run one scenario in ``state_dir`` (kept by the caller), showing its rows as they are made."""
    with _loopback_without_proxy():
        return asyncio.run(run_scenario(scenario, project, state_dir, show=show))


@contextlib.contextmanager
def _state_folder(keep: Path | None, name: str) -> Iterator[Path]:
    if keep is not None:
        folder = keep / name
        if folder.exists():
            strangers = [p.name for p in folder.iterdir() if not p.name.startswith("tars.db")]
            if strangers:
                from tars.errors import UserError

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


async def run_scenario(
    scenario: Scenario, project: Project, state_dir: Path, *, show: Callable[[Entry], None] | None = None
) -> ScenarioResult:
    """Play one scenario against the real server in this event loop. ``show`` (goal calls) is
    handed each transcript line and tool call as TARS records it."""
    from tars.sim.line import Line, for_simulation
    from tars.sim.scenario_model import ScenarioModel
    from tars.sim.text_model import TextModel
    from tars.sim.twilio import Party

    started = time.monotonic()
    sim = for_simulation(project, state_dir)
    given_contacts = await asyncio.to_thread(records.seed, scenario, sim)
    model = ScenarioModel(scenario.turns)
    outbound = scenario.call.outbound
    caller = scenario.call.from_ or "unknown"
    number = scenario.target_number(project) if outbound else scenario.number_of(caller, project)
    result = ScenarioResult(
        scenario, "failed", party=_who(scenario, project, number), party_name=_name(scenario, project)
    )
    seen = result.seen
    text_model = TextModel(scenario.text_model)
    limits = scenario.gemini_limits
    async with Line(sim, lambda: model, responder=text_model, **limits) as line:
        for name, reply in scenario.webhook_replies.items():
            line.webhooks.reply(name, int(reply.get("status", 200)), reply.get("reply"))
        for phone, party in scenario.phone_parties(project).items():
            line.twilio.set_party(phone, Party(**party))
        if outbound:
            line.twilio.set_party(number, Party(answer=scenario.call.answer))
            call = await _place(scenario, line, result)
        else:
            call = await line.call_in(number, Party(gather=list(scenario.call.keypad)))
        if call is not None:
            result.call_sid = call.sid
            watching = records.Watching(sim, result.call_id, show) if show and result.call_id is not None else None
            try:
                await _play_party(scenario, call, model, line)
            except Stuck as exc:
                result.checks.append(Check("the script ran to the end", False, _stuck(str(exc), model)))
            if not call.ended:
                await call.hang_up()
            with contextlib.suppress(TimeoutError):  # the last rows and notices are written as the call closes
                await line.settle(STEP_SECONDS)
            if outbound and "retry_scheduled" in scenario.expect and result.call_id is not None:
                await _follow_up_decided(line, result.call_id)
            if watching is not None:
                await watching.stop()
            seen.party_heard = [u.text for u in call.heard]
        sessions = line.gemini.sessions
        seen.offered = sessions[0].tool_names if sessions else None
        seen.greeting = model.greeting
        seen.sms = [{"to": m.to, "body": m.body} for m in line.twilio.messages]
        seen.webhooks = [{"name": r.name, "payload": r.payload} for r in line.webhooks.requests]
        seen.reports = records.reports_in(seen.sms, seen.webhooks, project.owner.phone)
        emulator_errors = (
            [str(e) for e in line.twilio.errors]
            + list(line.gemini.errors)
            + [f"Gemini closed the socket: {v.reason}" for v in line.gemini.violations]
        )
    if call is not None:
        start = project.playbooks[scenario.call.playbook].start.id if outbound and scenario.call.playbook else None
        which = result.call_id if result.call_id is not None else call.sid
        details = await asyncio.to_thread(records.read, sim, which, given_contacts, seen, start)
        if details is None:
            result.checks.append(Check("TARS recorded the call", False, "no Call row for this call"))
        else:
            result.call_id = details.call.id
            result.transcript = records.transcript(details)
    result.checks[:0] = model.checks
    if emulator_errors:
        result.checks.append(Check("the emulators saw no errors", False, "; ".join(emulator_errors)))
    if call is not None:
        contact = next((c["name"] for c in scenario.contacts if c["phone"] == number), None)
        result.checks += check(scenario.expect, seen, project, lambda who: scenario.number_of(who, project), contact)
    result.status = "failed" if result.failures else "passed"
    result.seconds = time.monotonic() - started
    return result


async def _place(scenario: Scenario, line: Line, result: ScenarioResult) -> Call | None:
    """Ask the server for the goal call, as `tars call` does; the Twilio emulator's call, or None."""
    status, answer = await line.place_goal_call(
        scenario.call.target or "", scenario.call.playbook or "", scenario.call.inputs
    )
    if status != 201:
        error = answer.get("error") if isinstance(answer, dict) else answer
        result.checks.append(Check("TARS placed the call", False, f"POST /api/calls answered {status}: {error}"))
        return None
    result.call_id = int(answer["call_id"])
    try:
        return await line.twilio.next_call(timeout=STEP_SECONDS)
    except TimeoutError:
        result.checks.append(Check("TARS placed the call", False, "Twilio was never asked to dial"))
        return None


def _name(scenario: Scenario, project: Project) -> str | None:
    """The other party's name, as TARS's views show it; None for an unknown caller."""
    if scenario.call.outbound:
        entry = project.directory.get(scenario.call.target or "")
        return (entry.name or scenario.call.target) if entry is not None else scenario.call.target
    who = scenario.call.from_ or "unknown"
    if who == "owner":
        return project.owner.name
    return None if who == "unknown" or E164.match(who) else who


def _who(scenario: Scenario, project: Project, number: str) -> str:
    if scenario.call.outbound:
        target = scenario.call.target or number
        entry = project.directory.get(target)
        name = (entry.name or target) if entry is not None else target
        return number if name == number else f"{name} ({number})"
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


async def _play_party(scenario: Scenario, call: Call, model: ScenarioModel, line: Line) -> None:
    """The party's (and the owner's) turns, each once the model is done with the turns before it."""
    if not scenario.turns:  # a goal call nobody answers in person: it ends by itself
        try:
            await call.wait_ended(STEP_SECONDS)
        except TimeoutError:
            raise Stuck(f"the call was still {call.status} after {STEP_SECONDS:.0f} s") from None
        return
    if scenario.call.outbound:  # the callee speaks once the line is through to the model
        await _until(lambda: model.session is not None, STEP_SECONDS, call, "TARS to connect the model")
        await call.silence(PICK_UP_SILENCE_MS)
    for turn in scenario.turns:
        if isinstance(turn, OwnerTurn):
            await _owner_replies(turn, call, model, line)
            continue
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
            await _keep_quiet(call, turn, turn.silence_ms)
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


async def _owner_replies(turn: OwnerTurn, call: Call, model: ScenarioModel, line: Line) -> None:
    """Once TARS has texted the owner its question (ask_owner is waiting), the owner texts back."""

    def asked() -> bool:  # one more question texted to the owner than they have answered
        return model.awaiting_owner(turn.index) and len(line.questions_texted()) > line.owner_replies

    await _until(asked, STEP_SECONDS, call, f"TARS to text the owner its question (turn {turn.number})")
    model.owner_acted(turn.index)
    status = (await line.owner_texts(turn.texts)).status
    if status != 200:
        raise Stuck(f"the server answered {status} to the owner's text at turn {turn.number}")


async def _keep_quiet(call: Call, turn: PartyTurn, ms: int) -> None:
    """Say nothing for ``ms``: the silence is sent, and that much time passes for TARS's timers;
    a hang-up meanwhile (TARS's, or the model service's session running out) ends it early."""
    try:
        await _act(call.silence(ms), turn)
    except ConnectionError:  # the stream closed under the silence: the call is ending
        try:
            await asyncio.wait_for(call.ended_event.wait(), STEP_SECONDS)
        except TimeoutError:
            raise Stuck(f"the media stream closed at turn {turn.number} but the call did not end") from None
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(call.ended_event.wait(), ms / 1000)


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


async def _follow_up_decided(line: Line, call_id: int) -> None:
    """Wait (briefly) until the scheduler has decided whether a busy or unanswered call is retried."""
    from tars.store.calls import get_call

    assert line.server is not None
    server = line.server.server
    deadline = time.monotonic() + FOLLOW_UP_SECONDS
    while time.monotonic() < deadline:
        row = await server.db(lambda s: get_call(s, call_id))
        if row.status not in ("busy", "no-answer") or getattr(row, "follow_up", None) is not None:
            return
        await asyncio.sleep(0.1)
