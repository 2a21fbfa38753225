"""The Gemini text model reading a call transcript: what the emulator answers when TARS asks
for a call's summary or its outcome (``tars.calls.aftercall``), derived from the transcript
in the prompt, deterministically.

A real model reads the transcript and answers from it; so does this one, in a plain way:
the summary repeats who spoke and what the other party said; the outcome picks, for each
enum field of the schema, the value whose words the other party said, and cites those
lines. Where the transcript says nothing, it answers as a model in JSON mode must (a value
that fits the schema) but cites nothing, so an honest caller can tell it is unsupported.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tars.emulators.gemini import text_agent
from tars.emulators.gemini.rest import RestRequest, echo_responder, instance_from_schema

#: One numbered transcript line as TARS writes it: ``[3] caller: We have Wednesday at 3pm``.
OUTCOME_LINE = re.compile(r"^Outcome: (?P<json>.*)$", re.MULTILINE)
LINE = re.compile(r"^\[(?P<n>\d+)\] (?P<speaker>[a-z]+): (?P<text>.*)$", re.MULTILINE)
OTHER_PARTY = "caller"


def transcript_lines(prompt: str) -> list[tuple[int, str, str]]:
    return [(int(m["n"]), m["speaker"], m["text"]) for m in LINE.finditer(prompt)]


def reads_transcript(request: RestRequest) -> bool:
    return bool(transcript_lines(request.text))


def answer(request: RestRequest) -> Any:
    """The summary (text) or the outcome with its evidence (JSON mode)."""
    lines = transcript_lines(request.text)
    if request.json_mode:
        schema, _ = request.schema
        return extraction(schema or {}, lines)
    said = summary(lines)
    found = OUTCOME_LINE.search(request.text)
    try:
        outcome = json.loads(found["json"]) if found else None
    except ValueError:
        outcome = None
    if isinstance(outcome, dict) and outcome:  # the outcome TARS passed along, in words
        status = outcome.get("status")
        rest = ", ".join(f"{k}: {v}" for k, v in outcome.items() if k != "status")
        head = f"The call ended {status}" if status else "The call ended"
        said = f"{head}{f' ({rest})' if rest else ''}. {said}"
    return said


def summary(lines: list[tuple[int, str, str]]) -> str:
    theirs = [text for _, speaker, text in lines if speaker == OTHER_PARTY]
    ours = [text for _, speaker, text in lines if speaker != OTHER_PARTY]
    if not theirs:
        return "The other party never spoke" + (f"; TARS said: “{ours[0]}”." if ours else ".")
    said = " … ".join(f"“{t}”" for t in (theirs[:1] + theirs[-1:] if len(theirs) > 1 else theirs))
    return f"The other party said {said} ({len(theirs)} of {len(lines)} lines)."


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def extraction(schema: dict[str, Any], lines: list[tuple[int, str, str]]) -> Any:
    """``{"outcome": {...}, "evidence": [{"line": n, "quote": "..."}]}`` when the schema asks
    for that shape; otherwise just the outcome."""
    props = schema.get("properties") or {}
    if "outcome" not in props or "evidence" not in props:
        outcome, _ = _outcome(schema, lines)
        return outcome
    outcome, cited = _outcome(props["outcome"], lines)
    evidence = [{"line": n, "quote": text} for n, _, text in lines if n in cited]
    return {"outcome": outcome, "evidence": evidence}


def _outcome(schema: dict[str, Any], lines: list[tuple[int, str, str]]) -> tuple[Any, set[int]]:
    value = instance_from_schema(schema)
    cited: set[int] = set()
    if not isinstance(value, dict):
        return value, cited
    required = set(schema.get("required") or [])
    value = {k: v for k, v in value.items() if k in required}  # nothing optional is made up
    theirs = [(n, _words(text)) for n, speaker, text in lines if speaker == OTHER_PARTY]
    for name, sub in (schema.get("properties") or {}).items():
        for option in sub.get("enum") or []:
            wanted = _words(str(option).replace("_", " "))
            hit = next((n for n, words in theirs if wanted and wanted <= words), None)
            if hit is not None:
                value[name] = option
                cited.add(hit)
                break
    return value, cited


def default_responder(request: RestRequest) -> Any:
    """The emulator's default: a request that declares functions is a text session, answered
    by ``text_agent``; a prompt carrying a numbered call transcript is read as above; any
    other text is echoed (``rest.echo_responder``)."""
    if request.tools and not request.json_mode:
        return text_agent.answer(request)
    return answer(request) if reads_transcript(request) else echo_responder(request)
