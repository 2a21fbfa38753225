"""What the model is told: the system instruction and the first words, from the YAML.

The system instruction is rendered from the persona, the owner's profile, the caller's
role and what it may do, and the date and time in the owner's timezone. For a goal call
it adds the playbook's goal and the first step. How each persona setting reads in the
instruction is documented in docs/personas.md (``tars persona show --rendered`` prints it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from tars.calls.language import described, language_of, part_of_day
from tars.graph.call_plan import CallPlan, render
from tars.project import Persona, Project, Role

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


# Each scale in words: the first band whose upper bound the value does not pass (docs/personas.md).
_HUMOUR = (
    (0, "no jokes at all."),
    (25, "a light touch of humour, rarely."),
    (50, "a dry aside now and then, when the moment allows."),
    (75, "witty often, never at the caller's expense."),
    (100, "playful and witty at every turn, never at the caller's expense."),
)
_HONESTY = (
    (30, "diplomatic: soften unwelcome news and lead with what is good."),
    (70, "candid but tactful: say what is true, kindly."),
    (100, "blunt: say plainly what is true, even when it is unwelcome; never flatter."),
)


def _band(bands: tuple[tuple[int, str], ...], value: int) -> str:
    return next(words for upper, words in bands if value <= upper)


def time_of_day(now: dt.datetime, language: str = "en") -> str:
    """The part of the day a greeting names, in ``language``: morning 05:00-12:00, afternoon
    12:00-18:00, evening otherwise (small hours included: "Good evening" at 01:00, never
    "Good afternoon")."""
    return language_of(language).parts[part_of_day(now)]


def salutation(now: dt.datetime, language: str = "en") -> str:
    """The greeting for the part of the day in ``language``: Good evening, Guten Tag, Bonsoir."""
    return language_of(language).salutations[part_of_day(now)]


def local_now(project: Project, now: dt.datetime | None = None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(project.owner.timezone))


def template_values(
    project: Project, now: dt.datetime, caller_name: str | None = None, persona: Persona | None = None
) -> dict[str, str]:
    """What ``{{ … }}`` in greetings and playbooks may name, in the persona's language."""
    persona = persona or project.persona
    return {
        "owner_name": project.owner.name,
        "assistant_name": persona.name,
        "caller_name": caller_name or "there",
        "time_of_day": time_of_day(now, persona.language),
        "salutation": salutation(now, persona.language),
        "today": now.strftime("%A %d %B %Y"),
        "now": now.strftime("%H:%M"),
    }


def persona_lines(persona: Persona) -> list[str]:
    lines = [
        f"You are {persona.name}, a personal phone assistant.",
        f"Speak {described(persona.language)}: greet and answer in it, unless the caller speaks "
        "another language; then answer in theirs.",
    ]
    if persona.nationality:
        lines.append(f"Your manner and idiom are {persona.nationality}.")
    lines.append(_STYLE.get(persona.style, ""))
    lines.append(f"Humour: {persona.humor}/100: {_band(_HUMOUR, persona.humor)}")
    lines.append(f"Honesty: {persona.honesty}/100: {_band(_HONESTY, persona.honesty)}")
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


def greeting(project: Project, kind: str, values: Mapping[str, str], persona: Persona | None = None) -> str:
    greetings = (persona or project.persona).greetings
    template = greetings.get(kind) or greetings["unknown"]
    return render(template, values)


#: What a recorded call's notice says unless ``recording.announce_text`` says otherwise.
RECORDING_NOTICE = "Please note that this call is recorded."


def recording_notice(project: Project) -> str:
    """The words that tell the other party the call is recorded (``recording.announce_text``)."""
    return str(project.section("recording").get("announce_text") or RECORDING_NOTICE)


def first_words(project: Project, role: Role, kind: str, values: Mapping[str, str]) -> str:
    """What TARS says first on an inbound call: the greeting for ``kind`` of caller, then the
    recording notice if ``role`` records its calls and announces it."""
    words = greeting(project, kind, values)
    if role.recording and role.announce_recording:
        words = f"{words} {recording_notice(project)}"
    return words


def goal_instruction(project: Project, plan: CallPlan, callee: str, now: dt.datetime) -> str:
    """The system instruction for a goal call TARS places on the owner's behalf."""
    owner = project.owner
    lines = [
        *persona_lines(project.persona_for(plan.playbook)),
        f"You are calling {callee} on behalf of {owner.name}. You are an AI assistant; if asked, say so honestly.",
        f"It is now {now.strftime('%A %d %B %Y, %H:%M')} ({owner.timezone}).",
        f"Your goal: {plan.goal}",
        "You follow a playbook of steps. The system tells you each step in a message starting with "
        "[Playbook step: …]; do only what the current step says and use only the tools it allows.",
        "Record the result with record_outcome as soon as it is known.",
        f"Tools on this call: {', '.join(plan.tool_set)}.",
    ]
    return "\n".join(lines)
