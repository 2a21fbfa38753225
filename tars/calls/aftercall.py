"""After a goal call: the outcome (recorded, or extracted from the transcript), a short
summary, both stored on the Call, and the report sent to the owner.

The text work uses the Gemini text model through google-genai (JSON mode with the
playbook's outcome schema for extraction). If the model cannot be reached, the call still
gets a plain summary and the report still goes out; nothing is left half-written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tars.calls.playbook_run import PlaybookRun
from tars.config.schema import validate_value
from tars.endpoints import Endpoints
from tars.project import Project

log = logging.getLogger("tars.aftercall")


def transcript_text(lines: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{speaker}: {text}" for speaker, text in lines if speaker != "system")


async def _generate(endpoints: Endpoints, model: str, prompt: str, schema: dict[str, Any] | None = None) -> str:
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


async def extract_outcome(
    project: Project, endpoints: Endpoints, run: PlaybookRun, lines: Sequence[tuple[str, str]]
) -> dict[str, Any] | None:
    """The outcome read from the transcript (JSON mode), or None if it cannot be."""
    schema = run.plan.outcome_schema
    prompt = (
        f"A phone call was made to achieve this goal: {run.plan.goal}\n"
        f"Here is the transcript:\n{transcript_text(lines)}\n\n"
        "Return the call's outcome as JSON matching the schema. Use only what the transcript says."
    )
    try:
        text = await _generate(endpoints, str(project.section("model").get("text_model")), prompt, schema)
        outcome = json.loads(text)
    except Exception as exc:
        log.warning("could not extract the outcome: %s", exc)
        return None
    if not isinstance(outcome, dict) or validate_value(outcome, schema):
        log.warning("the extracted outcome does not fit the schema: %r", outcome)
        return None
    return outcome


async def summarize(
    project: Project,
    endpoints: Endpoints,
    run: PlaybookRun,
    outcome: dict[str, Any] | None,
    lines: Sequence[tuple[str, str]],
    callee: str,
) -> str:
    prompt = (
        f"Summarise this phone call for {project.owner.name} in two or three sentences: who was called, "
        f"what was achieved, anything to follow up.\nGoal: {run.plan.goal}\nOutcome: {json.dumps(outcome)}\n"
        f"Transcript:\n{transcript_text(lines)}"
    )
    try:
        text = (await _generate(endpoints, str(project.section("model").get("text_model")), prompt)).strip()
        if text:
            return text
    except Exception as exc:
        log.warning("could not summarise the call: %s", exc)
    status = (outcome or {}).get(run.plan.playbook.success_field or "status", "unknown")
    return f"Called {callee} ({run.plan.playbook.name}). Outcome: {status}."


def report_text(run: PlaybookRun, callee: str, outcome: dict[str, Any] | None, summary: str) -> str:
    verdict = "done" if run.succeeded or (outcome and _success(run, outcome)) else "not done"
    details = ", ".join(f"{k.replace('_', ' ')}: {in_words(v)}" for k, v in (outcome or {}).items())
    return f"TARS call to {callee} ({run.plan.playbook.name}): {verdict}. {summary}" + (
        f" [{details}]" if details else ""
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


async def wrap_up(session: Any, endpoints: Endpoints, report: Report, callee: str) -> None:
    """Outcome, summary, storage and report for a finished goal call. Never raises."""
    run: PlaybookRun = session.playbook
    project: Project = session.project
    lines = session.recorder.lines
    try:
        outcome, source = (
            (run.outcome, "recorded")
            if run.recorded
            else (await extract_outcome(project, endpoints, run, lines), "extracted")
        )
        summary = await summarize(project, endpoints, run, outcome, lines, callee)
        changes: dict[str, Any] = {"summary": summary}
        if outcome is not None:
            changes.update(outcome=outcome, outcome_source=source)
        elif not session.failure:
            changes["failure_reason"] = "no outcome was recorded or could be read from the transcript"
        await session.recorder.update(**changes)
        await report(
            report_text(run, callee, outcome, summary),
            {"kind": "call_report", "playbook": run.plan.playbook.name, "outcome": outcome, "summary": summary},
        )
    except Exception:
        log.exception("wrapping up the goal call failed")
