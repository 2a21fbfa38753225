"""What the built-in tools do. Each takes the call's ToolContext and the model's arguments
and returns a small JSON-able dict the model can speak from.

Store work runs in a worker thread so the call's audio never waits on the database.
Errors a person can fix (an unparseable time, an unknown contact) raise ``UserError``s;
the gate turns them into one-line results for the model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tars.caller import Caller
from tars.project import Project
from tars.tools.call import ToolCall


class ToolError(Exception):
    """A tool could not do what was asked; the message is for the model to relay."""


class CallControls(Protocol):
    """What tools may do to the live call itself."""

    async def end_call(self, reason: str) -> None: ...

    async def press_digits(self, digits: str) -> None: ...

    async def record_outcome(self, outcome: Mapping[str, Any]) -> dict[str, Any]: ...

    async def goto_step(self, step: str) -> dict[str, Any]: ...

    async def ask_owner(self, question: str) -> str: ...

    async def transfer_call(self, target: str, about: str, caller_name: str | None) -> dict[str, Any]: ...


class Outbox(Protocol):
    """How things reach people: the delivery layer (SMS, calls, webhooks)."""

    async def notify_owner(self, text: str, *, kind: str) -> str: ...

    async def send_sms(self, to: str, body: str) -> str: ...


class Switchboard(Protocol):
    """What tools may ask of the switchboard (``tars.scheduler.goal_requests.CallDesk``):
    other calls, and messages to and from the owner's live call."""

    async def make_goal_call(self, args: Mapping[str, Any]) -> dict[str, Any]: ...

    async def after_outcome(self, goal_call_id: int, tool: str, args: Mapping[str, Any]) -> None: ...

    async def answer_question(self, code: str, answer: str) -> dict[str, Any]: ...

    async def tell_owner(self, note: str) -> dict[str, Any]: ...


class Personas(Protocol):
    """The persona as tools may read and change it (``tars.persona_changes.PersonaDesk``)."""

    def settings(self) -> dict[str, Any]: ...

    async def change(self, setting: str, value: Any, reason: str | None) -> dict[str, Any]: ...

    async def switch(self, name: str, reason: str | None) -> dict[str, Any]: ...


@dataclass
class ToolContext:
    project: Project
    database: Any
    caller: Caller
    controls: CallControls
    outbox: Outbox
    call_id: int | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    switchboard: Switchboard | None = None  # set by the server; None where no calls can be placed
    personas: Personas | None = None  # set by the server; None where the persona cannot be changed
    endpoints: Any = None  # tars.endpoints.Endpoints, for tools that use Gemini (search by meaning)

    def desk(self) -> Switchboard:
        if self.switchboard is None:
            raise ToolError("placing calls and reaching the owner need the running server (tars serve)")
        return self.switchboard

    async def db(self, work: Callable[[Any], Any]) -> Any:
        """Run ``work(session)`` in a worker thread, inside one committed transaction."""
        return await self.database.run(work)

    def local(self, instant: dt.datetime) -> str:
        from tars.timeparse import show

        return show(instant, self.project.owner.timezone)


Handler = Callable[[ToolContext, Mapping[str, Any]], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


async def execute(ctx: ToolContext, call: ToolCall, upstream: Mapping[str, Any]) -> dict[str, Any]:
    """Run one built-in or webhook tool (the gate has already checked it).

    A tool that needs a goal call placed in the same batch ("call Helen, then email me what
    she said") waits for that call's outcome: it is attached to the goal call and runs then."""
    awaiting = next(
        (r for r in upstream.values() if isinstance(r, Mapping) and r.get("awaiting_outcome") and r.get("call_id")),
        None,
    )
    if awaiting is not None:
        await ctx.desk().after_outcome(int(awaiting["call_id"]), call.name, dict(call.args))
        who = awaiting.get("callee") or "them"
        return {"deferred": True, "runs": f"when the call to {who} has its outcome"}
    tool = ctx.project.tools.get(call.name)
    if tool is not None and tool.kind == "webhook":
        from tars.tools.webhook import call_webhook

        return await call_webhook(tool, dict(call.args), upstream, ctx.caller)
    args = dict(call.args)
    if upstream:
        args["_upstream"] = dict(upstream)
    return await HANDLERS[call.name](ctx, args)


# ------------------------------------------------------------------------------ time


@handler("current_time")
async def current_time(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    now = ctx.clock().astimezone(ZoneInfo(ctx.project.owner.timezone))
    return {
        "now": now.isoformat(timespec="minutes"),
        "spoken": now.strftime("%A %d %B %Y, %H:%M"),
        "timezone": ctx.project.owner.timezone,
    }


# ------------------------------------------------------------------------------ reminders


def _reminder_view(ctx: ToolContext, reminder: Any) -> dict[str, Any]:
    return {
        "id": reminder.id,
        "text": reminder.text,
        "due": ctx.local(reminder.due),
        "status": reminder.status,
        "repeats": reminder.recurrence,
    }


@handler("create_reminder")
async def create_reminder(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars.store.reminders import create_reminder as create
    from tars.timeparse import TooFrequent

    try:
        reminder = await ctx.db(
            lambda s: create(
                s,
                text=args["text"],
                when=args.get("when"),
                every=args.get("every"),
                via=args.get("via", "default"),
                timezone=ctx.project.owner.timezone,
                now=ctx.clock(),
            )
        )
    except TooFrequent:  # the model says the result to the owner: a sentence, not an RRULE lesson
        raise ToolError(TooFrequent.spoken) from None
    return {"created": _reminder_view(ctx, reminder)}


@handler("list_reminders")
async def list_reminders(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars.store.reminders import list_reminders as listing

    reminders = await ctx.db(lambda s: listing(s, include_closed=bool(args.get("include_done"))))
    return {"reminders": [_reminder_view(ctx, r) for r in reminders[:20]], "count": len(reminders)}


@handler("cancel_reminder")
async def cancel_reminder(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars.store.reminders import cancel

    reminder = await ctx.db(lambda s: cancel(s, int(args["id"]), ctx.clock()))
    return {"cancelled": _reminder_view(ctx, reminder)}


@handler("complete_reminder")
async def complete_reminder(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars.store.reminders import mark_done

    reminder = await ctx.db(lambda s: mark_done(s, int(args["id"]), ctx.clock()))
    return {"done": _reminder_view(ctx, reminder)}


@handler("snooze_reminder")
async def snooze_reminder(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars import timeparse
    from tars.store.reminders import snooze

    now = ctx.clock()
    words = str(args["until"])
    delta = timeparse.parse_duration(words)
    until = now + delta if delta else timeparse.parse_future(words, ctx.project.owner.timezone, now)
    reminder = await ctx.db(lambda s: snooze(s, int(args["id"]), until, now))
    return {"snoozed": _reminder_view(ctx, reminder)}


# ------------------------------------------------------------------------------ contacts


@handler("lookup_contact")
async def lookup_contact(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars.store.contacts import resolve_in

    found = await ctx.db(lambda s: resolve_in(s, ctx.project, str(args["name"])))
    if found.best is not None:
        best = found.best
        return {"name": best.name, "phone": best.phone, "source": best.source}
    if found.candidates:
        return {
            "ambiguous": [{"name": c.name, "source": c.source} for c in found.candidates[:5]],
            "hint": "ask which one they mean",
        }
    raise ToolError(f"nobody called {args['name']!r} in the contacts or the directory")


@handler("add_contact")
async def add_contact(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars.store.contacts import Rules
    from tars.store.contacts import add_contact as add

    contact = await ctx.db(
        lambda s: add(
            s,
            Rules.of(ctx.project),
            name=args["name"],
            phone=args["phone"],
            relationship=args.get("relationship"),
            notes=args.get("notes"),
        )
    )
    return {"added": {"name": contact.name, "phone": contact.phone}}


@handler("list_contacts")
async def list_contacts(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars.store.contacts import list_contacts as listing

    contacts = await ctx.db(listing)
    return {
        "contacts": [{"name": c.name, "relationship": c.relationship} for c in contacts[:50]],
        "count": len(contacts),
    }


# ------------------------------------------------------------------------------ messages


@handler("take_message")
async def take_message(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars.store.messages import take_message as take

    name = args.get("caller_name") or ctx.caller.name
    callback = args.get("callback_number") or ctx.caller.number
    message = await ctx.db(
        lambda s: take(s, str(args["message"]), caller_number=callback, caller_name=name, call_id=ctx.call_id)
    )
    who = f"{name} ({callback})" if name else callback
    status = await ctx.outbox.notify_owner(f"Message from {who}: {message.text}", kind="messages")
    if status == "delivered":
        from tars.store.messages import mark_message

        await ctx.db(lambda s: mark_message(s, message.id, "delivered", ctx.clock()))
    return {"taken": True, "message_id": message.id, "owner_notified": status == "delivered"}


@handler("send_sms")
async def send_sms(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    upstream = args.get("_upstream", {})
    target = upstream.get("lookup_contact", {}).get("phone") or str(args["to"])
    if not target.startswith("+"):
        found = await lookup_contact(ctx, {"name": target})
        if "phone" not in found:
            return found
        target = found["phone"]
    sid = await ctx.outbox.send_sms(target, str(args["body"]))
    return {"sent": True, "to": target, "sid": sid}


# ------------------------------------------------------------------------------ the call


@handler("end_call")
async def end_call(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    await ctx.controls.end_call(str(args.get("reason") or "conversation finished"))
    return {"ending": True, "say": "Say a brief goodbye now; the call ends when you finish."}


@handler("press_digits")
async def press_digits(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    await ctx.controls.press_digits(str(args["digits"]))
    return {"pressed": args["digits"]}


@handler("transfer_call")
async def transfer_call(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    """Checked again by the rules (``roles.<role>.transfer``); a refusal is a reason to say."""
    name = args.get("caller_name")
    result = await ctx.controls.transfer_call(str(args["target"]), str(args.get("about") or ""), name)
    if "refused" in result:
        raise ToolError(str(result["refused"]))
    return result


@handler("record_outcome")
async def record_outcome(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    return await ctx.controls.record_outcome({k: v for k, v in args.items() if not k.startswith("_")})


@handler("goto_step")
async def goto_step(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    return await ctx.controls.goto_step(str(args.get("step", "")))


@handler("ask_owner")
async def ask_owner(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    return {"owner_said": await ctx.controls.ask_owner(str(args["question"]))}


@handler("make_goal_call")
async def make_goal_call(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    upstream = args.get("_upstream", {})
    target = upstream.get("lookup_contact", {}).get("phone") or str(args["target"])
    request = {k: v for k, v in args.items() if not k.startswith("_")}
    return await ctx.desk().make_goal_call({**request, "target": target})


@handler("tell_owner")
async def tell_owner(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    return await ctx.desk().tell_owner(str(args["note"]))


@handler("answer_question")
async def answer_question(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    return await ctx.desk().answer_question(str(args["code"]), str(args["answer"]))


# ------------------------------------------------------------------------------ the persona


def _personas(ctx: ToolContext) -> Personas:
    if ctx.personas is None:
        raise ToolError("the persona can only be changed on a call to the running server (tars serve)")
    return ctx.personas


def persona_view(project: Project) -> dict[str, Any]:
    """The active persona's settings as the model hears them."""
    persona = project.persona
    return {
        "persona": persona.name,
        "humour": persona.humor,
        "honesty": persona.honesty,
        "verbosity": persona.verbosity,
        "style": persona.style,
        "voice": persona.voice or project.section("model").get("voice"),
        "language": persona.language,
        "personas": [p.name for p in project.personas.values()],
    }


@handler("persona_settings")
async def persona_settings(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    return ctx.personas.settings() if ctx.personas is not None else persona_view(ctx.project)


@handler("change_persona")
async def change_persona(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    return await _personas(ctx).change(str(args.get("setting", "")), args.get("value", ""), args.get("reason"))


@handler("switch_persona")
async def switch_persona(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    return await _personas(ctx).switch(str(args.get("name", "")), args.get("reason"))


# ------------------------------------------------------------------------------ past calls

#: How much of past calls one answer carries: a few calls, each line cut short.
SEARCH_RESULTS = 5
SEARCH_TEXT_CHARS = 300


@handler("search_calls")
async def search_calls(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    from tars.recall import Search, find, kind_of, who_of

    query = str(args.get("query") or "").strip()
    with_ = str(args.get("with_contact") or "").strip() or None
    if not query and not with_:
        raise ToolError("give words to look for (query) or who the call was with (with_contact)")
    asked = Search(
        query,
        since=str(args.get("since") or "").strip() or None,
        with_=with_,
        kind=args.get("kind") or None,
        limit=SEARCH_RESULTS,
    )
    if args.get("semantic") and query:
        from tars.semantic import find_by_meaning

        if ctx.endpoints is None:
            raise ToolError("searching by meaning needs the running server (tars serve)")
        found = await find_by_meaning(ctx.db, ctx.endpoints, ctx.project, asked, ctx.clock())
    else:
        found = await ctx.db(lambda s: find(s, ctx.project, asked, ctx.clock()))
    calls = []
    for hit in found.hits:
        call = hit.call
        match = hit.match
        said = f"{match.speaker}: {match.text}" if match.source == "transcript" else f"{match.source}: {match.text}"
        calls.append(
            {
                "call_id": call.id,
                "when": ctx.local(call.started_at or call.created_at),
                "with": who_of(call, found.names),
                "kind": kind_of(call),
                "line": _cut(said, SEARCH_TEXT_CHARS),
                "summary": _cut(call.summary or "", SEARCH_TEXT_CHARS),
            }
        )
    return {"calls": calls, "count": len(calls)} if calls else {"calls": [], "count": 0, "note": "no call matches"}


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@handler("google_search")
async def google_search(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    """Never offered as a function (the Live setup carries Gemini's own search tool): a call to
    it by name is answered, not run."""
    raise ToolError("google_search is Gemini's own search: just ask your question, the answer comes with its sources")
