"""A scenario's ``expect:`` section, checked against what the call left behind.

What is observed (``Observed``) comes from TARS's own records (the Call row, its
transcript and tool invocations, reminders, messages and contacts in the database) and
from the far ends (the tools offered to the Gemini emulator, the SMS the Twilio emulator
sent and what the party heard, the webhook requests the loopback receiver took). Goal
calls' own expectations (outcome, summary, steps, report, retries) are in
``goal_expectations``. Each expectation becomes one
``Check``: passed or not, and in words what was expected and what happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tars.project import Project
from tars.scenarios.goal_expectations import GoalJudge
from tars.scenarios.matching import Check, contains, describe_value, mismatch

__all__ = ["Check", "Observed", "check", "describe_value", "mismatch"]


@dataclass
class Observed:
    """What the call left behind (rows as plain dicts, in the order they were made)."""

    status: str | None = None
    failure_reason: str | None = None
    started_at: dt.datetime | None = None
    greeting: str | None = None  # the words TARS asked the model to greet with
    offered: list[str] | None = None  # None: the model was never connected
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (speaker, text)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # tool, args, allowed, result, reason
    reminders: list[dict[str, Any]] = field(default_factory=list)  # text, due (UTC), repeat, via, status
    messages: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)  # added during the call
    sms: list[dict[str, Any]] = field(default_factory=list)  # to, body
    webhooks: list[dict[str, Any]] = field(default_factory=list)  # name, payload
    party_heard: list[str] = field(default_factory=list)  # what the other party heard, in order
    # goal calls
    outcome: Mapping[str, Any] | None = None
    outcome_source: str | None = None
    summary: str | None = None
    steps: list[str] = field(default_factory=list)  # the playbook steps the call went through
    reports: list[dict[str, Any]] = field(default_factory=list)  # via, text: the after-call report(s)
    retries: list[dict[str, Any]] | None = None  # scheduled attempts after busy/no answer (None: not looked)


# ------------------------------------------------------------------------------ the checks


class _Judge(GoalJudge):
    def __init__(
        self,
        expect: Mapping[str, Any],
        seen: Observed,
        project: Project,
        number_of: Callable[[str], str],
        caller_name: str | None,
    ):
        self.expect = expect
        self.seen = seen
        self.project = project
        self.number_of = number_of
        self.caller_name = caller_name
        self.checks: list[Check] = []

    def add(self, what: str, passed: bool, detail: str = "") -> None:
        self.checks.append(Check(what, passed, detail))

    def run(self) -> list[Check]:
        for key, value in self.expect.items():
            getattr(self, key)(value)
        return self.checks

    def call_status(self, want: str) -> None:
        got = self.seen.status
        why = f" ({self.seen.failure_reason})" if self.seen.failure_reason else ""
        self.add(f"call status {want}", got == want, "" if got == want else f"the call ended {got}{why}")

    def greeting(self, kind: str) -> None:
        from tars.calls import instructions

        now = instructions.local_now(self.project, self.seen.started_at)
        name = self.caller_name if kind == "contact" else None
        words = instructions.greeting(self.project, kind, instructions.template_values(self.project, now, name))
        got = self.seen.greeting
        announced = f"{words} {instructions.recording_notice(self.project)}"  # a recorded role's notice follows
        self.add(
            f"greeted with the {kind} greeting",
            got in (words, announced),
            "" if got == words else f"TARS asked for {got!r}; the {kind} greeting is {words!r}",
        )

    def tools_offered(self, names: Sequence[str]) -> None:
        offered = self.seen.offered
        if offered is None:
            self.add("tools offered", False, "the model was never connected")
            return
        missing = [n for n in names if n not in offered]
        extra = [n for n in offered if n not in names]
        problems = ([f"not offered: {', '.join(missing)}"] if missing else []) + (
            [f"also offered: {', '.join(extra)}"] if extra else []
        )
        self.add(f"offered exactly {', '.join(names) or 'no tools'}", not problems, "; ".join(problems))

    def tools_not_offered(self, names: Sequence[str]) -> None:
        offered = self.seen.offered or []
        wrong = [n for n in names if n in offered]
        self.add(f"not offered {', '.join(names)}", not wrong, f"offered: {', '.join(wrong)}" if wrong else "")

    def tool_calls(self, wanted: Sequence[Mapping[str, Any]]) -> None:
        got = self.seen.tool_calls
        shown = ", ".join(f"{c['tool']} ({'allowed' if c['allowed'] else 'refused'})" for c in got) or "none"
        what = (
            "tool calls "
            + ", ".join(
                f"{w['tool']}" + ("" if "allowed" not in w else " (allowed)" if w["allowed"] else " (refused)")
                for w in wanted
            )
            if wanted
            else "no tool calls"
        )
        if len(got) != len(wanted):
            self.add(what, False, f"TARS recorded {len(got)}: {shown}")
            return
        for i, (want, call) in enumerate(zip(wanted, got, strict=True)):
            problem = self._tool_call(want, call)
            if problem:
                self.add(what, False, f"call {i + 1}: {problem} (recorded: {shown})")
                return
        self.add(what, True)

    @staticmethod
    def _tool_call(want: Mapping[str, Any], call: Mapping[str, Any]) -> str | None:
        if call["tool"] != want["tool"]:
            return f"expected {want['tool']}, got {call['tool']}"
        if "allowed" in want and call["allowed"] != want["allowed"]:
            return f"{call['tool']} was {'allowed' if call['allowed'] else 'refused'}"
        for key in ("args", "result"):
            if key in want:
                problem = mismatch(want[key], call.get(key) or {}, key)
                if problem:
                    return problem
        if "reason" in want and not contains(call.get("reason"), want["reason"]):
            return f"the reason {call.get('reason')!r} does not mention {want['reason']!r}"
        return None

    # --- rows: exact lists, any order
    def _rows(
        self,
        kind: str,
        wanted: Sequence[Mapping[str, Any]],
        got: list[dict[str, Any]],
        matches: Callable[[Mapping[str, Any], dict[str, Any]], str | None],
    ) -> None:
        what = f"{kind}: {len(wanted) if wanted else 'none'}"
        if len(got) != len(wanted):
            listing = "; ".join(describe_value(row, 100) for row in got) or "none"
            self.add(what, False, f"expected {len(wanted)}, found {len(got)}: {listing}")
            return
        free = list(got)
        for want in wanted:
            reasons = [(row, matches(want, row)) for row in free]
            hit = next((row for row, problem in reasons if problem is None), None)
            if hit is None:
                closest = reasons[0][1] if reasons else "nothing left to match"
                self.add(what, False, f"none matches {describe_value(dict(want))}: {closest}")
                return
            free.remove(hit)
        self.add(what, True)

    def reminders(self, wanted: Sequence[Mapping[str, Any]]) -> None:
        from tars import timeparse

        tz = self.project.owner.timezone

        def matches(want: Mapping[str, Any], row: dict[str, Any]) -> str | None:
            for key in ("text", "repeat", "via", "status"):
                if key in want and row.get(key) != want[key]:
                    return f"{key} is {row.get(key)!r}, expected {want[key]!r}"
            if "due" in want:
                due = self._time(want["due"])
                if abs((row["due"] - due).total_seconds()) > 60:
                    shown = timeparse.show(row["due"], tz)
                    return f"due {shown}, expected {timeparse.show(due, tz)} ({want['due']}, {tz})"
            return None

        self._rows("reminders created", wanted, self.seen.reminders, matches)

    def _time(self, words: str) -> dt.datetime:
        from tars import timeparse

        now = self.seen.started_at or dt.datetime.now(dt.UTC)
        return timeparse.parse_time(words, self.project.owner.timezone, now)

    def messages(self, wanted: Sequence[Mapping[str, Any]]) -> None:
        def matches(want: Mapping[str, Any], row: dict[str, Any]) -> str | None:
            checks = {"text": row["text"], "caller_name": row.get("caller_name"), "status": row.get("status")}
            for key, value in checks.items():
                if key in want and value != want[key]:
                    return f"{key} is {value!r}, expected {want[key]!r}"
            if "caller_number" in want and row.get("caller_number") != self.number_of(want["caller_number"]):
                return f"caller_number is {row.get('caller_number')!r}, expected {want['caller_number']!r}"
            if "text_contains" in want and not contains(row["text"], want["text_contains"]):
                return f"the text {row['text']!r} does not contain {want['text_contains']!r}"
            return None

        self._rows("messages taken", wanted, self.seen.messages, matches)

    def contacts(self, wanted: Sequence[Mapping[str, Any]]) -> None:
        def matches(want: Mapping[str, Any], row: dict[str, Any]) -> str | None:
            for key in ("name", "phone", "relationship", "role"):
                if key in want and row.get(key) != want[key]:
                    return f"{key} is {row.get(key)!r}, expected {want[key]!r}"
            return None

        self._rows("contacts added", wanted, self.seen.contacts, matches)

    def sms(self, wanted: Sequence[Mapping[str, Any]]) -> None:
        def matches(want: Mapping[str, Any], row: dict[str, Any]) -> str | None:
            if "to" in want and row["to"] != self.number_of(want["to"]):
                return f"sent to {row['to']}, expected {want['to']}"
            if "body" in want and row["body"] != want["body"]:
                return f"the text is {row['body']!r}"
            if "body_contains" in want and not contains(row["body"], want["body_contains"]):
                return f"the text {row['body']!r} does not contain {want['body_contains']!r}"
            return None

        self._rows("SMS sent", wanted, self.seen.sms, matches)

    def webhooks(self, wanted: Sequence[Mapping[str, Any]]) -> None:
        def matches(want: Mapping[str, Any], row: dict[str, Any]) -> str | None:
            if row["name"] != want["name"]:
                return f"sent to {row['name']}, expected {want['name']}"
            return mismatch(want.get("payload", {}), row.get("payload"), "payload")

        self._rows("webhooks sent", wanted, self.seen.webhooks, matches)

    def transcript_contains(self, words: Sequence[str]) -> None:
        text = "\n".join(t for _, t in self.seen.transcript)
        missing = [w for w in words if not contains(text, w)]
        self.add(
            f"transcript mentions {', '.join(repr(w) for w in words)}",
            not missing,
            f"not found: {', '.join(repr(w) for w in missing)}" if missing else "",
        )

    def transcript_excludes(self, words: Sequence[str]) -> None:
        text = "\n".join(t for _, t in self.seen.transcript)
        found = [w for w in words if contains(text, w)]
        self.add(
            f"transcript never mentions {', '.join(repr(w) for w in words)}",
            not found,
            f"found: {', '.join(repr(w) for w in found)}" if found else "",
        )


def check(
    expect: Mapping[str, Any],
    seen: Observed,
    project: Project,
    number_of: Callable[[str], str],
    caller_name: str | None = None,
) -> list[Check]:
    """One Check per expectation, in the order they are written."""
    return _Judge(expect, seen, project, number_of, caller_name).run()
