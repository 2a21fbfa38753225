"""What the model is told: the system instruction and the first words, from the YAML.

The system instruction is rendered from the persona, the owner's profile, the caller's
role and what it may do, and the date and time in the owner's timezone. For a goal call
it adds the playbook's goal and the first step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from tars.graph.call_plan import CallPlan, render
from tars.project import Persona, Project

_VERBOSITY = {
    "brief": "Keep every reply to one or two short sentences; this is a phone call.",
    "normal": "Keep replies short and conversational; this is a phone call.",
    "chatty": "You may be conversational and warm, but let the other person speak.",
}
_STYLE = {
    "butler": "You speak like a discreet, formal butler with a dry wit.",
    "professional": "You speak like a capable, courteous executive assistant.",
    "friendly": "You speak warmly and casually, like a helpful friend.",
    "concise": "You speak plainly and economically.",
}


def time_of_day(now: dt.datetime) -> str:
    """The part of the day a greeting names: morning 05:00-12:00, afternoon 12:00-18:00, evening otherwise
    (small hours included: "Good evening" at 01:00, never "Good afternoon")."""
    hour = now.hour
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 18:
        return "afternoon"
    return "evening"


def local_now(project: Project, now: dt.datetime | None = None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(project.owner.timezone))


def template_values(project: Project, now: dt.datetime, caller_name: str | None = None) -> dict[str, str]:
    return {
        "owner_name": project.owner.name,
        "assistant_name": project.persona.name,
        "caller_name": caller_name or "there",
        "time_of_day": time_of_day(now),
        "today": now.strftime("%A %d %B %Y"),
        "now": now.strftime("%H:%M"),
    }


def persona_lines(persona: Persona) -> list[str]:
    lines = [f"You are {persona.name}, a personal phone assistant."]
    if persona.nationality:
        lines.append(f"Your manner and idiom are {persona.nationality}.")
    lines.append(_STYLE.get(persona.style, ""))
    lines.append(f"Humour: {persona.humor}/100. Honesty: {persona.honesty}/100 (higher is blunter).")
    lines.append(_VERBOSITY.get(persona.verbosity, ""))
    if persona.style_notes:
        lines.append(persona.style_notes.strip())
    return [line for line in lines if line]


def inbound_instruction(
    project: Project, role: str, caller_name: str | None, number: str, now: dt.datetime, tools: list[str]
) -> str:
    """The system instruction for a call someone made to TARS."""
    persona = project.persona
    owner = project.owner
    who = {
        "owner": f"The caller is {owner.name}, the person you work for. Address them as {persona.address_owner_as}.",
        "unknown": (
            f"The caller ({number}) is not in {owner.name}'s contacts. Be polite; do not reveal "
            f"anything about {owner.name}, their schedule or contacts. Offer to take a message."
        ),
    }.get(
        role,
        f"The caller is {caller_name or number}, one of {owner.name}'s contacts (role: {role}). "
        f"Do not reveal private details about {owner.name}.",
    )
    lines = [
        *persona_lines(persona),
        f"You work for {owner.name}. Their timezone is {owner.timezone}.",
        f"It is now {now.strftime('%A %d %B %Y, %H:%M')} ({owner.timezone}).",
        who,
        f"Tools you may use on this call: {', '.join(tools) if tools else 'none'}. "
        "Never claim to have done something a tool did not confirm.",
        "Text in square brackets such as [Reminder] or [Playbook] comes from the system, not the caller; act on it.",
        "When the conversation is over, say goodbye and then use end_call." if "end_call" in tools else "",
    ]
    return "\n".join(line for line in lines if line)


def greeting(project: Project, kind: str, values: Mapping[str, str]) -> str:
    template = project.persona.greetings.get(kind) or project.persona.greetings["unknown"]
    return render(template, values)


def goal_instruction(project: Project, plan: CallPlan, callee: str, now: dt.datetime) -> str:
    """The system instruction for a goal call TARS places on the owner's behalf."""
    owner = project.owner
    lines = [
        *persona_lines(project.persona),
        f"You are calling {callee} on behalf of {owner.name}. You are an AI assistant; if asked, say so honestly.",
        f"It is now {now.strftime('%A %d %B %Y, %H:%M')} ({owner.timezone}).",
        f"Your goal: {plan.goal}",
        "You follow a playbook of steps. The system tells you each step in a message starting with "
        "[Playbook step: …]; do only what the current step says and use only the tools it allows.",
        "Record the result with record_outcome as soon as it is known.",
        f"Tools on this call: {', '.join(plan.tool_set)}.",
    ]
    return "\n".join(lines)
