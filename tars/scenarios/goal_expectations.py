"""Expectations of goal calls: outcome, its source, summary, steps, report, retries.

Each one reads what TARS stored on the Call (outcome, ``outcome_source``, summary, the
``[Playbook step: …]`` lines of its transcript, the retry it scheduled) or what reached
the far ends (the report by SMS or delivery webhook, what the party heard).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tars.scenarios.matching import contains, describe_value, mismatch


class GoalCall(Protocol):
    """What a goal call left behind, as these expectations read it (``expectations.Observed``
    is the one there is; it mixes this judge in, so this module names it by what it reads)."""

    status: str | None
    party_heard: list[str]
    outcome: Mapping[str, Any] | None
    outcome_source: str | None
    summary: str | None
    steps: list[str]
    reports: list[dict[str, Any]]
    retries: list[dict[str, Any]] | None


class GoalJudge:
    """The goal-call half of the expectation judge (mixed into ``expectations._Judge``)."""

    seen: GoalCall

    def add(self, what: str, passed: bool, detail: str = "") -> None:
        raise NotImplementedError

    def party_heard(self, words: Sequence[str]) -> None:
        heard = "\n".join(self.seen.party_heard)
        missing = [w for w in words if not contains(heard, w)]
        said = "; ".join(repr(h) for h in self.seen.party_heard[-4:]) or "nothing"
        self.add(
            f"the party heard {', '.join(repr(w) for w in words)}",
            not missing,
            f"not heard: {', '.join(repr(w) for w in missing)} (heard: {said})" if missing else "",
        )

    def outcome(self, wanted: Mapping[str, Any]) -> None:
        if self.seen.outcome is None:
            self.add("outcome", False, "no outcome was recorded or extracted")
            return
        problem = mismatch(wanted, self.seen.outcome, "outcome")
        self.add(f"outcome {describe_value(dict(wanted), 80)}", problem is None, problem or "")

    def outcome_source(self, wanted: str) -> None:
        got = self.seen.outcome_source
        detail = "" if got == wanted else (f"it was {got}" if got else "there is no outcome")
        self.add(f"outcome {wanted}", got == wanted, detail)

    def summary(self, wanted: Mapping[str, Any]) -> None:
        text = self.seen.summary
        exists = wanted.get("exists", True)
        if not exists:
            self.add("no summary", not text, f"there is one: {text!r}" if text else "")
            return
        if not text:
            self.add("summary", False, "the call has no summary")
            return
        words = wanted.get("contains")
        if words is None:
            self.add("summary", True)
            return
        self.add(f"summary mentions {words!r}", contains(text, words), "" if contains(text, words) else repr(text))

    def steps_visited(self, wanted: Sequence[str]) -> None:
        got = self.seen.steps
        shown = " → ".join(got) or "none (the call never reached the model)"
        self.add(f"steps {' → '.join(wanted)}", list(wanted) == got, "" if list(wanted) == got else f"went {shown}")

    def report(self, wanted: Mapping[str, Any]) -> None:
        reports = self.seen.reports
        if not wanted.get("sent", True):
            listing = "; ".join(repr(r["text"]) for r in reports)
            self.add("no report sent", not reports, f"sent: {listing}" if reports else "")
            return
        what = "report" + (f" by {wanted['via']}" if "via" in wanted else "")
        if "contains" in wanted:
            what += f" mentioning {wanted['contains']!r}"
        if not reports:
            self.add(what, False, "no report reached the owner")
            return
        for report in reports:
            if "via" in wanted and report["via"] != wanted["via"]:
                continue
            if "contains" in wanted and not contains(report["text"], wanted["contains"]):
                continue
            self.add(what, True)
            return
        listing = "; ".join(f"by {r['via']}: {r['text']!r}" for r in reports)
        self.add(what, False, f"sent {listing}")

    def retry_scheduled(self, wanted: bool) -> None:
        retries = self.seen.retries or []
        what = "a retry scheduled" if wanted else "no retry scheduled"
        if wanted:
            detail = "" if retries else f"none (the call ended {self.seen.status})"
        else:
            detail = f"attempt {retries[0]['attempt']} at {retries[0]['at']}" if retries else ""
        self.add(what, bool(retries) == wanted, detail)
