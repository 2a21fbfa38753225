"""After a call: a short summary for every call; for a goal call also the outcome (recorded by
the model during the call, extracted after it from the lines it cites, or ``unknown`` with the
reason), both stored on the Call, and the report sent to the owner.

The text work uses the Gemini text model through google-genai (JSON mode with the
playbook's outcome schema for extraction). If the model cannot be reached, the call still
gets a plain summary and the report still goes out; nothing is left half-written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tars.calls.playbook_run import PlaybookRun
from tars.config.schema import validate_value
from tars.endpoints import Endpoints
from tars.project import Project

log = logging.getLogger("tars.aftercall")


#: Who the other party is in a transcript (``CallRecorder``): what they said is the evidence.
OTHER_PARTY = "caller"


def transcript_text(lines: Sequence[tuple[str, str]]) -> str:
    """The spoken lines, numbered from 1 as ``[n] speaker: text`` (system notes left out)."""
    return "\n".join(f"[{n}] {speaker}: {text}" for n, (speaker, text) in enumerate(spoken(lines), 1))


def spoken(lines: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(speaker, text) for speaker, text in lines if speaker != "system"]


async def generate_text(endpoints: Endpoints, model: str, prompt: str, schema: dict[str, Any] | None = None) -> str:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=endpoints.gemini_api_key or "unset", http_options=endpoints.http_options())
    config = types.GenerateContentConfig(temperature=0)
    if schema is not None:
        config = types.GenerateContentConfig(
            temperature=0, response_mime_type="application/json", response_json_schema=schema
        )
    response = await client.aio.models.generate_content(model=model, contents=prompt, config=config)
    return response.text or ""


@dataclass(frozen=True)
class Extraction:
    """An outcome read from the transcript with the lines it rests on, or why there is none."""

    outcome: dict[str, Any] | None
    evidence: tuple[int, ...] = ()
    reason: str | None = None


def evidence_schema(outcome_schema: dict[str, Any]) -> dict[str, Any]:
    """The playbook's outcome schema wrapped so the model must cite the lines it read."""
    cite = {
        "type": "object",
        "properties": {
            "line": {"type": "integer", "description": "the transcript line's number"},
            "quote": {"type": "string", "description": "the words on that line the outcome rests on"},
        },
        "required": ["line", "quote"],
    }
    return {
        "type": "object",
        "properties": {"outcome": outcome_schema, "evidence": {"type": "array", "items": cite}},
        "required": ["outcome", "evidence"],
    }


def _flat(text: str) -> str:
    return " ".join(text.lower().split())


def check_evidence(answer: Any, schema: dict[str, Any], lines: Sequence[tuple[str, str]]) -> Extraction:
    """Keep the model's outcome only if it fits the schema and cites lines the other party said."""
    if not isinstance(answer, dict) or not isinstance(answer.get("outcome"), dict):
        return Extraction(None, reason="the text model gave no outcome")
    outcome = answer["outcome"]
    if validate_value(outcome, schema):
        return Extraction(None, reason="the outcome read from the transcript does not fit the playbook's schema")
    said = spoken(lines)
    cited: list[int] = []
    for item in answer.get("evidence") or []:
        n, quote = (item.get("line"), str(item.get("quote") or "")) if isinstance(item, dict) else (None, "")
        if not isinstance(n, int) or not 1 <= n <= len(said) or not quote.strip():
            continue
        speaker, text = said[n - 1]
        if speaker == OTHER_PARTY and _flat(quote) in _flat(text):
            cited.append(n)
    if not cited:
        return Extraction(None, reason="nothing the other party said supports an outcome")
    return Extraction(outcome, tuple(sorted(set(cited))))


async def extract_outcome(
    project: Project, endpoints: Endpoints, run: PlaybookRun, lines: Sequence[tuple[str, str]]
) -> Extraction:
    """The outcome read from the transcript (JSON mode, citing its lines), or why there is none."""
    if not any(speaker == OTHER_PARTY for speaker, _ in lines):
        return Extraction(None, reason="the other party never spoke")
    schema = run.plan.outcome_schema
    prompt = (
        f"A phone call was made to achieve this goal: {run.plan.goal}\n"
        f"Here is the transcript ('caller' is the other party, 'assistant' is TARS):\n{transcript_text(lines)}\n\n"
        "Return the call's outcome as JSON matching the schema, and in 'evidence' the numbers and exact "
        "words of the other party's lines it rests on. Use only what the transcript says."
    )
    try:
        text = await generate_text(
            endpoints, str(project.section("model").get("text_model")), prompt, evidence_schema(schema)
        )
        answer = json.loads(text)
    except Exception as exc:
        log.warning("could not extract the outcome: %s", exc)
        return Extraction(None, reason=f"the text model could not be asked ({type(exc).__name__})")
    found = check_evidence(answer, schema, lines)
    if found.outcome is None:
        log.warning("no outcome stored from the transcript: %s (%r)", found.reason, answer)
    return found


async def summarize(
    project: Project,
    endpoints: Endpoints,
    about: str,
    outcome: dict[str, Any] | None,
    lines: Sequence[tuple[str, str]],
    fallback: str,
) -> str:
    """A two- or three-sentence summary of the call by the text model, or ``fallback``."""
    prompt = (
        f"Summarise this phone call for {project.owner.name} in two or three sentences: who was on the line, "
        f"what was achieved, anything to follow up.\n{about}\nOutcome: {json.dumps(outcome)}\n"
        f"Transcript ('caller' is the other party, 'assistant' is TARS):\n{transcript_text(lines)}"
    )
    try:
        text = (await generate_text(endpoints, str(project.section("model").get("text_model")), prompt)).strip()
        if text:
            return text
    except Exception as exc:
        log.warning("could not summarise the call: %s", exc)
    return fallback


def report_text(run: PlaybookRun, callee: str, outcome: dict[str, Any] | None, summary: str, how: str = "") -> str:
    verdict = "done" if run.succeeded or (outcome and _success(run, outcome)) else "not done"
    details = ", ".join(f"{k.replace('_', ' ')}: {in_words(v)}" for k, v in (outcome or {}).items())
    return (
        f"TARS call to {callee} ({run.plan.playbook.name}): {verdict}. {summary}"
        + (f" [{details}]" if details else "")
        + (f" ({how})" if how else "")
    )


def in_words(value: Any) -> str:
    """An outcome value as a person reads it in a text: yes/no, not True/False."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "not known"
    if isinstance(value, list):
        return " and ".join(in_words(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')} {in_words(v)}" for k, v in value.items())
    return str(value)


def _success(run: PlaybookRun, outcome: dict[str, Any]) -> bool:
    book = run.plan.playbook
    return book.success_field is None or outcome.get(book.success_field) in book.success_values


#: Sends a finished goal call's report: its text, and the details (kind, playbook, outcome).
Report = Callable[[str, dict[str, Any]], Awaitable[None]]


def unknown_outcome(run: PlaybookRun, reason: str) -> dict[str, Any]:
    """What is stored when no outcome is supported: ``unknown``, and why."""
    return {run.plan.playbook.success_field or "status": "unknown", "reason": reason}


async def wrap_up(session: Any, endpoints: Endpoints, report: Report, callee: str) -> None:
    """Outcome, summary, storage and report for a finished goal call. Never raises."""
    run: PlaybookRun = session.playbook
    project: Project = session.project
    lines = list(session.recorder.lines)
    try:
        if run.recorded:
            outcome, source, how = run.outcome, "recorded", "outcome recorded by the model during the call"
        else:
            found = await extract_outcome(project, endpoints, run, lines)
            if found.outcome is not None:
                cited = ", ".join(str(n) for n in found.evidence)
                outcome, source = found.outcome, "extracted"
                how = f"outcome extracted after the call from transcript line{'s' * (len(found.evidence) > 1)} {cited}"
            else:
                outcome, source = unknown_outcome(run, found.reason or "unknown"), "unknown"
                how = f"outcome unknown: {found.reason}"
        status = (outcome or {}).get(run.plan.playbook.success_field or "status", "unknown")
        fallback = f"Called {callee} ({run.plan.playbook.name}). Outcome: {status}."
        summary = await summarize(project, endpoints, f"Goal: {run.plan.goal}", outcome, lines, fallback)
        changes: dict[str, Any] = {"summary": summary, "outcome": outcome, "outcome_source": source}
        if source == "unknown" and not session.failure:
            changes["failure_reason"] = f"no outcome: {found.reason}"
        await session.recorder.line("system", how)
        await session.recorder.update(**changes)
        reported = None if source == "unknown" else outcome
        await report(
            report_text(run, callee, reported, summary, how),
            {"kind": "call_report", "playbook": run.plan.playbook.name, "outcome": outcome,
             "outcome_source": source, "summary": summary},
        )  # fmt: skip
    except Exception:
        log.exception("wrapping up the goal call failed")


def with_transfers(about: str, transfers: Sequence[str]) -> str:
    """What the call was, and each time the caller was put through (``tars.store.transfers``)."""
    return f"{about}. Transfers: {'; '.join(transfers)}" if transfers else about


async def summarise_call(session: Any, endpoints: Endpoints, about: str, transfers: Sequence[str] = ()) -> None:
    """The summary of a call that followed no playbook (inbound, reminder), with what became of
    each transfer said after it. Never raises."""
    lines = list(session.recorder.lines)
    about = with_transfers(about, transfers)
    if not spoken(lines):
        fallback = f"{about}: nothing was said."
    elif not any(speaker == OTHER_PARTY for speaker, _ in lines):
        fallback = f"{about}: the other party never spoke."
    else:
        fallback = f"{about}: {len(spoken(lines))} lines were spoken."
    try:
        summary = await summarize(session.project, endpoints, about, None, lines, fallback)
        if transfers:
            summary = f"{summary} ({'; '.join(transfers)})"
        await session.recorder.update(summary=summary)
    except Exception:
        log.exception("summarising the call failed")
