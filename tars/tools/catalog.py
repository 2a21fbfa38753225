"""The built-in tools: names, what they do, their parameters, and what they need.

This is the single list the schema, the compiler and the call runtime agree on. Parameters
are JSON Schema (lower-case types); the Gemini adapter upper-cases them on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    needs: tuple[str, ...] = ()


def _params(required: list[str] | None = None, **props: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


_TEXT = {"type": "string"}

#: What a persona setting may be changed to by voice: the persona schema says the same.
PERSONA_SETTINGS = ("humor", "honesty", "verbosity", "style", "voice")

BUILTINS: dict[str, BuiltinTool] = {
    t.name: t
    for t in [
        BuiltinTool("current_time", "The current date and time in the owner's timezone."),
        BuiltinTool(
            "create_reminder",
            "Create a reminder for the owner at a time given in plain words or ISO 8601.",
            _params(
                ["text", "when"],
                text={"type": "string", "description": "What to remind the owner of."},
                when={"type": "string", "description": "When, e.g. 'tomorrow at 2pm'."},
                every={"type": "string", "description": "Optional recurrence, e.g. 'every monday'."},
                via={"type": "string", "enum": ["call", "sms", "webhook", "default"]},
            ),
        ),
        BuiltinTool(
            "list_reminders",
            "List the owner's pending reminders.",
            _params(include_done={"type": "boolean"}),
        ),
        BuiltinTool(
            "cancel_reminder",
            "Cancel a reminder by its id.",
            _params(["id"], id={"type": "integer"}),
        ),
        BuiltinTool(
            "complete_reminder",
            "Mark a reminder as done.",
            _params(["id"], id={"type": "integer"}),
        ),
        BuiltinTool(
            "snooze_reminder",
            "Move a reminder later, e.g. by 'ten minutes' or to 'tomorrow 9am'.",
            _params(["id", "until"], id={"type": "integer"}, until=_TEXT),
        ),
        BuiltinTool(
            "lookup_contact",
            "Find a contact or directory entry by name; returns the phone number.",
            _params(["name"], name=_TEXT),
        ),
        BuiltinTool(
            "add_contact",
            "Add a contact to the owner's address book.",
            _params(["name", "phone"], name=_TEXT, phone=_TEXT, relationship=_TEXT, notes=_TEXT),
        ),
        BuiltinTool("list_contacts", "List the owner's contacts.", _params()),
        BuiltinTool(
            "take_message",
            "Take a message for the owner; it is stored and delivered to them.",
            _params(["message"], message=_TEXT, caller_name=_TEXT, callback_number=_TEXT),
        ),
        BuiltinTool(
            "end_call",
            "End the call after saying goodbye.",
            _params(reason=_TEXT),
        ),
        BuiltinTool(
            "make_goal_call",
            "Place a call on the owner's behalf following a playbook.",
            _params(
                ["target", "playbook"],
                target={"type": "string", "description": "Contact, directory name or number."},
                playbook=_TEXT,
                inputs={"type": "object"},
            ),
            needs=("lookup_contact",),
        ),
        BuiltinTool(
            "persona_settings",
            "The assistant's persona now: humour, honesty, verbosity, style, voice, language, and the "
            "personas there are to switch to.",
        ),
        BuiltinTool(
            "change_persona",
            "Change one persona setting for this call and every later one, e.g. 'set humour to 75 "
            "percent' (humor 75), 'be more honest' (honesty, higher), 'be brief' (verbosity brief). "
            "The change is saved to the persona's YAML file.",
            _params(
                ["setting", "value"],
                setting={"type": "string", "enum": list(PERSONA_SETTINGS)},
                value={
                    "type": "string",
                    "description": "The new value: 0-100 for humor and honesty; brief, normal or chatty for "
                    "verbosity; butler, professional, friendly or concise for style; a Gemini voice name.",
                },
                reason={"type": "string", "description": "Why, in the owner's words."},
            ),
        ),
        BuiltinTool(
            "switch_persona",
            "Make another persona in personas/ the active one, for every later call.",
            _params(
                ["name"],
                name={"type": "string", "description": "The persona's name or file name."},
                reason={"type": "string"},
            ),
        ),
        BuiltinTool(
            "search_calls",
            "Search the owner's past calls (what was said, the summaries and outcomes), best match first, "
            "e.g. 'what did the dentist say last time?' (query 'dentist') or 'when did I last speak to "
            "Helen?' (with 'Helen'). Each call comes with the line that matched.",
            _params(
                [],
                query={"type": "string", "description": "Words to look for, e.g. 'dentist appointment'."},
                since={"type": "string", "description": "Only calls since then, e.g. 'last week'."},
                with_contact={"type": "string", "description": "Only calls with this contact, business or number."},
                kind={"type": "string", "enum": ["goal", "inbound", "reminder", "outbound", "text"]},
                semantic={
                    "type": "boolean",
                    "description": "By meaning rather than the exact words ('tooth doctor' finds the dentist).",
                },
            ),
        ),
        BuiltinTool(
            "google_search",
            "Look things up on the web with Google Search: Gemini's own search, its answers grounded "
            "in the pages it cites (stored with the call).",
        ),
        BuiltinTool(
            "record_outcome",
            "Record the structured result of a goal call (fields per the playbook's outcome).",
            {"type": "object"},
        ),
        BuiltinTool(
            "ask_owner",
            "Ask the owner a question during a goal call; returns their answer.",
            _params(["question"], question=_TEXT),
        ),
        BuiltinTool(
            "tell_owner",
            "Tell the owner something during a goal call, without waiting for an answer.",
            _params(["note"], note={"type": "string", "description": "What to tell them, briefly."}),
        ),
        BuiltinTool(
            "answer_question",
            "Pass the owner's answer back to the call that asked them a question (its code is in the question).",
            _params(
                ["code", "answer"],
                code={"type": "string", "description": "The question's code, e.g. '4821'."},
                answer={"type": "string", "description": "The owner's answer, in their words."},
            ),
        ),
        BuiltinTool(
            "send_sms",
            "Send a text message to a contact or the owner.",
            _params(["to", "body"], to=_TEXT, body=_TEXT),
            needs=("lookup_contact",),
        ),
        BuiltinTool(
            "press_digits",
            "Press keys on a phone menu (DTMF), e.g. '1' or '0042#'.",
            _params(["digits"], digits={"type": "string", "pattern": "^[0-9*#wW]+$"}),
        ),
        BuiltinTool(
            "transfer_call",
            "Put the caller through to someone, when they ask to speak to them (e.g. 'can you put me through "
            "to Alex?'). Say first that you are putting them through; if nobody takes the call, the caller "
            "comes back to you and you take a message.",
            _params(
                ["target"],
                target={"type": "string", "description": "Who to put them through to: owner, or a name offered."},
                about={"type": "string", "description": "What the caller wants to talk about, in a few words."},
                caller_name={"type": "string", "description": "The caller's name, if they gave it."},
            ),
        ),
    ]
}


#: Tools that change TARS itself: the compiler grants them to the owner role only.
OWNER_ONLY = frozenset({"change_persona", "switch_persona"})
#: Tools the model runs itself, on Google's side: offered in the Live setup as Gemini's own
#: tool (``{"googleSearch": {}}``), never as a function TARS executes.
MODEL_TOOLS = frozenset({"google_search"})
#: Tools that read what the owner alone may know (every past call): owner role only, too.
PRIVATE = frozenset({"search_calls"})
#: Built-ins that wait on someone else (the owner's reply, up to two minutes; a whole goal
#: call): the model must not wait for them blocked, or new input would cancel them. Webhook
#: tools are long-running too (``long_running``).
LONG_RUNNING = frozenset({"ask_owner", "make_goal_call"})


def long_running(names: Iterable[str], tools: Mapping[str, Any]) -> tuple[str, ...]:
    """The offered tools among ``names`` that may take long: LONG_RUNNING and the project's
    webhook tools (``tools``: the Project's, whose ``kind`` is builtin or webhook)."""
    return tuple(n for n in names if n in LONG_RUNNING or getattr(tools.get(n), "kind", None) == "webhook")


def goal_call_declaration(playbooks: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``make_goal_call``'s description and parameters, from the compiled playbooks: the
    playbook names as an enum, and each playbook's inputs with their types and descriptions,
    so the model fills them the way ``tars call --var`` does."""
    lines = []
    properties: dict[str, Any] = {}
    for name, book in sorted(playbooks.items()):
        fields = []
        for field_name, spec in book.inputs.items():
            kind = spec.type + (", required" if spec.required else "")
            fields.append(f"{field_name} ({kind}){': ' + spec.description if spec.description else ''}")
            prop: dict[str, Any] = {"type": spec.type}
            if spec.description:
                prop["description"] = spec.description
            properties.setdefault(field_name, prop)
        lines.append(f"{name}: {book.description} Inputs: {'; '.join(fields) or 'none'}.")
    description = (
        "Place a call on the owner's behalf following one of these playbooks; the result is reported "
        "when the call ends. " + " ".join(lines)
    )
    parameters = _params(
        ["target", "playbook"],
        target={"type": "string", "description": "Who to call: a contact or directory name, or a number."},
        playbook={"type": "string", "enum": sorted(playbooks) or ["none"], "description": "The playbook to follow."},
        inputs={"type": "object", "properties": properties, "description": "The playbook's inputs, by name."},
        confirmed={"type": "boolean", "description": "True once the owner has said yes to the name read back."},
        report_via={
            "type": "string",
            "enum": ["sms", "call", "webhook"],
            "description": "How to report if the owner is no longer on the phone (default: the owner's setting).",
        },
    )
    return description, parameters


def transfer_declaration(targets: Sequence[str], owner: str) -> tuple[str, dict[str, Any]]:
    """``transfer_call``'s description and parameters for one role: its declared targets as an
    enum (``owner`` named), so the model is never offered a number the caller dictates."""
    spec = BUILTINS["transfer_call"]
    names = ", ".join(f"{t} ({owner})" if t == "owner" else t for t in targets)
    parameters = dict(spec.parameters)
    properties = dict(parameters["properties"])
    properties["target"] = {"type": "string", "enum": list(targets), "description": f"One of: {names}."}
    parameters["properties"] = properties
    return f"{spec.description} Only these can be reached: {names}.", parameters
