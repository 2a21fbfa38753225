"""A simulated call's records: what the scenario gives beforehand, what TARS stored, and
keeping the call afterwards.

``seed`` writes the scenario's ``given`` rows into the simulation's fresh database;
``read`` fills an ``Observed`` from TARS's own rows once the call is over; ``Watch``
follows the rows while the call runs (the live view of `tars call --simulate`);
``keep_call`` copies a finished call into another database (the project's own), so a
simulated call can be looked at with `tars calls show` like a real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tars.project import Project
from tars.scenarios.expectations import Observed
from tars.scenarios.matching import describe_value

if TYPE_CHECKING:
    from tars.scenarios.scenario import Scenario

STEP_LINE = re.compile(r"^\[Playbook step: (?P<step>[^\]]+)\]")
FINISHED_LINE = "[Playbook] All steps are done"
#: How the after-call report starts (``tars.calls.aftercall.report_text``): tells it from other texts.
REPORT_PREFIX = "TARS call to "
#: A call copied out of a simulation keeps its emulator SID behind this prefix.
SIMULATED_SID = "sim-"
SIMULATED_SUMMARY = "[simulated] "
#: How often the live view (``Watching``) looks for new transcript lines and tool calls.
WATCH_SECONDS = 0.2
#: Alembic keeps its migration context in module globals: one migration at a time per process.
_MIGRATING = threading.Lock()


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


# ------------------------------------------------------------------------------ before the call


def seed(scenario: Scenario, project: Project) -> set[int]:
    """Write the scenario's ``given`` rows; return the ids of the given contacts."""
    from tars.store.contacts import Rules, add_contact
    from tars.store.database import open_database
    from tars.store.reminders import create_reminder

    ids = set()
    with _MIGRATING:  # the fresh database is created (migrated) here, before the server opens it
        database = open_database(project.database_url)
    with contextlib.closing(database) as db, db.session() as session:
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


# ------------------------------------------------------------------------------ after the call


def read(project: Project, call: int | str, given: set[int], seen: Observed, playbook_start: str | None) -> Any:
    """Fill ``seen`` from TARS's rows for ``call``; return the CallDetails (None: no such call)."""
    from sqlmodel import select

    from tars.store.calls import call_details
    from tars.store.database import connect
    from tars.store.errors import NotFound
    from tars.store.models import Call, Contact, Message, Reminder

    with connect(project.database_url) as db, db.session() as session:
        try:
            details = call_details(session, call)
        except NotFound:
            return None
        row = details.call
        seen.status, seen.failure_reason = row.status, row.failure_reason
        seen.started_at = row.started_at or row.created_at
        seen.outcome, seen.outcome_source, seen.summary = row.outcome, row.outcome_source, row.summary
        seen.transcript = [(line.speaker, line.text) for line in details.transcript]
        seen.tool_calls = [
            {"tool": t.tool, "args": t.arguments or {}, "allowed": t.allowed, "result": t.result, "reason": t.reason}
            for t in details.tools
        ]
        if playbook_start is not None:
            seen.steps = steps_of(seen.transcript, playbook_start if seen.offered is not None else None)
            seen.retries = [
                {"attempt": r.attempt, "at": r.scheduled_at.isoformat() if r.scheduled_at else None}
                for r in session.exec(select(Call).where(Call.retry_of == row.id))
            ]
        reminders = [r for r in session.exec(select(Reminder)) if r.created_at >= row.created_at]
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
        return details


def steps_of(transcript: Iterable[tuple[str, str]], start: str | None) -> list[str]:
    """The playbook steps a goal call went through: ``start`` (if the model was reached), then each
    step TARS moved to (its ``[Playbook step: …]`` lines), and ``end`` if the playbook was finished."""
    steps = [start] if start else []
    for speaker, text in transcript:
        if speaker != "system":
            continue
        found = STEP_LINE.match(text)
        if found:
            steps.append(found["step"])
        elif text.startswith(FINISHED_LINE):
            steps.append("end")
    return steps


def reports_in(
    sms: Iterable[Mapping[str, Any]], webhooks: Iterable[Mapping[str, Any]], owner: str
) -> list[dict[str, Any]]:
    """The after-call reports among what reached the far ends: texts to the owner, delivery webhooks."""
    reports: list[dict[str, Any]] = [
        {"via": "sms", "text": m["body"]} for m in sms if m["to"] == owner and m["body"].startswith(REPORT_PREFIX)
    ]
    for hook in webhooks:
        payload = hook.get("payload")
        if hook["name"] == "delivery" and isinstance(payload, Mapping) and payload.get("kind") == "call_report":
            reports.append({"via": "webhook", "text": str(payload.get("text", ""))})
    return reports


def transcript(details: Any) -> list[Entry]:
    """TARS's record of the call: what was said and every tool call, in time order."""
    return [entry for _, entry in _timed(details.transcript, details.tools)]


def _timed(lines: Iterable[Any], tools: Iterable[Any]) -> list[tuple[tuple[dt.datetime, int, int], Entry]]:
    names = {"assistant": "tars", "caller": "party"}
    timed = [((line.at, 0, line.id or 0), Entry(names.get(line.speaker, line.speaker), line.text)) for line in lines]
    for tool in tools:
        args = ", ".join(f"{k}={describe_value(v, 60)}" for k, v in (tool.arguments or {}).items())
        if tool.allowed:
            outcome = describe_value(tool.result, 100) if tool.result is not None else "done"
        else:
            outcome = f"refused: {tool.reason}"
        entry = Entry("tool", f"{tool.tool}({args}) → {outcome}", tool.allowed)
        timed.append(((tool.at, 1, tool.id or 0), entry))
    return sorted(timed, key=lambda t: t[0])


class Watch:
    """Follows a call's rows while it runs, handing each new transcript line or tool call to ``show``."""

    def __init__(self, project: Project, show: Callable[[Entry], None]):
        self.project = project
        self.show = show
        self.seen: set[tuple[str, int]] = set()
        self._database: Any = None

    def poll(self, call: int) -> None:
        """Show what is new on ``call`` (run in a worker thread)."""
        from sqlmodel import select

        from tars.store.database import open_database
        from tars.store.models import ToolInvocation, TranscriptLine

        if self._database is None:
            self._database = open_database(self.project.database_url, migrate=False)
        with self._database.session() as session:
            lines = [r for r in session.exec(select(TranscriptLine).where(TranscriptLine.call_id == call))]
            tools = [r for r in session.exec(select(ToolInvocation).where(ToolInvocation.call_id == call))]
        fresh_lines = [r for r in lines if ("line", r.id) not in self.seen]
        fresh_tools = [r for r in tools if ("tool", r.id) not in self.seen]
        self.seen.update(("line", r.id) for r in fresh_lines)
        self.seen.update(("tool", r.id) for r in fresh_tools)
        for _, entry in _timed(fresh_lines, fresh_tools):
            self.show(entry)

    def close(self) -> None:
        if self._database is not None:
            self._database.close()
            self._database = None


class Watching:
    """The live view's poller: shows new rows every ``WATCH_SECONDS`` until stopped."""

    def __init__(self, project: Project, call_id: int, show: Callable[[Entry], None]):
        self.watch = Watch(project, show)
        self.call_id = call_id
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self.watch.poll, self.call_id)
            await asyncio.sleep(WATCH_SECONDS)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await asyncio.to_thread(self.watch.poll, self.call_id)  # whatever came last
        self.watch.close()


# ------------------------------------------------------------------------------ keeping a call


def keep_call(source: Project, target: Project, call: int, contact_id: int | None) -> int:
    """Copy ``call`` (row, transcript, tool calls) from ``source``'s database into ``target``'s;
    return its id there. The copy is marked simulated (``sim-`` SID, ``[simulated]`` summary)
    and is never retried or placed: it is a finished record, nothing more."""
    from tars.store.calls import call_details
    from tars.store.database import connect
    from tars.store.models import Call, ToolInvocation, TranscriptLine

    with connect(source.database_url) as db, db.session() as session:
        details = call_details(session, call)
        row = details.call.model_dump()
        lines = [line.model_dump() for line in details.transcript]
        tools = [tool.model_dump() for tool in details.tools]
    unset = ("id", "retry_of", "lease_owner", "lease_expires_at", "live_on", "live_until", "scheduled_at")
    copy = {k: v for k, v in row.items() if k not in unset}
    copy["sid"] = SIMULATED_SID + (row["sid"] or f"call-{row['id']}")
    copy["contact_id"] = contact_id
    copy["summary"] = (SIMULATED_SUMMARY + (row["summary"] or "")).strip()
    if row["status"] in ("busy", "no-answer") or row.get("follow_up") is not None:
        copy["follow_up"] = "none"  # a real server must never place a retry of a simulated call
    with connect(target.database_url) as db, db.session() as session:
        kept = Call(**copy)
        session.add(kept)
        session.flush()
        assert kept.id is not None
        for line in lines:
            session.add(TranscriptLine(**{**line, "id": None, "call_id": kept.id}))
        for tool in tools:
            session.add(ToolInvocation(**{**tool, "id": None, "call_id": kept.id}))
        session.commit()
        return kept.id
