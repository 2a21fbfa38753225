"""The Gemini text model after a simulated goal call: the summary it writes, the outcome it reads.

TARS asks the text model (through google-genai, against the Gemini emulator's REST side)
for two things after a goal call (``tars.calls.aftercall``): the outcome, in JSON mode,
when the model recorded none; and a short summary for the owner. A scenario says what
they are (``given.text_model``); without that, the summary is a plain sentence built from
the outcome TARS passes along, and no outcome can be read from the transcript.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tars.emulators.gemini import transcript_reader
from tars.emulators.gemini.rest import RestRequest

OUTCOME_LINE = re.compile(r"^Outcome: (?P<json>.*)$", re.MULTILINE)


class TextModel:
    """A responder for the Gemini emulator's ``generateContent``."""

    def __init__(self, answers: Mapping[str, Any] | None = None):
        self.answers = dict(answers or {})
        self.asked: list[str] = []  # "outcome" or "summary", in order

    def __call__(self, request: RestRequest) -> str:
        read = transcript_reader.answer(request) if transcript_reader.reads_transcript(request) else None
        if request.json_mode:
            self.asked.append("outcome")
            if "outcome" not in self.answers:
                return json.dumps(read if read is not None else {})  # {} fits no outcome schema: none is read
            given = self.answers["outcome"]
            if isinstance(read, dict) and "evidence" in read:  # the scenario's outcome and the words it cites
                quotes = self.answers.get("evidence")
                evidence = read["evidence"] if quotes is None else cite(request.text, quotes)
                return json.dumps({"outcome": given, "evidence": evidence})
            return json.dumps(given)
        self.asked.append("summary")
        return str(self.answers.get("summary") or (read if isinstance(read, str) else plain_summary(request.text)))


def plain_summary(prompt: str) -> str:
    """One sentence on how the call went, from the outcome in TARS's summary prompt."""
    found = OUTCOME_LINE.search(prompt)
    try:
        outcome = json.loads(found["json"]) if found else None
    except ValueError:
        outcome = None
    if not isinstance(outcome, dict) or not outcome:
        return "The call ended without a clear outcome."
    status = outcome.get("status")
    rest = ", ".join(f"{k}: {v}" for k, v in outcome.items() if k != "status")
    head = f"The call ended {status}" if status else "The call ended"
    return f"{head}{f' ({rest})' if rest else ''}."


def cite(prompt: str, quotes: list[str]) -> list[dict[str, Any]]:
    """Each quote with the number of the first transcript line that says it (0 if none does)."""
    lines = transcript_reader.transcript_lines(prompt)
    return [
        {"line": next((n for n, _, text in lines if quote.lower() in text.lower()), 0), "quote": quote}
        for quote in quotes
    ]
