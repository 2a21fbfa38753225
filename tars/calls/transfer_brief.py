"""What the target of a warm transfer hears before taking the call: one sentence written by
the text model from the call so far (as after-call summaries are), ending with how to take
it; a plain sentence if the model cannot be reached."""

from __future__ import annotations

import logging

from tars.calls.aftercall import generate_text
from tars.endpoints import Endpoints
from tars.project import Project

log = logging.getLogger("tars.transfers")

TAKE_IT = "Press 1 or say yes to take it."
MAX_BRIEF_CHARS = 240


def fallback(who: str, about: str) -> str:
    return f"{who} is on the line{' about ' + about if about else ''}. {TAKE_IT}"


async def brief(project: Project, endpoints: Endpoints, target: str, who: str, about: str, so_far: str) -> str:
    prompt = (
        f"You are TARS, {project.owner.name}'s phone assistant. {who} is holding on the line and asked to be put "
        f"through to {target}. Write ONE short sentence telling {target} who is calling and what about, "
        f"e.g. 'Helen is on the line about Saturday's dinner.' No greeting, no question.\n"
        f"What they said they want: {about or 'not said'}\nThe call so far:\n{so_far or '(nothing yet)'}"
    )
    try:
        text = " ".join(
            (await generate_text(endpoints, str(project.section("model").get("text_model")), prompt)).split()
        )
    except Exception as exc:
        log.warning("could not write the transfer brief: %s", exc)
        return fallback(who, about)
    if not text or len(text) > MAX_BRIEF_CHARS:
        return fallback(who, about)
    return f"{text} {TAKE_IT}"
