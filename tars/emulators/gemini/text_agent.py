"""The emulated text model's default behaviour when it is offered tools (a text session).

A small, predictable stand-in for Gemini's function calling, enough to try TARS by text
offline (``tars send``, SMS in ``tars simulate``-like runs) without writing a script:

* "remind me at 5pm to call mum" / "remind me to call mum at 5pm" → ``create_reminder``
* "what reminders do I have?" → ``list_reminders``
* "what time is it?" → ``current_time``
* anything else, when ``take_message`` is the only thing offered: the first text is answered
  with an offer to take a message, the next one is the message (``take_message``).

A tool the request does not declare is never called: asked for a reminder without
``create_reminder`` on offer, it says it cannot and offers a message when it may take one.
After the tool results come back (``functionResponse``) it answers in one or two sentences
made from them. Scripts (``text_script``) replace all of this when a test needs precision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tars.emulators.gemini.rest import Answer, FunctionCall, RestRequest

REMIND_WHEN_FIRST = re.compile(
    r"remind me (?P<when>(?:at|on|in|tomorrow|today|tonight|next)\b.*?) to (?P<what>.+)$", re.I
)
REMIND_WHAT_FIRST = re.compile(
    r"remind me to (?P<what>.+?) (?P<when>(?:at|on|in|tomorrow|today|tonight|next)\b.+)$", re.I
)
OFFER = "I can't do that for you, but I can take a message and pass it on. What would you like me to tell them?"


def offers_message(text: str) -> bool:
    return "take a message" in text


def answer(request: RestRequest) -> Answer:
    offered = request.tools
    results = request.function_responses
    if results:
        return Answer(" ".join(_from_result(r.get("name", ""), r.get("response") or {}) for r in results))
    text = request.text.strip().rstrip(".!")
    intent = _intent(text)
    if intent is not None and intent.name in offered:
        return Answer(calls=(intent,))
    if "take_message" in offered:
        if intent is None and offers_message(_last_model_text(request)):
            return Answer(calls=(FunctionCall("take_message", {"message": request.text.strip()}),))
        return Answer(OFFER)
    if intent is not None:
        return Answer("I'm sorry, I'm not able to do that here.")
    return Answer("I can set and list reminders and tell you the time. What would you like?")


def _intent(text: str) -> FunctionCall | None:
    found = REMIND_WHEN_FIRST.search(text) or REMIND_WHAT_FIRST.search(text)
    if found:
        return FunctionCall("create_reminder", {"text": found["what"].strip(), "when": found["when"].strip()})
    low = text.casefold()
    if "reminder" in low:
        return FunctionCall("list_reminders", {})
    if "what time" in low or low.startswith("time"):
        return FunctionCall("current_time", {})
    return None


def _last_model_text(request: RestRequest) -> str:
    for content in reversed(request.contents[:-1]):
        if content.get("role") == "model":
            return "".join(p.get("text", "") for p in content.get("parts") or [])
    return ""


def _from_result(name: str, response: Mapping[str, Any]) -> str:
    if response.get("refused"):
        return "I'm not allowed to do that."
    if response.get("error"):
        return f"That didn't work: {response['error']}"
    if name == "create_reminder" and isinstance(response.get("created"), Mapping):
        made = response["created"]
        return f"Done: I'll remind you to {made.get('text')} at {made.get('due')}."
    if name == "list_reminders":
        items = [r for r in response.get("reminders") or [] if isinstance(r, Mapping)]
        if not items:
            return "You have no reminders."
        listed = "; ".join(f"{r.get('text')} ({r.get('due')})" for r in items)
        return f"You have {len(items)} reminder{'s' * (len(items) != 1)}: {listed}."
    if name == "current_time":
        return f"It's {response.get('local') or response.get('time') or response}."
    if name == "take_message":
        return "Thank you, I'll pass your message on."
    if name == "make_goal_call" and response.get("placed"):
        return f"I'm calling {response.get('callee')} now and will report back."
    return "Done."
